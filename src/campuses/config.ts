// The campuses of a system deployment (SPEC 12): CAMPUSES_FILE names a JSON file with `defaults` and
// `campuses: { id: { VARIABLE: value } }`. Each campus's variables (its block over the defaults, a value
// "env:NAME" read from the environment so secrets stay out of the file) and the process-wide variables (from
// the environment only) go through the same loadConfig as a one-campus deployment, so a campus is refused with
// the same one-line error, prefixed with the campus. Without CAMPUSES_FILE there is one campus, configured by
// the environment and served at `/`.

import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import proxyAddr from 'proxy-addr'
import { type Config, ConfigError, loadConfig, VARIABLES } from '../config.ts'

/** 1-32 characters of a-z, 0-9 and -: the campus's path prefix, file names and metrics label. */
export const CAMPUS_ID = /^[a-z0-9-]{1,32}$/

/**
 * The variables of the process, not of a campus: where it listens, the ledger's location, how many processes,
 * the cookie signing key (one host, one browser), logging, the front proxy, who may read /metrics, and the
 * campuses file itself. A campus block that names one is refused.
 */
export const PROCESS_VARIABLES: readonly string[] = [
  'PORT', 'HOST', 'DATABASE_PATH', 'DATABASE_URL', 'WEB_CONCURRENCY', 'COOKIE_SECRET', 'LOG_LEVEL', 'TRUST_PROXY',
  'METRICS_ALLOW', 'CAMPUSES_FILE', 'CAMPUS'
]

export interface Campus {
  id: string
  config: Config
}

/** A configuration error in one campus: the same line as loadConfig's, naming the campus first. */
export class CampusConfigError extends ConfigError {
  constructor (readonly campus: string, variable: string, expected: string) {
    super(variable, expected)
    this.message = `configuration: campus ${campus}: ${variable} ${expected}`
  }
}

function fileError (file: string, problem: string): ConfigError {
  const error = new ConfigError('CAMPUSES_FILE', problem)
  error.message = `configuration: CAMPUSES_FILE (${file}) ${problem}`
  return error
}

type Block = Record<string, unknown>

function isBlock (value: unknown): value is Block {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** One variable's value from the file as text, "env:NAME" read from the environment. */
function valueOf (campus: string, variable: string, value: unknown, env: Record<string, string | undefined>): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (typeof value !== 'string') throw new CampusConfigError(campus, variable, 'must be a string, a number or "env:NAME" in CAMPUSES_FILE')
  if (!value.startsWith('env:')) return value
  const name = value.slice('env:'.length)
  const from = env[name]
  if (name === '' || from === undefined || from === '') throw new CampusConfigError(campus, variable, `is "env:${name}", but the environment variable ${name === '' ? '(no name)' : name} is not set`)
  return from
}

/** The checks every block of the file gets: known variables, and no process-wide one. */
/** The batch jobs' own variables (holds, GL, fines extract, reconcile): per campus too, read by the jobs only. */
export const JOB_VARIABLE = /^(HOLDS|GL|FINES|ALMA_FINES|RECONCILE)_[A-Z0-9_]+$/

function checkBlock (campus: string, block: Block): void {
  for (const variable of Object.keys(block)) {
    if (PROCESS_VARIABLES.includes(variable)) throw new CampusConfigError(campus, variable, 'is process-wide: set it in the environment, not in CAMPUSES_FILE')
    if (!VARIABLES.includes(variable) && !JOB_VARIABLE.test(variable)) throw new CampusConfigError(campus, variable, 'is not a variable of this service (a misspelling?)')
  }
}

/** The ledger file of a campus: `<directory of DATABASE_PATH>/<campus>.sqlite` (':memory:' stays in memory). */
export function campusDatabasePath (databasePath: string, campus: string): string {
  if (databasePath === ':memory:') return databasePath
  return join(dirname(databasePath), `${campus}.sqlite`)
}

/** The environment one campus's configuration is read from: the process-wide variables, the defaults, its block. */
export function campusEnvironment (campus: string, defaults: Block, block: Block, env: Record<string, string | undefined>): Record<string, string> {
  const result: Record<string, string> = {}
  for (const variable of PROCESS_VARIABLES) {
    const value = env[variable]
    if (value !== undefined) result[variable] = value
  }
  for (const [variable, value] of Object.entries(defaults)) result[variable] = valueOf(campus, variable, value, env)
  for (const [variable, value] of Object.entries(block)) result[variable] = valueOf(campus, variable, value, env)
  // the campus's configuration is the campus's: it does not name the file again
  delete result.CAMPUSES_FILE
  return result
}

/** Reads CAMPUSES_FILE's JSON (a missing or unreadable file is a one-line error). */
export function readCampusesFile (file: string): { defaults: Block, campuses: Record<string, Block> } {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw fileError(file, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw fileError(file, `is not valid JSON: ${(error as Error).message}`)
  }
  if (!isBlock(parsed)) throw fileError(file, 'must be a JSON object with "campuses" (and optionally "defaults")')
  for (const key of Object.keys(parsed)) {
    if (key !== 'defaults' && key !== 'campuses') throw fileError(file, `has "${key}": only "defaults" and "campuses" are read`)
  }
  const defaults = parsed.defaults ?? {}
  if (!isBlock(defaults)) throw fileError(file, '"defaults" must be an object of VARIABLE: value')
  const campuses = parsed.campuses
  if (!isBlock(campuses) || Object.keys(campuses).length === 0) throw fileError(file, 'must name at least one campus under "campuses"')
  for (const [id, block] of Object.entries(campuses)) {
    if (!CAMPUS_ID.test(id)) throw fileError(file, `has the campus id "${id.slice(0, 40)}": an id is 1-32 characters of a-z, 0-9 and -`)
    if (!isBlock(block)) throw new CampusConfigError(id, 'block', 'must be an object of VARIABLE: value')
  }
  return { defaults, campuses: campuses as Record<string, Block> }
}

/**
 * Every campus of the deployment, each with its own validated configuration; null without CAMPUSES_FILE (one
 * campus, loadConfig(env)). Throws a ConfigError whose message names the campus and the variable.
 */
export function loadCampuses (env: Record<string, string | undefined> = process.env): Campus[] | null {
  const file = env.CAMPUSES_FILE ?? ''
  if (file === '') return null
  const { defaults, campuses } = readCampusesFile(file)
  checkBlock('defaults', defaults)
  const result: Campus[] = []
  for (const [id, block] of Object.entries(campuses)) {
    checkBlock(id, block)
    let config: Config
    try {
      config = loadConfig(campusEnvironment(id, defaults, block, env))
    } catch (error) {
      if (error instanceof ConfigError && !(error instanceof CampusConfigError)) {
        const campusError = new CampusConfigError(id, error.variable, '')
        campusError.message = error.message.replace(/^configuration: /, `configuration: campus ${id}: `)
        throw campusError
      }
      throw error
    }
    result.push({ id, config: { ...config, campus: id, databasePath: campusDatabasePath(config.databasePath, id), campusesFile: file } })
  }
  refuseSharedPayPalApps(result)
  refuseSharedPostbackTokens(result)
  refuseAmbiguousEzproxyPeers(result)
  refuseSharedUserObjectEzproxy(result)
  return result
}

/**
 * A CashNet postback is told from another campus's only by its token: CashNet posts every store's results from
 * the same addresses (CASHNET_POSTBACK_ALLOW), so with one token for two campuses, a store set up with one
 * campus's notification URL could post to the other's, and a result paid into one store would be taken as paid
 * at the other campus.
 */
function refuseSharedPostbackTokens (campuses: readonly Campus[]): void {
  const seen = new Map<string, string>()
  for (const { id, config } of campuses) {
    if (config.paymentProvider !== 'cashnet' || config.cashnetPostbackToken === '') continue
    const other = seen.get(config.cashnetPostbackToken)
    if (other !== undefined) throw new CampusConfigError(id, 'CASHNET_POSTBACK_TOKEN', `is the same as campus ${other}'s: each CashNet campus needs its own token, or one campus's CashNet postbacks would be accepted as the other's`)
    seen.set(config.cashnetPostbackToken, id)
  }
}

/**
 * In AUTH_MODE=userobject a campus believes whoever EZPROXY_URL's UserObject service says a sign-in token belongs
 * to. Two campuses asking one EZproxy would each take every patron signed in there for one of their own: the
 * other campus's jsmith, sent to this campus's sign-in, comes back from the same EZproxy as jsmith. No secret
 * tells them apart (the token is EZproxy's), so the EZproxy must be each campus's own.
 */
function refuseSharedUserObjectEzproxy (campuses: readonly Campus[]): void {
  const seen = new Map<string, string>()
  for (const { id, config } of campuses) {
    if (config.authMode !== 'userobject') continue
    const ezproxy = new URL(config.ezproxyUrl)
    const key = `${ezproxy.origin.toLowerCase()}${ezproxy.pathname.replace(/\/+$/, '')}`
    const other = seen.get(key)
    if (other !== undefined) throw new CampusConfigError(id, 'EZPROXY_URL', `is the same as campus ${other}'s: with AUTH_MODE=userobject each campus needs its own EZproxy, or one campus's patrons would be signed in at the other as its own`)
    seen.set(key, id)
  }
}

/** proxy-addr's names for ranges (EZPROXY_ALLOW may use them), as the ranges they stand for. */
const NAMED_RANGES: Record<string, readonly string[]> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']
}

/** An entry of one list and an entry of the other that share an address, or null. */
export function overlappingEntries (first: readonly string[], second: readonly string[]): [string, string] | null {
  const ranges = (entries: readonly string[]): Array<{ entry: string, range: string }> =>
    entries.flatMap(entry => (NAMED_RANGES[entry] ?? [entry]).map(range => ({ entry, range })))
  // two ranges overlap exactly when one holds the other's first address (the longer prefix's lies in the shorter)
  const holds = (range: string, address: string): boolean => proxyAddr.compile(range)(address.split('/')[0], 0)
  for (const a of ranges(first)) {
    for (const b of ranges(second)) {
      if (holds(a.range, b.range) || holds(b.range, a.range)) return [a.entry, b.entry]
    }
  }
  return null
}

/**
 * A request's campus is its path (/{campus}/), and every campus is on the same host, so one campus's EZproxy
 * proxies the other campuses' paths too. With AUTH_MODE=header a campus believes the user header of any peer
 * in its EZPROXY_ALLOW: if that list takes in another campus's EZproxy, the other campus's jsmith is taken for
 * this campus's jsmith. Overlapping lists are safe only when this campus also asks for an EZPROXY_SECRET that
 * the other campus's EZproxy does not send (the other campus's is different, or it has none).
 */
function refuseAmbiguousEzproxyPeers (campuses: readonly Campus[]): void {
  for (const [index, later] of campuses.entries()) {
    for (const earlier of campuses.slice(0, index)) {
      for (const [trusting, other] of [[earlier, later], [later, earlier]]) {
        if (trusting.config.authMode !== 'header') continue
        if (trusting.config.ezproxySecret !== '' && trusting.config.ezproxySecret !== other.config.ezproxySecret) continue
        const overlap = overlappingEntries(later.config.ezproxyAllow, earlier.config.ezproxyAllow)
        if (overlap === null) continue
        throw new CampusConfigError(later.id, 'EZPROXY_ALLOW', `(${overlap[0]}) overlaps campus ${earlier.id}'s (${overlap[1]}): campus ${trusting.id} (AUTH_MODE=header) would take campus ${other.id}'s EZproxy patrons for its own; give each campus its own EZproxy addresses, or each its own EZPROXY_SECRET_HEADER and EZPROXY_SECRET`)
      }
    }
  }
}

/**
 * Each PayPal campus needs its own REST app and webhook: every listener of an app receives all of the app's
 * events, so two campuses on one app would each see the other's captures as payments it cannot match (orphans
 * "money may have been taken") and its reconcile would list them for refunding.
 */
function refuseSharedPayPalApps (campuses: readonly Campus[]): void {
  const seen = new Map<string, string>()
  for (const { id, config } of campuses) {
    if (config.paymentProvider !== 'paypal') continue
    for (const [variable, value] of [['PAYPAL_CLIENT_ID', config.paypalClientId], ['PAYPAL_WEBHOOK_ID', config.paypalWebhookId]] as const) {
      const other = seen.get(`${variable}\u0000${value}`)
      if (other !== undefined) throw new CampusConfigError(id, variable, `is the same as campus ${other}'s: each PayPal campus needs its own PayPal REST app and webhook (every listener of an app receives all its events)`)
      seen.set(`${variable}\u0000${value}`, id)
    }
  }
}

/**
 * The jobs' directories that must be a campus's own: its snapshot of the holds (diffed against its next run) and
 * the directories its files are written to. Set in a campus's block, one is used as it is; set once for every
 * campus (the environment, the defaults), a campus gets `<directory>/<campus>`.
 */
const SHARED_DIRECTORIES: readonly string[] = ['HOLDS_STATE_DIR', 'HOLDS_OUT_DIR', 'GL_OUT_DIR', 'FINES_OUT_DIR']

/**
 * One campus's environment for a job (--campus / CAMPUS): the environment without the service's per-campus
 * variables (no campus falls back to another's ALMA_API_KEY; the jobs' own HOLDS_*, GL_*... stay, and a campus
 * block may set them too), the campus's block over the defaults, its ledger, and its own holds snapshot and
 * output directories (SHARED_DIRECTORIES: `<HOLDS_STATE_DIR or data/holds>/<campus>`, `<GL_OUT_DIR>/<campus>`...
 * unless its block names its own), so campuses never share a diff or overwrite each other's files.
 * Without CAMPUSES_FILE, the environment as it is.
 */
export function campusJobEnvironment (env: Record<string, string | undefined>, campus: string): Record<string, string | undefined> {
  const file = env.CAMPUSES_FILE ?? ''
  if (file === '') {
    if (campus !== '') throw new ConfigError('CAMPUS', `is "${campus.slice(0, 40)}", but CAMPUSES_FILE is not set: there is one campus, configured by the environment`)
    return env
  }
  if (campus === '') throw new ConfigError('CAMPUS', 'is required when CAMPUSES_FILE is set: the campus this run is for (--campus ID)')
  const { defaults, campuses } = readCampusesFile(file)
  const block = campuses[campus]
  if (block === undefined) throw new ConfigError('CAMPUS', `is "${campus.slice(0, 40)}", which is not a campus of CAMPUSES_FILE (${Object.keys(campuses).join(', ')})`)
  checkBlock('defaults', defaults)
  checkBlock(campus, block)
  const own: Record<string, string | undefined> = {}
  for (const [variable, value] of Object.entries(env)) {
    // a campus variable of the service from the environment would be another campus's (or nobody's): dropped
    if (PROCESS_VARIABLES.includes(variable) || !VARIABLES.includes(variable)) own[variable] = value
  }
  Object.assign(own, campusEnvironment(campus, defaults, block, env))
  own.DATABASE_PATH = campusDatabasePath(own.DATABASE_PATH ?? 'data/payments.sqlite', campus)
  // a directory set once for every campus (the environment, the defaults) gets a subdirectory per campus: two
  // campuses' gl-journal-DATE.csv in one directory would be one file, the second run's
  if (own.HOLDS_STATE_DIR === undefined || own.HOLDS_STATE_DIR === '') own.HOLDS_STATE_DIR = 'data/holds'
  for (const variable of SHARED_DIRECTORIES) {
    const value = own[variable]
    if ((block[variable] === undefined || block[variable] === '') && value !== undefined && value !== '') own[variable] = join(value, campus)
  }
  own.CAMPUS = campus
  return own
}
