// npm run reconcile: the ledger against Alma (and CashNet's settlement file, when given), or with --paypal against
// PayPal's Transaction Search. Prints what needs a person and exits 1 if anything does; silent and 0 when
// everything agrees. The checks are in src/jobs/reconcile.ts and src/jobs/reconcile-paypal.ts.

import { existsSync, statSync } from 'node:fs'
import { pino } from 'pino'
import { AlmaClient } from '../src/alma/client.ts'
import { isAlmaFailure } from '../src/alma/errors.ts'
import { type JobConfig, jobDefault, loadJobConfig } from '../src/config.ts'
import { type Finding, FINDING_KINDS, type FindingKind, readSettlementCsv, reconcile, type ReconcileReport } from '../src/jobs/reconcile.ts'
import { PAYPAL_FINDING_KINDS, type PayPalFinding, type PayPalFindingKind, reconcilePayPal, type PayPalReconcileReport } from '../src/jobs/reconcile-paypal.ts'
import { type Cents, formatMoney } from '../src/money.ts'
import { PayPalClient } from '../src/providers/paypal/client.ts'
import { isPayPalError } from '../src/providers/paypal/errors.ts'
import { type CommandSpec, EXIT_BAD_INPUT, EXIT_OK, isoDate, runCommand, UsageError } from './lib/cli.ts'
import { openLedgerReadOnly } from './lib/ledger.ts'
import { createProgress } from './lib/progress.ts'

const DAY = 86_400_000

function notInFuture (value: string): string {
  isoDate(value)
  if (Date.parse(`${value}T00:00:00Z`) > Date.now()) throw new UsageError(`"${value}" is in the future`)
  return value
}

function readableFile (value: string): string {
  if (!existsSync(value) || !statSync(value).isFile()) throw new UsageError(`${value} is not a file`)
  return value
}

const spec: CommandSpec = {
  name: 'reconcile',
  summary: 'Compares the payments ledger with Alma (one GET per posted fee) and, with --cashnet, with CashNet\'s settlement:\n' +
    'paid-not-posted, posted-not-in-alma, amount-difference, orphan, double-charge, settled-unknown, settled-amount-differs, not-settled.',
  options: [
    { name: 'since', env: 'RECONCILE_SINCE', description: 'first day (UTC) of payments and postings to check; PAID ones stuck longer are always checked', default: new Date(Date.now() - 7 * DAY).toISOString().slice(0, 10), parse: notInFuture },
    { name: 'cashnet', env: 'RECONCILE_CASHNET_FILE', description: 'CashNet settlement CSV with the header tx,amount,date (amounts as decimals)', parse: readableFile },
    { name: 'paypal', env: 'RECONCILE_PAYPAL', flag: true, description: 'compare the ledger with PayPal\'s Transaction Search instead (captures, amounts, refunds); reads PAYPAL_API_URL, PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET' },
    { name: 'until', env: 'RECONCILE_UNTIL', description: 'with --paypal: the day after the last one checked (UTC, exclusive); default now', default: '', parse: isoDate },
    { name: 'json', env: 'RECONCILE_JSON', flag: true, description: 'print the report as JSON (amounts in cents), even when it is empty' }
  ],
  epilog: [
    'Environment (as for the service; nothing else is read):',
    `  DATABASE_PATH     the ledger (default ${jobDefault('reconcile', 'DATABASE_PATH')}); must exist`,
    '  DATABASE_URL      the ledger in PostgreSQL instead (postgres://user:password@host:5432/dbname)',
    `  ALMA_API_URL      default ${jobDefault('reconcile', 'ALMA_API_URL')}`,
    '  ALMA_API_KEY      required; read access to Users is enough',
    `  ALMA_RATE_LIMIT   calls per second, default ${jobDefault('reconcile', 'ALMA_RATE_LIMIT')} here, so the running service keeps most of Alma's 25`,
    `  ALMA_TIMEOUT_MS   default ${jobDefault('reconcile', 'ALMA_TIMEOUT_MS')}`,
    `  CURRENCY          for amounts in the report, default ${jobDefault('reconcile', 'CURRENCY')}`,
    '  TIMEZONE          the library\'s zone: payment and refund days compared with the settlement file\'s dates (default the machine\'s)',
    `  LOG_LEVEL         default ${jobDefault('reconcile', 'LOG_LEVEL')} (log lines go to stderr)`,
    `  PAYPAL_API_URL    with --paypal, default ${jobDefault('reconcile', 'PAYPAL_API_URL')}`,
    '  PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET  with --paypal, required (the REST app needs Transaction Search)',
    '',
    'Exit 1 also when any finding needs a person, or Alma could not be read. The report lists only disagreements;',
    'on a terminal a clean run says so in one line, otherwise it prints nothing (cron mails only problems).'
  ].join('\n')
}

/** The service's variables this job reads (src/config.ts); the ledger must exist. */
function readConfig (env: Record<string, string | undefined>, paypal: boolean): JobConfig {
  const config = loadJobConfig('reconcile', env, paypal ? ['PAYPAL_CLIENT_ID', 'PAYPAL_CLIENT_SECRET'] : ['ALMA_API_KEY'])
  const missing = paypal ? [['PAYPAL_CLIENT_ID', config.paypalClientId], ['PAYPAL_CLIENT_SECRET', config.paypalClientSecret]].filter(([, v]) => v === '').map(([n]) => n) : []
  if (missing.length > 0) throw new UsageError(`configuration: ${missing.join(' and ')} required for --paypal (the REST app whose Transaction Search is read)`)
  // Opening a missing path would create an empty ledger, and an empty ledger always "agrees".
  if (config.databaseUrl === '' && (config.databasePath === ':memory:' || !existsSync(config.databasePath))) throw new UsageError(`configuration: DATABASE_PATH ${config.databasePath} does not exist (point it at the service's ledger)`)
  return config
}

const TITLES: Record<FindingKind, string> = {
  'paid-not-posted': 'Paid at CashNet, not posted to Alma',
  'posted-not-in-alma': 'Posted in the ledger, missing in Alma',
  'amount-difference': 'Amounts differ between the ledger and Alma',
  orphan: 'Postbacks for no known checkout',
  'double-charge': 'Charged twice at CashNet',
  'settled-unknown': 'Settled by CashNet, unknown to the ledger',
  'settled-amount-differs': 'Settled by CashNet for a different amount',
  'not-settled': 'Paid in the ledger, missing from CashNet\'s settlement',
  unchecked: 'Could not be checked'
}

function money (amount: Cents | null | undefined, currency: string): string {
  return amount === null || amount === undefined ? 'amount unknown' : formatMoney(amount, currency)
}

function describeFinding (f: Finding): string[] {
  const head = [f.patron !== '' ? f.patron : 'patron unknown', f.checkoutId !== null ? `checkout ${f.checkoutId}` : '', f.tx !== '' ? `tx ${f.tx}` : '', f.feeId !== undefined ? `fee ${f.feeId}` : '', money(f.amount, f.currency)]
  const sides = [
    f.ledgerAmount !== undefined ? `ledger ${money(f.ledgerAmount, f.currency)}` : '',
    f.almaAmount !== undefined ? `Alma ${money(f.almaAmount, f.currency)}` : '',
    f.cashnetAmount !== undefined ? `CashNet ${money(f.cashnetAmount, f.currency)}` : ''
  ].filter(s => s !== '')
  return [
    `  - ${head.filter(s => s !== '').join(' · ')}`,
    `    ${f.detail}${sides.length > 1 ? ` [${sides.join(', ')}]` : ''}`,
    `    → ${f.action}`
  ]
}

function formatReport (report: ReconcileReport): string {
  const { findings, checked } = report
  const scope = `since ${report.since.slice(0, 10)}: ${checked.checkouts} checkout(s), ${checked.postedLines} posted line(s) against Alma (${checked.feesRead} fee(s) read)` +
    (checked.settlementRows !== null ? `, ${checked.settlementRows} settlement row(s)` : '')
  if (findings.length === 0) return `Reconciliation ${scope}: everything agrees.\n`
  const out = [`Reconciliation ${scope}`, '']
  const counts: string[] = []
  for (const kind of FINDING_KINDS) {
    const group = findings.filter(f => f.kind === kind)
    if (group.length === 0) continue
    out.push(`${TITLES[kind]} (${kind}, ${group.length})`)
    for (const f of group) out.push(...describeFinding(f))
    out.push('')
    const known = group.filter(f => f.amount !== null)
    const byCurrency = new Map<string, number>()
    for (const f of known) byCurrency.set(f.currency, (byCurrency.get(f.currency) ?? 0) + (f.amount ?? 0))
    counts.push(`${group.length} ${kind}${byCurrency.size > 0 ? ` (${[...byCurrency].map(([c, a]) => formatMoney(a as Cents, c)).join(' + ')})` : ''}`)
  }
  out.push(`${findings.length} finding(s) need a person: ${counts.join(', ')}.`)
  return out.join('\n') + '\n'
}

const PAYPAL_TITLES: Record<PayPalFindingKind, string> = {
  'paypal-not-in-ledger': 'Captured at PayPal, unknown to the ledger',
  'paypal-missing': 'Paid by PayPal in the ledger, not in PayPal\'s Transaction Search',
  'paypal-amount-differs': 'Amount or currency differs between PayPal and the ledger',
  'paypal-refund-not-recorded': 'Refunded at PayPal, not recorded in the ledger'
}

function describePayPalFinding (f: PayPalFinding): string[] {
  const head = [f.patron !== '' ? f.patron : 'patron unknown', f.checkoutId !== null ? `checkout ${f.checkoutId}` : '', `capture ${f.tx}`, formatMoney(f.amount, f.currency)]
  return [`  - ${head.filter(s => s !== '').join(' · ')}`, `    ${f.detail}`, `    → ${f.action}`]
}

function formatPayPalReport (report: PayPalReconcileReport): string {
  const { findings, checked } = report
  const scope = `PayPal reconciliation ${report.since.slice(0, 10)} to ${report.until.slice(0, 16).replace('T', ' ')} UTC: ${checked.transactions} PayPal transaction(s), ${checked.ledgerPayments} ledger payment(s)` +
    (checked.tooRecent > 0 ? ` (${checked.tooRecent} too recent for PayPal's reporting, checked next time)` : '')
  if (findings.length === 0) return `${scope}: everything agrees.\n`
  const out = [scope, '']
  for (const kind of PAYPAL_FINDING_KINDS) {
    const group = findings.filter(f => f.kind === kind)
    if (group.length === 0) continue
    out.push(`${PAYPAL_TITLES[kind]} (${kind}, ${group.length})`)
    for (const f of group) out.push(...describePayPalFinding(f))
    out.push('')
  }
  out.push(`${findings.length} finding(s) need a person.`)
  return out.join('\n') + '\n'
}

let needsPerson = false

/** A report with findings needs a person: printed (JSON, or text), and text also at a terminal when it is clean. */
function printReport<R extends { findings: unknown[] }> (report: R, json: boolean, format: (report: R) => string): void {
  needsPerson = report.findings.length > 0
  if (json) process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  else if (needsPerson || process.stdout.isTTY) process.stdout.write(format(report))
}

async function runPayPal (config: JobConfig, options: Record<string, string>): Promise<void> {
  if (options.cashnet !== '') throw new UsageError('--cashnet and --paypal compare with different providers: run them separately')
  const until = options.until !== '' ? new Date(`${options.until}T00:00:00Z`) : undefined
  const since = new Date(`${options.since}T00:00:00Z`)
  if (until !== undefined && until.getTime() <= since.getTime()) throw new UsageError(`--until ${options.until} must be after --since ${options.since}`)
  const ledger = await openLedgerReadOnly(config)
  const logger = pino({ level: config.logLevel }, pino.destination(2))
  const paypal = new PayPalClient({ baseUrl: config.paypalApiUrl, clientId: config.paypalClientId, clientSecret: config.paypalClientSecret, timeoutMs: config.almaTimeoutMs, logger })
  let report: PayPalReconcileReport
  try {
    report = await reconcilePayPal({ ledger, paypal, since, until })
  } catch (error) {
    if (!isPayPalError(error)) throw error
    process.stderr.write(`reconcile: could not read PayPal's Transaction Search (${error.message}${error.debugId !== '' ? `, debug_id ${error.debugId}` : ''}); nothing was reconciled, run it again later\n`)
    needsPerson = true
    return
  } finally {
    await ledger.close()
  }
  printReport(report, options.json === 'yes', formatPayPalReport)
}

await runCommand(spec, async (options, env) => {
  // with CAMPUSES_FILE, env is the --campus's (its settings and ledger)
  const config = readConfig(env, options.paypal === 'yes')
  if (options.paypal === 'yes') {
    await runPayPal(config, options)
    return
  }
  if (options.until !== '') throw new UsageError('--until is for --paypal')
  const ledger = await openLedgerReadOnly(config)
  const logger = pino({ level: config.logLevel }, pino.destination(2))
  const alma = new AlmaClient({ baseUrl: config.almaApiUrl, apiKey: config.almaApiKey, userIdType: 'all_unique', rateLimit: config.almaRateLimit, timeoutMs: config.almaTimeoutMs, logger })
  let report: ReconcileReport
  try {
    report = await reconcile({
      ledger,
      alma,
      since: new Date(`${options.since}T00:00:00Z`),
      settlement: options.cashnet !== '' ? readSettlementCsv(options.cashnet) : undefined,
      currency: config.currency,
      timeZone: config.timeZone,
      progress: createProgress('reconcile')
    })
  } catch (error) {
    if (!isAlmaFailure(error)) throw error
    process.stderr.write(`reconcile: could not read Alma (${error.message}); nothing was reconciled, run it again later\n`)
    needsPerson = true
    return
  } finally {
    await ledger.close()
  }
  printReport(report, options.json === 'yes', formatReport)
})

// The shared runner knows bad input (1) and usage (2); "a person must look" is this job's own reason for 1.
if (needsPerson && process.exitCode === EXIT_OK) process.exitCode = EXIT_BAD_INPUT
