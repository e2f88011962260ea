// npm run export:holds: PeopleSoft service indicators to assign and to release, from Alma's users with blocks
// and balances (SPEC section 8). Thin: options and environment in, src/jobs/holds does the work.

import { jobDefault } from '../src/config.ts'
import { parseCents } from '../src/money.ts'
import { DATE_FORMATS, type DateFormat, processTimeZone, today } from '../src/jobs/dates.ts'
import { DEFAULT_COLUMNS, KNOWN_COLUMNS } from '../src/jobs/holds/columns.ts'
import { exportHolds } from '../src/jobs/holds/export-holds.ts'
import { writeFilesAtomically } from './lib/atomic.ts'
import { type CommandSpec, existingFile, fileTemplate, isoDate, list, maxLength, oneOf, runCommand, UsageError, wholeNumber } from './lib/cli.ts'
import { createProgress } from './lib/progress.ts'

/** An XML element name, optionally with a prefix (xb:user). */
function elementName (value: string): string {
  if (!/^([A-Za-z_][\w.-]*:)?[A-Za-z_][\w.-]*$/.test(value)) throw new UsageError(`"${value}" is not an XML element name`)
  return value
}

const spec: CommandSpec = {
  name: 'export:holds',
  summary: 'Writes holds-add-DATE.csv and holds-remove-DATE.csv (PeopleSoft service indicators to assign and to release,\n' +
    'the difference from the previous run) and holds-skipped-DATE.csv (patrons without a campus id).',
  options: [
    { name: 'users', env: 'HOLDS_USERS_FILE', description: 'Alma "Export User by Conditions" (formerly "Export user blocks") XML, or a Users API <users> XML', parse: existingFile },
    { name: 'fines', env: 'HOLDS_FINES_FILE', description: 'or: the fines-DATE.csv of export:fines (balances only)', parse: existingFile },
    { name: 'out', env: 'HOLDS_OUT_DIR', description: 'directory for the output files', required: true },
    { name: 'date', env: 'HOLDS_DATE', description: 'run date YYYY-MM-DD', default: 'today', parse: v => v === 'today' ? today(processTimeZone()) : isoDate(v) },
    { name: 'state', env: 'HOLDS_STATE_DIR', description: 'where the snapshot of each run is kept', default: 'data/holds' },
    { name: 'record-element', env: 'HOLDS_RECORD_ELEMENT', description: 'the repeating user element of the XML (prefix and case ignored), when the guess (the parent of the first userId) is wrong', default: '', parse: elementName },
    { name: 'id-type', env: 'HOLDS_ID_TYPE', description: 'Alma identifier type of the campus id (EMPLID)', default: 'UNIV_ID' },
    { name: 'block-types', env: 'HOLDS_BLOCK_TYPES', description: 'block type or description codes that place a hold, comma-separated; * for any', default: '' },
    { name: 'min-balance', env: 'HOLDS_MIN_BALANCE', description: 'a balance at or above this places a hold; "none" to ignore balances', default: '0.01' },
    { name: 'institution', env: 'HOLDS_INSTITUTION', description: 'PeopleSoft INSTITUTION', required: true, parse: maxLength(5, 'INSTITUTION is Char(5)') },
    { name: 'srvc-ind-cd', env: 'HOLDS_SRVC_IND_CD', description: 'service indicator code', required: true, parse: maxLength(3, 'SRVC_IND_CD is Char(3)') },
    { name: 'srvc-ind-reason', env: 'HOLDS_SRVC_IND_REASON', description: 'service indicator reason code', required: true, parse: maxLength(5, 'SRVC_IND_REASON is Char(5)') },
    { name: 'deptid', env: 'HOLDS_DEPTID', description: 'DEPTID responsible for the hold', default: '', parse: maxLength(10, 'DEPTID is Char(10)') },
    { name: 'columns', env: 'HOLDS_COLUMNS', description: `columns and their order, from ${KNOWN_COLUMNS.join(' ')}`, default: DEFAULT_COLUMNS.join(',') },
    { name: 'date-format', env: 'HOLDS_DATE_FORMAT', description: `SRVC_IND_ACT_DT format: ${DATE_FORMATS.join(' ')}`, default: 'YYYY-MM-DD', parse: oneOf(...DATE_FORMATS) },
    { name: 'currency', env: 'CURRENCY', description: 'currency when the file gives none', default: jobDefault('export:holds', 'CURRENCY') },
    { name: 'add-file', env: 'HOLDS_ADD_FILE', description: 'name of the holds to assign', default: 'holds-add-{date}.csv', parse: fileTemplate },
    { name: 'remove-file', env: 'HOLDS_REMOVE_FILE', description: 'name of the holds to release', default: 'holds-remove-{date}.csv', parse: fileTemplate },
    { name: 'skipped-file', env: 'HOLDS_SKIPPED_FILE', description: 'name of the list of patrons without a campus id', default: 'holds-skipped-{date}.csv', parse: fileTemplate },
    { name: 'max-release-percent', env: 'HOLDS_MAX_RELEASE_PERCENT', description: 'refuse to release more than this % of the previous holds', default: '50', parse: wholeNumber(0, 100) },
    { name: 'allow-mass-release', env: 'HOLDS_ALLOW_MASS_RELEASE', description: 'accept a release above that share this once', flag: true },
    { name: 'allow-earlier-date', env: 'HOLDS_ALLOW_EARLIER_DATE', description: 'run for a date before the latest run in --state this once (re-run or catch-up)', flag: true }
  ],
  epilog: 'Example (cron, after Alma\'s nightly export lands):\n  npm run export:holds -- --users /sftp/alma/user_blocks.xml --out /sftp/peoplesoft/holds'
}

await runCommand(spec, async (o) => {
  if ((o.users === '') === (o.fines === '')) throw new UsageError('give exactly one of --users FILE.xml or --fines FILE.csv')
  const columns = list(o.columns).map(c => c.toUpperCase())
  const unknown = columns.filter(c => !KNOWN_COLUMNS.includes(c))
  if (unknown.length > 0 || columns.length === 0) throw new UsageError(`--columns: unknown column(s) ${unknown.join(', ')}; known: ${KNOWN_COLUMNS.join(', ')}`)
  let minBalance = null
  if (o['min-balance'] !== 'none') {
    try {
      minBalance = parseCents(o['min-balance'])
    } catch (error) {
      throw new UsageError(`--min-balance: ${(error as Error).message}`)
    }
  }
  const blockTypes = new Set(list(o['block-types']).map(s => s.toUpperCase()))
  if (minBalance === null && blockTypes.size === 0) throw new UsageError('nothing would place a hold: set HOLDS_BLOCK_TYPES and/or HOLDS_MIN_BALANCE')
  const progress = createProgress('export:holds')
  const result = await exportHolds({
    source: o.users !== '' ? { kind: 'users', path: o.users } : { kind: 'fines', path: o.fines },
    idType: o['id-type'],
    recordElement: o['record-element'],
    rules: { blockTypes, minBalance, date: o.date },
    codes: { institution: o.institution, code: o['srvc-ind-cd'], reason: o['srvc-ind-reason'], deptid: o.deptid, date: o.date, dateFormat: o['date-format'] as DateFormat },
    columns,
    outDir: o.out,
    stateDir: o.state,
    names: { add: o['add-file'], remove: o['remove-file'], skipped: o['skipped-file'] },
    maxReleasePercent: Number(o['max-release-percent']),
    allowMassRelease: o['allow-mass-release'] === 'yes',
    allowEarlierDate: o['allow-earlier-date'] === 'yes',
    defaultCurrency: o.currency
  }, writeFilesAtomically, progress)
  progress.log(`${result.records} patrons read; ${result.held} hold(s) now; ${result.added} to assign, ${result.removed} to release, ` +
    `${result.unchanged} unchanged since ${result.previousDate ?? 'never (first run)'}; ${result.skipped} without ${o['id-type']}`)
  if (result.kept > 0) {
    progress.log(`${result.kept} hold(s) kept under the campus id of the previous run: the patron still owes but has no ${o['id-type']} in Alma today ` +
      `(KEPT_EMPLID in ${result.files[2]}); fix the identifier in Alma`)
  }
  for (const file of result.files) process.stdout.write(`${file}\n`)
})
