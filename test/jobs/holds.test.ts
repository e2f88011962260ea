// export:holds as cron runs it: real export files, a real state directory, the script as a child process.

import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { type ExportPatron, writeUsersExport } from '../../src/sandbox/users-export.ts'
import { contents, csvFile, runScript, tempDir } from './cli.ts'

// Over a hundred runs of the CLI, each a child process: about 3 minutes beside the rest of the suite on 2 cores.
t.setTimeout(480_000)

const CODES = { HOLDS_INSTITUTION: 'SPUNV', HOLDS_SRVC_IND_CD: 'LIB', HOLDS_SRVC_IND_REASON: 'FINES', HOLDS_BLOCK_TYPES: 'FINES', HOLDS_DEPTID: 'LIBRARY' }

function patron (primaryId: string, campusId: string | undefined, balance: string, blocks: ExportPatron['blocks'] = []): ExportPatron {
  return { primaryId, campusId, firstName: primaryId[0].toUpperCase() + primaryId.slice(1), lastName: 'Test', balance, blocks }
}

const FINES_BLOCK = { type: 'GENERAL', description: 'FINES' }

/** Day 1: four holds (balance, block only, both), a patron without a campus id, a block type that does not count. */
const day1 = [
  patron('alice', '900000001', '62.75'),
  patron('bob', '900000002', '0.00', [FINES_BLOCK]),
  patron('carol', '900000003', '2.50'),
  patron('erin', '900000005', '86.00', [FINES_BLOCK, { type: 'GENERAL', description: 'CONDUCT' }]),
  patron('noid', undefined, '15.00', [FINES_BLOCK]),
  patron('zoe', '900000004', '0.00', [{ type: 'GENERAL', description: 'CONDUCT' }])
]
/** Day 2: carol paid (gone), bob's block lifted, erin's campus id corrected, dave is new. */
const day2 = [
  patron('alice', '900000001', '62.75'),
  patron('bob', '900000002', '0.00', [{ ...FINES_BLOCK, status: 'INACTIVE' }]),
  patron('erin', '900000055', '86.00', [FINES_BLOCK]),
  patron('dave', '900000007', '5.00'),
  patron('noid', undefined, '15.00', [FINES_BLOCK])
]
/** Day 3: alice paid; everyone else as on day 2. */
const day3 = day2.filter(p => p.primaryId !== 'alice')

async function holds (dir: string, date: string, users: string, extra: string[] = [], env: Record<string, string> = CODES): Promise<Awaited<ReturnType<typeof runScript>>> {
  return await runScript('export-holds.ts', ['--users', users, '--out', join(dir, 'out'), '--state', join(dir, 'state'), '--date', date, ...extra], env)
}

const ids = (rows: Array<Record<string, string>>): string[] => rows.map(r => r.EMPLID)

t.test('three consecutive runs: new holds, unchanged, released, campus id changed', async t => {
  const dir = tempDir(t)
  const out = join(dir, 'out')
  for (const [name, patrons] of [['day1.xml', day1], ['day2.xml', day2], ['day3.xml', day3]] as const) await writeUsersExport(join(dir, name), patrons)

  const first = await holds(dir, '2026-10-01', join(dir, 'day1.xml'))
  t.equal(first.code, 0, first.stderr)
  const add1 = csvFile(join(out, 'holds-add-2026-10-01.csv'))
  t.same(ids(add1), ['900000001', '900000002', '900000003', '900000005'], 'first run: every held patron is a hold to assign')
  t.same(Object.keys(add1[0]), ['EMPLID', 'INSTITUTION', 'SRVC_IND_CD', 'SRVC_IND_REASON', 'SRVC_IND_ACT_DT', 'SRVC_IND_REFRNCE', 'AMOUNT', 'CURRENCY_CD', 'DEPTID', 'COMM_COMMENTS'])
  t.match(add1[0], { INSTITUTION: 'SPUNV', SRVC_IND_CD: 'LIB', SRVC_IND_REASON: 'FINES', SRVC_IND_ACT_DT: '2026-10-01', SRVC_IND_REFRNCE: 'alice', AMOUNT: '62.75', CURRENCY_CD: 'USD', DEPTID: 'LIBRARY' })
  t.match(add1[1].COMM_COMMENTS, 'library block FINES', 'a block alone places a hold')
  t.same(csvFile(join(out, 'holds-remove-2026-10-01.csv')), [], 'nothing to release on the first run')
  const skipped = csvFile(join(out, 'holds-skipped-2026-10-01.csv'))
  t.equal(skipped.length, 1)
  t.match(skipped[0], { ALMA_PRIMARY_ID: 'noid', WOULD_HOLD: 'Y', PROBLEM: 'no UNIV_ID identifier in Alma' })

  const second = await holds(dir, '2026-10-02', join(dir, 'day2.xml'))
  t.equal(second.code, 0, second.stderr)
  const add2 = csvFile(join(out, 'holds-add-2026-10-02.csv'))
  const remove2 = csvFile(join(out, 'holds-remove-2026-10-02.csv'))
  t.same(ids(add2), ['900000007', '900000055'], 'dave is new; erin under her new campus id')
  t.same(ids(remove2), ['900000002', '900000003', '900000005'], 'bob (block lifted), carol (paid), erin\'s old id')
  t.match(add2[1].COMM_COMMENTS, 'campus id changed from 900000005')
  t.match(remove2[2].COMM_COMMENTS, 'campus id changed to 900000055')
  t.match(remove2[1], { SRVC_IND_REFRNCE: 'carol', AMOUNT: '2.50' }, 'a release says what the hold was for')
  t.match(second.stderr, '3 hold(s) now; 2 to assign, 3 to release, 1 unchanged since 2026-10-01', 'alice unchanged')

  const third = await holds(dir, '2026-10-03', join(dir, 'day3.xml'))
  t.equal(third.code, 0, third.stderr)
  t.same(csvFile(join(out, 'holds-add-2026-10-03.csv')), [], 'no new holds')
  t.same(ids(csvFile(join(out, 'holds-remove-2026-10-03.csv'))), ['900000001'], 'alice paid')
  t.match(third.stderr, '2 unchanged since 2026-10-02', 'dave and erin unchanged')
})

t.test('re-running a date gives the same files and does not advance the snapshot twice', async t => {
  const dir = tempDir(t)
  await writeUsersExport(join(dir, 'day1.xml'), day1)
  await writeUsersExport(join(dir, 'day2.xml'), day2)
  t.equal((await holds(dir, '2026-10-01', join(dir, 'day1.xml'))).code, 0)
  t.equal((await holds(dir, '2026-10-02', join(dir, 'day2.xml'))).code, 0)
  const before = { out: contents(join(dir, 'out')), state: contents(join(dir, 'state')) }
  const again = await holds(dir, '2026-10-02', join(dir, 'day2.xml'))
  t.equal(again.code, 0, again.stderr)
  t.same(contents(join(dir, 'out')), before.out, 'byte for byte the same output')
  t.same(contents(join(dir, 'state')), before.state, 'the same snapshots')
  t.match(again.stderr, 'since 2026-10-01', 'still compared with the run before that date')
})

t.test('the Users API shape and the export of export:fines give the same holds', async t => {
  const dir = tempDir(t)
  await writeUsersExport(join(dir, 'blocks.xml'), day1)
  await writeUsersExport(join(dir, 'users.xml'), day1, { shape: 'users' })
  const fromBlocks = await holds(join(dir, 'a'), '2026-10-01', join(dir, 'blocks.xml'))
  const fromUsers = await holds(join(dir, 'b'), '2026-10-01', join(dir, 'users.xml'))
  t.equal(fromUsers.code, 0, fromUsers.stderr)
  t.equal(readFileSync(join(dir, 'b', 'out', 'holds-add-2026-10-01.csv'), 'utf8'), readFileSync(join(dir, 'a', 'out', 'holds-add-2026-10-01.csv'), 'utf8'))
  t.equal(fromBlocks.code, 0)

  writeFileSync(join(dir, 'fines.csv'), 'CAMPUS_ID,ALMA_PRIMARY_ID,BALANCE,CURRENCY,AS_OF_DATE\r\n900000001,alice,62.75,USD,2026-10-01\r\n,noid,15.00,USD,2026-10-01\r\n900000003,carol,2.50,USD,2026-10-01\r\n')
  const fines = await runScript('export-holds.ts', ['--fines', join(dir, 'fines.csv'), '--out', join(dir, 'c'), '--state', join(dir, 'c-state'), '--date', '2026-10-01'], CODES)
  t.equal(fines.code, 0, fines.stderr)
  t.same(ids(csvFile(join(dir, 'c', 'holds-add-2026-10-01.csv'))), ['900000001', '900000003'])
  t.same(csvFile(join(dir, 'c', 'holds-skipped-2026-10-01.csv')).map(r => r.ALMA_PRIMARY_ID), ['noid'])
})

t.test('a truncated or malformed export is refused with the record number, and nothing changes', async t => {
  const dir = tempDir(t)
  await writeUsersExport(join(dir, 'day1.xml'), day1)
  await writeUsersExport(join(dir, 'day2.xml'), day2)
  t.equal((await holds(dir, '2026-10-01', join(dir, 'day1.xml'))).code, 0)
  const state = contents(join(dir, 'state'))
  const out = contents(join(dir, 'out'))

  const full = readFileSync(join(dir, 'day2.xml'), 'utf8')
  const cut = full.indexOf('<user>', full.indexOf('dave')) + 40
  writeFileSync(join(dir, 'truncated.xml'), full.slice(0, cut))
  const truncated = await holds(dir, '2026-10-02', join(dir, 'truncated.xml'))
  t.equal(truncated.code, 1)
  t.match(truncated.stderr, /truncated\.xml: record 5 \(line \d+\): not well-formed XML/)
  t.match(truncated.stderr, 'Nothing was written')

  writeFileSync(join(dir, 'bad-amount.xml'), full.replace('<activeBalance currency="USD">5.00</activeBalance>', '<activeBalance currency="USD">5,0O</activeBalance>'))
  const badAmount = await holds(dir, '2026-10-02', join(dir, 'bad-amount.xml'))
  t.equal(badAmount.code, 1)
  t.match(badAmount.stderr, /bad-amount\.xml: record 4 \(line \d+\): activebalance "5,0O" is not an amount/)

  writeFileSync(join(dir, 'mismatch.xml'), full.replace('</lastName>', '</lastname>'))
  const mismatch = await holds(dir, '2026-10-02', join(dir, 'mismatch.xml'))
  t.equal(mismatch.code, 1)
  t.match(mismatch.stderr, /mismatch\.xml: record 1 \(line \d+\)/)

  writeFileSync(join(dir, 'empty.xml'), '')
  t.equal((await holds(dir, '2026-10-02', join(dir, 'empty.xml'))).code, 1)

  t.same(contents(join(dir, 'state')), state, 'the snapshot did not move')
  t.same(contents(join(dir, 'out')), out, 'no output file, not even a temporary one')
})

t.test('an export that would release most holds is refused unless asked for', async t => {
  const dir = tempDir(t)
  const many = Array.from({ length: 30 }, (_, i) => patron(`p${i}`, String(910000000 + i), '1.00'))
  await writeUsersExport(join(dir, 'many.xml'), many)
  await writeUsersExport(join(dir, 'few.xml'), many.slice(0, 5))
  t.equal((await holds(dir, '2026-10-01', join(dir, 'many.xml'))).code, 0)
  const refused = await holds(dir, '2026-10-02', join(dir, 'few.xml'))
  t.equal(refused.code, 1)
  t.match(refused.stderr, 'would release 25 of 30 holds')
  const accepted = await holds(dir, '2026-10-02', join(dir, 'few.xml'), ['--allow-mass-release'])
  t.equal(accepted.code, 0, accepted.stderr)
  t.equal(csvFile(join(dir, 'out', 'holds-remove-2026-10-02.csv')).length, 25)
})

t.test('usage errors exit 2 and name the option; --help lists every variable', async t => {
  const dir = tempDir(t)
  await writeUsersExport(join(dir, 'day1.xml'), day1)
  const help = await runScript('export-holds.ts', ['--help'])
  t.equal(help.code, 0)
  for (const variable of ['HOLDS_USERS_FILE', 'HOLDS_FINES_FILE', 'HOLDS_OUT_DIR', 'HOLDS_STATE_DIR', 'HOLDS_ID_TYPE', 'HOLDS_BLOCK_TYPES', 'HOLDS_MIN_BALANCE', 'HOLDS_INSTITUTION', 'HOLDS_SRVC_IND_CD', 'HOLDS_SRVC_IND_REASON', 'HOLDS_COLUMNS']) {
    t.match(help.stdout, variable)
  }
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['--users', join(dir, 'day1.xml'), '--out', dir], {}, /HOLDS_INSTITUTION/],
    [['--users', join(dir, 'day1.xml'), '--out', dir, '--date', '2026-02-30'], CODES, /--date: "2026-02-30" is not a calendar date/],
    [['--users', join(dir, 'nope.xml'), '--out', dir], CODES, /--users: cannot read/],
    [['--out', dir], CODES, /exactly one of --users/],
    [['--users', join(dir, 'day1.xml'), '--out', dir, '--columns', 'EMPLID,SHOE_SIZE'], CODES, /unknown column\(s\) SHOE_SIZE/],
    [['--users', join(dir, 'day1.xml'), '--out', dir, '--bogus'], CODES, /bogus/],
    [['--users', join(dir, 'day1.xml'), '--out', dir], { ...CODES, HOLDS_SRVC_IND_CD: 'TOOLONG' }, /HOLDS_SRVC_IND_CD: "TOOLONG" is longer than 3/]
  ]
  for (const [args, env, message] of cases) {
    const run = await runScript('export-holds.ts', args, env)
    t.equal(run.code, 2, `${args.join(' ')} exits 2`)
    t.match(run.stderr, message)
  }
  t.same(contents(dir), { 'day1.xml': readFileSync(join(dir, 'day1.xml'), 'utf8') }, 'usage errors write nothing')
})

t.test('a chosen column set, date format and file names', async t => {
  const dir = tempDir(t)
  await writeUsersExport(join(dir, 'day1.xml'), day1)
  copyFileSync(join(dir, 'day1.xml'), join(dir, 'copy.xml'))
  const run = await holds(dir, '2026-10-01', join(dir, 'copy.xml'), ['--columns', 'ACTION,EMPLID,SRVC_IND_ACT_DT', '--date-format', 'MM/DD/YYYY', '--add-file', 'LIB_HOLD_ADD_{date}.csv'])
  t.equal(run.code, 0, run.stderr)
  const rows = csvFile(join(dir, 'out', 'LIB_HOLD_ADD_2026-10-01.csv'))
  t.same(rows[0], { ACTION: 'ASSIGN', EMPLID: '900000001', SRVC_IND_ACT_DT: '10/01/2026' })
})

// The shapes of formats-evidence (hypothetical structures, own values), kept as files under test/fixtures/holds.
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'holds')

t.test('each fixture shape is read: balance only, block only, internal user, compositeSum, xb: prefixes', async t => {
  const dir = tempDir(t)
  const plain = await holds(join(dir, 'plain'), '2026-10-01', join(FIXTURES, 'user-blocks-camelcase.xml'))
  t.equal(plain.code, 0, plain.stderr)
  const adds = csvFile(join(dir, 'plain', 'out', 'holds-add-2026-10-01.csv'))
  t.same(adds.map(r => [r.EMPLID, r.SRVC_IND_REFRNCE, r.AMOUNT]), [
    ['900100001', 'balonly', '12.50'],
    ['900100002', 'blockonly', '0.00'],
    ['900100004', 'composite', '7.25'],
    ['900100005', 'both', '40.00']
  ], 'a <sum> balance, a block alone, a <compositeSum><sum> balance, an attribute balance with blocks')
  t.match(adds[1].COMM_COMMENTS, 'library block FINES')
  t.notMatch(adds[3].COMM_COMMENTS, 'CONDUCT', 'only the configured block type counts')
  const skipped = csvFile(join(dir, 'plain', 'out', 'holds-skipped-2026-10-01.csv'))
  t.same(skipped.map(r => [r.ALMA_PRIMARY_ID, r.BALANCE, r.WOULD_HOLD]), [['staff-internal', '3.00', 'Y']], 'the internal user (empty userId) is listed as skipped')
  t.notMatch(plain.stderr, 'neither', 'every record has a block or a balance')

  const prefixed = await holds(join(dir, 'prefixed'), '2026-10-01', join(FIXTURES, 'user-blocks-prefixed.xml'))
  t.equal(prefixed.code, 0, prefixed.stderr)
  for (const name of ['holds-add-2026-10-01.csv', 'holds-skipped-2026-10-01.csv']) {
    t.equal(readFileSync(join(dir, 'prefixed', 'out', name), 'utf8'), readFileSync(join(dir, 'plain', 'out', name), 'utf8'), `${name}: xb: prefixes change nothing`)
  }
})

t.test('an export whose records carry neither blocks nor balances is refused: the record element is probably wrong', async t => {
  const dir = tempDir(t)
  const clear = await holds(dir, '2026-10-01', join(FIXTURES, 'users-without-blocks-or-balances.xml'))
  t.equal(clear.code, 1)
  t.match(clear.stderr, '3 of 3 records have neither a block nor a balance above 0')
  t.match(clear.stderr, 'the record element is probably wrong')
  t.match(clear.stderr, '<user>')
  t.match(clear.stderr, 'HOLDS_RECORD_ELEMENT')
  t.match(clear.stderr, 'Nothing was written')
  t.same(contents(join(dir, 'out')), {}, 'no output')
  t.same(contents(join(dir, 'state')), {}, 'no snapshot')

  // Records wrapped one level down: the guess (the parent of the first userId) is <userDetails>, which has no
  // balance and no block; the message names the guess, and HOLDS_RECORD_ELEMENT puts it right.
  const nested = join(FIXTURES, 'user-records-nested.xml')
  const guessed = await holds(dir, '2026-10-01', nested)
  t.equal(guessed.code, 1)
  t.match(guessed.stderr, 'the record element is probably wrong')
  t.match(guessed.stderr, '<userdetails> (guessed as the parent of the first userId/primaryId; set HOLDS_RECORD_ELEMENT')
  t.same(contents(join(dir, 'out')), {}, 'still no output')

  const named = await holds(dir, '2026-10-01', nested, [], { ...CODES, HOLDS_RECORD_ELEMENT: 'userRecord' })
  t.equal(named.code, 0, named.stderr)
  t.same(csvFile(join(dir, 'out', 'holds-add-2026-10-01.csv')).map(r => [r.EMPLID, r.SRVC_IND_REFRNCE, r.AMOUNT]),
    [['900200001', 'nested1', '9.00'], ['900200002', 'nested2', '0.00'], ['900200003', 'nested3', '1.50']])
  const option = await holds(join(dir, 'b'), '2026-10-01', nested, ['--record-element', 'x:USER_RECORD'])
  t.equal(option.code, 0, 'the option too, with prefix and case ignored')

  const missing = await holds(join(dir, 'c'), '2026-10-01', nested, ['--record-element', 'patron'])
  t.equal(missing.code, 1)
  t.match(missing.stderr, 'no <patron> element (HOLDS_RECORD_ELEMENT)')
  const bad = await holds(join(dir, 'c'), '2026-10-01', nested, ['--record-element', 'two words'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, '--record-element: "two words" is not an XML element name')
  t.same(contents(join(dir, 'c')), {}, 'nothing written by either')
})

t.test('a few records with neither a block nor a balance are read, and counted in the log', async t => {
  const dir = tempDir(t)
  await writeUsersExport(join(dir, 'some.xml'), [...day1.slice(0, 4), patron('paid', '900000009', '0.00')])
  const run = await holds(dir, '2026-10-01', join(dir, 'some.xml'))
  t.equal(run.code, 0, run.stderr)
  t.match(run.stderr, '1 of 5 records (the first is record 5) have neither a block nor a balance above 0')
  t.same(ids(csvFile(join(dir, 'out', 'holds-add-2026-10-01.csv'))), ['900000001', '900000002', '900000003', '900000005'])
})

t.test('a held patron who loses the campus id but still owes keeps the hold until paid; the id coming back adds nothing', async t => {
  const dir = tempDir(t)
  const out = join(dir, 'out')
  const snapshot = (date: string): string[] => csvFile(join(dir, 'state', `holds-snapshot-${date}.csv`)).map(r => `${r.EMPLID} ${r.ALMA_PRIMARY_ID}`)
  // alice loses her campus id and pays on day 4; bob's comes back unchanged on day 4, dan's comes back corrected.
  const days: Array<[string, ExportPatron[]]> = [
    ['2026-10-01', [patron('alice', '900000001', '62.75'), patron('bob', '900000002', '0.00', [FINES_BLOCK]), patron('carol', '900000003', '2.50'), patron('dan', '900000004', '9.00')]],
    ['2026-10-02', [patron('alice', undefined, '62.75'), patron('bob', undefined, '0.00', [FINES_BLOCK]), patron('carol', '900000003', '2.50'), patron('dan', undefined, '9.00')]],
    ['2026-10-03', [patron('alice', undefined, '70.00'), patron('bob', undefined, '0.00', [FINES_BLOCK]), patron('carol', '900000003', '2.50'), patron('dan', undefined, '9.00')]],
    ['2026-10-04', [patron('alice', undefined, '0.00'), patron('bob', '900000002', '0.00', [FINES_BLOCK]), patron('carol', '900000003', '2.50'), patron('dan', '900000044', '9.00')]]
  ]
  const runs: Array<Awaited<ReturnType<typeof runScript>>> = []
  for (const [date, patrons] of days) {
    await writeUsersExport(join(dir, `${date}.xml`), patrons)
    const run = await holds(dir, date, join(dir, `${date}.xml`))
    t.equal(run.code, 0, run.stderr)
    runs.push(run)
  }
  t.same(snapshot('2026-10-01'), ['900000001 alice', '900000002 bob', '900000003 carol', '900000004 dan'])

  for (const [i, date] of ['2026-10-02', '2026-10-03'].entries()) {
    t.same(csvFile(join(out, `holds-remove-${date}.csv`)), [], `${date}: no hold released for a missing campus id`)
    t.same(csvFile(join(out, `holds-add-${date}.csv`)), [], `${date}: nothing to assign`)
    t.same(snapshot(date), ['900000001 alice', '900000002 bob', '900000003 carol', '900000004 dan'], `${date}: the kept holds stay in the snapshot`)
    const skipped = csvFile(join(out, `holds-skipped-${date}.csv`))
    t.same(skipped.map(r => [r.ALMA_PRIMARY_ID, r.WOULD_HOLD, r.KEPT_EMPLID]), [['alice', 'Y', '900000001'], ['bob', 'Y', '900000002'], ['dan', 'Y', '900000004']])
    t.match(skipped[0].PROBLEM, /no UNIV_ID identifier in Alma; hold on 900000001 kept/)
    t.match(runs[i + 1].stderr, '4 hold(s) now; 0 to assign, 0 to release, 4 unchanged')
    t.match(runs[i + 1].stderr, '3 hold(s) kept under the campus id of the previous run')
  }
  t.match(csvFile(join(out, 'holds-skipped-2026-10-03.csv'))[0], { BALANCE: '70.00', HOLD_REASON: 'balance 70.00 USD' })
  t.match(readFileSync(join(dir, 'state', 'holds-snapshot-2026-10-03.csv'), 'utf8'), '900000001,alice,70.00,USD,,Y', 'the snapshot carries what is owed today')

  const add4 = csvFile(join(out, 'holds-add-2026-10-04.csv'))
  const remove4 = csvFile(join(out, 'holds-remove-2026-10-04.csv'))
  t.same(ids(add4), ['900000044'], 'bob back under the same id: no second hold; dan under a new id')
  t.match(add4[0].COMM_COMMENTS, 'campus id changed from 900000004')
  t.same(ids(remove4), ['900000001', '900000004'], 'alice paid (still without an id): released; dan\'s old id released')
  t.match(remove4[0], { SRVC_IND_REFRNCE: 'alice', COMM_COMMENTS: 'Library hold released (was: balance 70.00 USD)' })
  t.match(remove4[1].COMM_COMMENTS, 'campus id changed to 900000044')
  t.same(csvFile(join(out, 'holds-skipped-2026-10-04.csv')).map(r => [r.ALMA_PRIMARY_ID, r.WOULD_HOLD, r.KEPT_EMPLID]), [['alice', 'N', '']])
  t.same(snapshot('2026-10-04'), ['900000002 bob', '900000003 carol', '900000044 dan'])
  t.notMatch(runs[3].stderr, 'kept')
})
