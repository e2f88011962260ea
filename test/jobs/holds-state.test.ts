// export:holds and its state directory: the snapshot each run leaves is what the next run releases holds by, so a
// damaged snapshot, or a run that compares with the wrong one, means holds released that are due or never released.

import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { contents, runScript, tempDir } from './cli.ts'

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
