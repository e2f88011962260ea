// npm run export:fines: each patron's outstanding balance from the Alma Analytics fines report, as
// fines-DATE.csv (SPEC section 8). Needs only the Alma API variables, not the web service's; their defaults and
// validation are the configuration's (src/config.ts).

import pino from 'pino'
import { AlmaClient } from '../src/alma/client.ts'
import { jobDefault, loadJobConfig } from '../src/config.ts'
import { processTimeZone, today } from '../src/jobs/dates.ts'
import { exportFines, type FinesField } from '../src/jobs/fines/extract.ts'
import { writeFilesAtomically } from './lib/atomic.ts'
import { type CommandSpec, isoDate, list, runCommand, UsageError, wholeNumber } from './lib/cli.ts'
import { createProgress } from './lib/progress.ts'

const FIELDS: FinesField[] = ['campusId', 'primaryId', 'balance', 'currency']

const JOB = 'export:fines'

const spec: CommandSpec = {
  name: JOB,
  summary: 'Writes fines-DATE.csv (CAMPUS_ID, ALMA_PRIMARY_ID, BALANCE, CURRENCY, AS_OF_DATE) from an Alma Analytics report.',
  options: [
    { name: 'out', env: 'FINES_OUT_DIR', description: 'directory for fines-DATE.csv', required: true },
    { name: 'date', env: 'FINES_DATE', description: 'as-of date YYYY-MM-DD written in the file', default: 'today', parse: v => v === 'today' ? today(processTimeZone()) : isoDate(v) },
    { name: 'report', env: 'ALMA_FINES_REPORT_PATH', description: 'Analytics report path, e.g. /shared/Univ/Reports/Fines for PeopleSoft', required: true },
    { name: 'columns', env: 'ALMA_FINES_COLUMNS', description: 'report headings, e.g. campusId=Identifier Value,primaryId=Primary Identifier,balance=Remaining Amount', default: '' },
    { name: 'page-size', env: 'FINES_PAGE_SIZE', description: 'rows per Analytics page, a multiple of 25', default: '1000', parse: wholeNumber(25, 1000) },
    { name: 'currency', env: 'CURRENCY', description: 'currency when the report has no currency column', default: jobDefault(JOB, 'CURRENCY') },
    { name: 'alma-url', env: 'ALMA_API_URL', description: 'Alma API base URL', default: jobDefault(JOB, 'ALMA_API_URL') },
    { name: 'alma-key', env: 'ALMA_API_KEY', description: 'Alma API key with Analytics read access', required: true },
    { name: 'timeout-ms', env: 'ALMA_TIMEOUT_MS', description: 'per-page timeout; Analytics is slow', default: jobDefault(JOB, 'ALMA_TIMEOUT_MS'), parse: wholeNumber(1000, 600000) }
  ],
  epilog: 'Example (cron, 06:00, after Analytics has refreshed overnight):\n  npm run export:fines -- --out /sftp/peoplesoft/fines'
}

await runCommand(spec, async (o, env) => {
  if (Number(o['page-size']) % 25 !== 0) throw new UsageError('--page-size: Analytics pages in blocks of 25; use a multiple of 25')
  const headings: Partial<Record<FinesField, string>> = {}
  for (const pair of list(o.columns)) {
    const [field, heading] = pair.split('=').map(s => s.trim())
    if (!FIELDS.includes(field as FinesField) || heading === undefined || heading === '') throw new UsageError(`--columns: "${pair}" must be FIELD=Heading with FIELD one of ${FIELDS.join(', ')}`)
    headings[field as FinesField] = heading
  }
  // the options win over the environment for what they name; the rest (LOG_LEVEL, ALMA_RATE_LIMIT) as the service reads it
  const config = loadJobConfig(JOB, { ...env, ALMA_API_URL: o['alma-url'], ALMA_API_KEY: o['alma-key'] })
  const logger = pino({ level: config.logLevel }, pino.destination(2))
  const client = new AlmaClient({ baseUrl: config.almaApiUrl, apiKey: config.almaApiKey, userIdType: 'all_unique', rateLimit: config.almaRateLimit, timeoutMs: Number(o['timeout-ms']), logger })
  const progress = createProgress('export:fines')
  const result = await exportFines(client, { reportPath: o.report, pageSize: Number(o['page-size']), date: o.date, defaultCurrency: o.currency, headings, outDir: o.out }, writeFilesAtomically, progress)
  progress.log(`${result.rows} report row(s) in ${result.pages} page(s); ${result.patrons} patron(s) with a balance`)
  process.stdout.write(`${result.path}\n`)
})
