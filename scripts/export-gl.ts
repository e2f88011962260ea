// npm run export:gl: the GL journal of one day's payments posted to Alma, for PeopleSoft (SPEC section 8).
// Reads only what it needs: the ledger, the chartfield map and, for --format flat, the layout.

import { jobDefault, loadJobConfig } from '../src/config.ts'
import { dayRange, isTimeZone, processTimeZone, yesterday } from '../src/jobs/dates.ts'
import { exportGl } from '../src/jobs/gl/export-gl.ts'
import { loadLayout } from '../src/jobs/gl/flat.ts'
import { loadGlMap } from '../src/jobs/gl/map.ts'
import { formatDecimal } from '../src/money.ts'
import { writeFilesAtomically } from './lib/atomic.ts'
import { type CommandSpec, existingFile, isoDate, oneOf, runCommand, UsageError } from './lib/cli.ts'
import { campusOf, openLedgerReadOnly } from './lib/ledger.ts'
import { createProgress } from './lib/progress.ts'

const spec: CommandSpec = {
  name: 'export:gl',
  summary: 'Writes gl-journal-DATE.csv (or gl-journal-DATE.dat with --format flat): one credit line per fee line posted to Alma\n' +
    'that day, with chartfields from the map and the CashNet batch/tx as reference, and a debit to the clearing account.',
  options: [
    { name: 'date', env: 'GL_DATE', description: 'the day YYYY-MM-DD (must be over in GL_TIMEZONE)', default: 'yesterday' },
    { name: 'out', env: 'GL_OUT_DIR', description: 'directory for the journal file', required: true },
    { name: 'format', env: 'GL_FORMAT', description: 'csv, or flat (PeopleSoft Flat File Journal Import)', default: 'csv', parse: oneOf('csv', 'flat') },
    { name: 'map', env: 'GL_MAP_FILE', description: 'chartfield map JSON (see config/gl-map.example.json)', required: true, parse: existingFile },
    { name: 'layout', env: 'GL_FLAT_LAYOUT', description: 'flat file layout JSON', default: 'config/gl-flat-layout.json' },
    { name: 'timezone', env: 'GL_TIMEZONE', description: 'time zone whose midnight ends the day (the library\'s TIMEZONE, else the process\'s zone)', default: '' },
    { name: 'database', env: 'DATABASE_PATH', description: 'the payments ledger (SQLite), when DATABASE_URL is not set', default: jobDefault('export:gl', 'DATABASE_PATH') },
    { name: 'database-url', env: 'DATABASE_URL', description: 'the payments ledger in PostgreSQL (postgres://user:password@host:5432/dbname); replaces --database' }
  ],
  epilog: 'Example (cron, 01:30 every night, for the day before):\n  npm run export:gl -- --out /sftp/peoplesoft/gl --format flat'
}

await runCommand(spec, async (o, env) => {
  // The same day as the staff reports: GL_TIMEZONE when given, else the library's TIMEZONE, else the process's zone
  if (o.timezone === '') o.timezone = env.TIMEZONE !== undefined && env.TIMEZONE !== '' ? env.TIMEZONE : processTimeZone()
  if (!isTimeZone(o.timezone)) throw new UsageError(`--timezone: "${o.timezone}" is not a time zone (e.g. America/Los_Angeles)`)
  const date = o.date === 'yesterday' ? yesterday(o.timezone) : isoDate(o.date)
  if (dayRange(date, o.timezone).to.getTime() > Date.now()) throw new UsageError(`${date} is not over yet in ${o.timezone}; a day's journal is final only after its midnight`)
  const map = await loadGlMap(o.map)
  const layout = o.format === 'flat' ? await loadLayout(existingFile(o.layout)) : undefined
  const progress = createProgress('export:gl')
  // validated by the service's own schema: the same line for a bad DATABASE_URL as the service prints
  const databaseUrl = loadJobConfig('export:gl', { DATABASE_URL: o['database-url'] }).databaseUrl
  if (databaseUrl === '') {
    // checked here rather than by the option, which a PostgreSQL ledger leaves unused
    try {
      existingFile(o.database)
    } catch (error) {
      const origin = process.argv.some(a => a === '--database' || a.startsWith('--database=')) ? '--database' : 'DATABASE_PATH'
      throw new UsageError(`${origin}: ${(error as Error).message}`)
    }
  }
  const ledger = await openLedgerReadOnly({ databasePath: o.database, databaseUrl, ...campusOf(env) })
  try {
    const { path, journals } = await exportGl(ledger, { date, timeZone: o.timezone, format: o.format as 'csv' | 'flat', outDir: o.out, map, layout }, writeFilesAtomically)
    if (journals.length === 0) progress.log(`${date}: no payments posted to Alma that day; wrote an empty journal`)
    for (const j of journals) {
      // a fee line names its fee; a refund line its fee too, under a 'refund' (or, for money the provider took back
      // by itself, a 'reversal') reference; a clearing line no fee
      const refunds = j.lines.filter(l => l.feeId !== '' && /^(refund|reversal) /.test(l.reference)).length
      const fees = j.lines.filter(l => l.feeId !== '').length - refunds
      const clearing = j.lines.length - fees - refunds
      progress.log(`${date} ${j.currency}: ${fees} fee line(s), ${refunds} refund line(s), ${clearing} clearing line(s), debits ${formatDecimal(j.totalDebits)} = credits ${formatDecimal(j.totalCredits)}`)
    }
    process.stdout.write(`${path}\n`)
  } finally {
    await ledger.close()
  }
})
