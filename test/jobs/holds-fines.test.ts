// export:holds --fines: the CSV of export:fines as the source. Its header is read by name, so a column given twice
// must not silently decide the balance; and a patron on several rows (one per currency, as export:fines writes)
// is one hold, while a row repeated (a concatenated or hand-edited file) must not double the balance.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { contents, csvFile, runScript, tempDir } from './cli.ts'

const CODES = { HOLDS_INSTITUTION: 'SPUNV', HOLDS_SRVC_IND_CD: 'LIB', HOLDS_SRVC_IND_REASON: 'FINES' }

async function holds (dir: string, text: string, date = '2026-10-01'): Promise<Awaited<ReturnType<typeof runScript>>> {
  writeFileSync(join(dir, 'fines.csv'), text)
  return await runScript('export-holds.ts', ['--fines', join(dir, 'fines.csv'), '--out', join(dir, 'out'), '--state', join(dir, 'state'), '--date', date], CODES)
}

t.test('a column given twice (in any case) is refused, not read as whichever comes last', async t => {
  const dir = tempDir(t)
  for (const second of ['BALANCE', 'balance', ' Balance ']) {
    const run = await holds(dir, `CAMPUS_ID,ALMA_PRIMARY_ID,BALANCE,CURRENCY,AS_OF_DATE,${second}\r\n900000001,alice,62.75,USD,2026-10-01,0.00\r\n`)
    t.equal(run.code, 1, `${second}: exit 1`)
    t.match(run.stderr, /fines\.csv: line 1: column BALANCE appears twice/, second)
    t.same(contents(join(dir, 'out')), {}, `${second}: nothing written`)
  }
})

t.test('a BOM, LF or CRLF line ends, lower case and spaced names, extra columns in any order are read', async t => {
  for (const text of [
    '\uFEFFCAMPUS_ID,ALMA_PRIMARY_ID,BALANCE,CURRENCY,AS_OF_DATE\r\n900000001,alice,62.75,USD,2026-10-01\r\n',
    ' name ,balance,campus_id, alma_primary_id ,currency\n"Test, Alice",62.75,900000001,alice,USD\n'
  ]) {
    const dir = tempDir(t)
    const run = await holds(dir, text)
    t.equal(run.code, 0, run.stderr)
    t.match(csvFile(join(dir, 'out', 'holds-add-2026-10-01.csv')), [{ EMPLID: '900000001', SRVC_IND_REFRNCE: 'alice', AMOUNT: '62.75' }])
  }
})

t.test('a patron with balances in two currencies is one hold under their own primary id, and released once', async t => {
  const dir = tempDir(t)
  const header = 'CAMPUS_ID,ALMA_PRIMARY_ID,BALANCE,CURRENCY,AS_OF_DATE\r\n'
  const first = await holds(dir, header + '900000001,alice,10.00,EUR,2026-10-01\r\n900000001,alice,62.75,USD,2026-10-01\r\n')
  t.equal(first.code, 0, first.stderr)
  const add = csvFile(join(dir, 'out', 'holds-add-2026-10-01.csv'))
  t.equal(add.length, 1, 'one hold')
  t.equal(add[0].SRVC_IND_REFRNCE, 'alice', 'the primary id, not "alice+alice"')
  t.notMatch(first.stderr, 'also belongs to Alma user', 'not taken for two Alma accounts')

  const second = await holds(dir, header + '900000002,bob,1.00,USD,2026-10-02\r\n', '2026-10-02')
  t.equal(second.code, 0, second.stderr)
  t.match(csvFile(join(dir, 'out', 'holds-remove-2026-10-02.csv')), [{ EMPLID: '900000001', SRVC_IND_REFRNCE: 'alice' }])
})

t.test('a row repeated for the same patron and currency is refused: it would double the balance', async t => {
  const dir = tempDir(t)
  const run = await holds(dir, 'CAMPUS_ID,ALMA_PRIMARY_ID,BALANCE,CURRENCY,AS_OF_DATE\r\n900000001,alice,62.75,USD,2026-10-01\r\n900000002,bob,1.00,USD,2026-10-01\r\n900000001,alice,62.75,USD,2026-10-01\r\n')
  t.equal(run.code, 1, run.stderr)
  t.match(run.stderr, /fines\.csv: line 4: alice \(900000001\) in USD is already on line 2/)
  t.same(contents(join(dir, 'out')), {}, 'nothing written')
})
