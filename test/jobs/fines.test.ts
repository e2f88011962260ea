// export:fines against the Alma sandbox's Analytics endpoint over real HTTP: paging with the ResumptionToken,
// headings from page 1 only, a one-row last page, an Alma error mid-way; then its file feeds export:holds.

import { join } from 'node:path'
import t, { type Test } from 'tap'
import { addAnalytics, type AnalyticsReport } from '../../src/sandbox/analytics.ts'
import { AlmaSandbox } from '../../src/sandbox/alma.ts'
import { contents, csvFile, runScript, tempDir } from './cli.ts'

const KEY = 'analytics-test-key'
const PATH = '/shared/Springfield University/Reports/Fines for PeopleSoft'

/** 51 rows: 25 + 25 + 1 on pages of 25. Patron 7 has two fees, so two rows; 50 patrons in all. */
function report (): AnalyticsReport {
  const rows: string[][] = []
  for (let i = 1; i <= 50; i++) rows.push([String(900000000 + i), `patron${String(i).padStart(2, '0')}`, `${i}.${String(i % 100).padStart(2, '0')}`])
  rows.push(['900000007', 'patron07', '0.50'])
  return { columns: ['Identifier Value', 'Primary Identifier', 'Remaining Amount'], rows }
}

async function sandbox (t: Test, reports: Record<string, AnalyticsReport>): Promise<{ alma: AlmaSandbox, analytics: ReturnType<typeof addAnalytics> }> {
  const alma = new AlmaSandbox({ apiKey: KEY, users: [] })
  const analytics = addAnalytics(alma, reports)
  await alma.start()
  t.teardown(async () => { await alma.close() })
  return { alma, analytics }
}

async function fines (alma: AlmaSandbox, out: string, env: Record<string, string> = {}): Promise<Awaited<ReturnType<typeof runScript>>> {
  return await runScript('export-fines.ts', ['--out', out, '--date', '2026-10-05'],
    { ALMA_API_URL: alma.baseUrl, ALMA_API_KEY: KEY, ALMA_FINES_REPORT_PATH: PATH, FINES_PAGE_SIZE: '25', ...env })
}

t.test('three pages, the last with one row: every row read, columns named from page 1', async t => {
  const { alma } = await sandbox(t, { [PATH]: report() })
  const dir = tempDir(t)
  const run = await fines(alma, dir)
  t.equal(run.code, 0, run.stderr)
  t.match(run.stderr, 'page 3: 1 row(s)')
  const calls = alma.calls.filter(c => c.path === '/almaws/v1/analytics/reports')
  t.equal(calls.length, 3)
  t.equal(calls[0].query.path, PATH, 'page 1 by path')
  t.equal(calls[0].query.col_names, 'true')
  t.ok(calls.slice(1).every(c => c.query.token === 'SANDBOX000001' && c.query.path === undefined), 'later pages by token only')
  const rows = csvFile(join(dir, 'fines-2026-10-05.csv'))
  t.equal(rows.length, 50, 'one line per patron')
  t.same(rows[0], { CAMPUS_ID: '900000001', ALMA_PRIMARY_ID: 'patron01', BALANCE: '1.01', CURRENCY: 'USD', AS_OF_DATE: '2026-10-05' })
  t.equal(rows.find(r => r.ALMA_PRIMARY_ID === 'patron07')?.BALANCE, '7.57', 'two rows of one patron summed (7.07 + 0.50) from page 1 and page 3')
})

t.test('a report of a single row (one page, one Row element)', async t => {
  const { alma } = await sandbox(t, { [PATH]: { columns: ['Primary Identifier', 'Currency', 'Remaining Fine Fee Balance', 'UNIV_ID'], rows: [['zoe', 'EUR', '9.00', '900000004']] } })
  const dir = tempDir(t)
  const run = await fines(alma, dir, { ALMA_FINES_COLUMNS: 'campusId=UNIV_ID, balance=Remaining Fine Fee Balance' })
  t.equal(run.code, 0, run.stderr)
  t.same(csvFile(join(dir, 'fines-2026-10-05.csv')), [{ CAMPUS_ID: '900000004', ALMA_PRIMARY_ID: 'zoe', BALANCE: '9.00', CURRENCY: 'EUR', AS_OF_DATE: '2026-10-05' }])
})

t.test('an Alma error on page 2 fails the run with Alma\'s code and leaves no file', async t => {
  const { alma, analytics } = await sandbox(t, { [PATH]: report() })
  analytics.fault = { page: 2, status: 500, code: 'INTERNAL_SERVER_ERROR', message: 'Analytics is busy' }
  const dir = tempDir(t)
  const run = await fines(alma, dir)
  t.equal(run.code, 1)
  t.match(run.stderr, 'Alma answered 500 INTERNAL_SERVER_ERROR: Analytics is busy (trackingId E01-SANDBOX-')
  t.same(contents(dir), {}, 'nothing written')
  const wrongPath = await fines(alma, dir, { ALMA_FINES_REPORT_PATH: '/shared/nowhere' })
  t.equal(wrongPath.code, 1)
  t.match(wrongPath.stderr, 'Path not found')
  const headings = await fines(alma, dir, { ALMA_FINES_COLUMNS: 'balance=Fine Amount' })
  t.equal(headings.code, 1)
  t.match(headings.stderr, `${PATH}: page 1: no column headed "Fine Amount" (balance)`)
  const usage = await fines(alma, dir, { FINES_PAGE_SIZE: '30' })
  t.equal(usage.code, 2)
  t.match(usage.stderr, 'multiple of 25')
})

t.test('export:holds reads the fines file', async t => {
  const { alma } = await sandbox(t, { [PATH]: report() })
  const dir = tempDir(t)
  t.equal((await fines(alma, dir)).code, 0)
  const run = await runScript('export-holds.ts', ['--fines', join(dir, 'fines-2026-10-05.csv'), '--out', join(dir, 'holds'), '--state', join(dir, 'state'), '--date', '2026-10-05', '--min-balance', '25.00'],
    { HOLDS_INSTITUTION: 'SPUNV', HOLDS_SRVC_IND_CD: 'LIB', HOLDS_SRVC_IND_REASON: 'FINES' })
  t.equal(run.code, 0, run.stderr)
  const added = csvFile(join(dir, 'holds', 'holds-add-2026-10-05.csv'))
  t.equal(added.length, 26, 'patrons 25 to 50 owe 25.00 or more')
  t.equal(added[0].EMPLID, '900000025')
})
