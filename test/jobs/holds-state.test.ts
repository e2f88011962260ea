// export:holds and its state directory: the snapshot each run leaves is what the next run releases holds by, so a
// damaged snapshot, or a run that compares with the wrong one, means holds released that are due or never released.

import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { contents, csvFile, runScript, tempDir } from './cli.ts'

const CODES = { HOLDS_INSTITUTION: 'SPUNV', HOLDS_SRVC_IND_CD: 'LIB', HOLDS_SRVC_IND_REASON: 'FINES', HOLDS_DEPTID: 'LIBRARY' }
const HEADER = 'CAMPUS_ID,ALMA_PRIMARY_ID,BALANCE,CURRENCY,AS_OF_DATE\r\n'

function fines (dir: string, name: string, rows: Array<[string, string, string]>): string {
  const path = join(dir, name)
  writeFileSync(path, HEADER + rows.map(([campus, primary, balance]) => `${campus},${primary},${balance},USD,2026-10-01\r\n`).join(''))
  return path
}

async function holds (dir: string, date: string, file: string, extra: string[] = []): Promise<Awaited<ReturnType<typeof runScript>>> {
  return await runScript('export-holds.ts', ['--fines', file, '--out', join(dir, 'out'), '--state', join(dir, 'state'), '--date', date, ...extra], CODES)
}

t.test('a snapshot with another header, or empty, is refused; nothing is written', async t => {
  const dir = tempDir(t)
  const day1 = fines(dir, 'day1.csv', [['900000001', 'alice', '62.75'], ['900000002', 'bob', '3.00']])
  const day2 = fines(dir, 'day2.csv', [['900000001', 'alice', '62.75']])
  t.equal((await holds(dir, '2026-10-01', day1)).code, 0)
  const snapshot = join(dir, 'state', 'holds-snapshot-2026-10-01.csv')
  const damaged: Array<[string, string]> = [
    ['columns in another order', 'ALMA_PRIMARY_ID,EMPLID,AMOUNT,CURRENCY,BLOCKS,OVER_THRESHOLD\r\nalice,900000001,62.75,USD,,Y\r\nbob,900000002,3.00,USD,,Y\r\n'],
    ['another job\'s CSV', 'CAMPUS_ID,ALMA_PRIMARY_ID,BALANCE,CURRENCY,AS_OF_DATE\r\n900000001,alice,62.75,USD,2026-10-01\r\n900000002,bob,3.00,USD,2026-10-01\r\n'],
    ['no header at all', '900000001,alice,62.75,USD,,Y\r\n900000002,bob,3.00,USD,,Y\r\n'],
    ['zero bytes (what a crash leaves)', '']
  ]
  for (const [what, text] of damaged) {
    writeFileSync(snapshot, text)
    const out = contents(join(dir, 'out'))
    const run = await holds(dir, '2026-10-02', day2)
    t.equal(run.code, 1, `${what}: exit 1`)
    t.match(run.stderr, 'holds-snapshot-2026-10-01.csv', `${what}: names the snapshot`)
    t.match(run.stderr, 'restore it from backup, or remove it to start over', `${what}: says what to do`)
    t.same(contents(join(dir, 'out')), out, `${what}: no output written`)
    t.same(readdirSync(join(dir, 'state')), ['holds-snapshot-2026-10-01.csv'], `${what}: no snapshot written`)
  }
})

const ids = (rows: Array<Record<string, string>>): string[] => rows.map(r => r.EMPLID)

/** Day 1 alice and bob; day 2 bob paid, dave is new; day 3 dave paid. */
function days (dir: string): string[] {
  return [
    fines(dir, 'day1.csv', [['900000001', 'alice', '62.75'], ['900000002', 'bob', '3.00']]),
    fines(dir, 'day2.csv', [['900000001', 'alice', '62.75'], ['900000004', 'dave', '5.00']]),
    fines(dir, 'day3.csv', [['900000001', 'alice', '62.75']])
  ]
}

t.test('a run for a date before the latest run is refused unless forced: its files would re-assign holds released since', async t => {
  const dir = tempDir(t)
  const [day1, day2, day3] = days(dir)
  for (const [date, file] of [['2026-10-01', day1], ['2026-10-02', day2], ['2026-10-03', day3]]) t.equal((await holds(dir, date, file)).code, 0)
  t.same(ids(csvFile(join(dir, 'out', 'holds-remove-2026-10-03.csv'))), ['900000004'], 'dave released on the 3rd')
  const state = contents(join(dir, 'state'))
  const out = contents(join(dir, 'out'))

  // The 2nd repeated (cron re-run by hand, a late export): compared with the 1st, it assigns dave again, and the
  // 4th, comparing with the 3rd, would never release him.
  const again = await holds(dir, '2026-10-02', day2)
  t.equal(again.code, 1, again.stderr)
  t.match(again.stderr, /a later run \(2026-10-03\) is already in .*state/)
  t.match(again.stderr, '--allow-earlier-date')
  t.same(contents(join(dir, 'state')), state, 'the snapshots did not move')
  t.same(contents(join(dir, 'out')), out, 'no output file changed')

  const forced = await holds(dir, '2026-10-02', day2, ['--allow-earlier-date'])
  t.equal(forced.code, 0, forced.stderr)
  t.match(forced.stderr, 'a later run (2026-10-03) exists')
  t.same(ids(csvFile(join(dir, 'out', 'holds-add-2026-10-02.csv'))), ['900000004'], 'forced: the same files as the 2nd\'s own run')

  const next = await holds(dir, '2026-10-04', day3)
  t.equal(next.code, 0, next.stderr)
  t.match(next.stderr, 'since 2026-10-03', 'later runs still compare with the latest run')
})

t.test('a catch-up run for a date missed before a later run is refused as well', async t => {
  const dir = tempDir(t)
  const [day1, day2, day3] = days(dir)
  t.equal((await holds(dir, '2026-10-01', day1)).code, 0)
  t.equal((await holds(dir, '2026-10-03', day3)).code, 0)
  const catchUp = await holds(dir, '2026-10-02', day2)
  t.equal(catchUp.code, 1, catchUp.stderr)
  t.match(catchUp.stderr, 'a later run (2026-10-03) is already in')
  t.same(readdirSync(join(dir, 'out')).filter(n => n.includes('2026-10-02')), [], 'nothing written for the 2nd')

  const latestAgain = await holds(dir, '2026-10-03', day3)
  t.equal(latestAgain.code, 0, 're-running the latest date stays allowed')
})
