// The configuration of the service and of every batch job: SPEC section 4, one schema with one default per
// variable, validated with env-schema and then passed around as a plain value. The service reads it with
// loadConfig, a job the variables it shares with the service with loadJobConfig (where a job needs another
// default, JOB_DEFAULTS below says which and why). Nothing else in the code reads process.env.

import envSchema from 'env-schema'
import proxyAddr from 'proxy-addr'
import { isTimeZone, processTimeZone } from './jobs/dates.ts'
import { defaultPrimoIssuer, defaultPrimoJwksUrl } from './identity/primo.ts'
import { type Cents, parseCents } from './money.ts'

/** One plain mailbox (name@host.tld), or nothing. */
const MAILBOX = '^([^\\s@<>()",;:\\\\]+@[^\\s@<>()",;:\\\\]+\\.[^\\s@<>()",;:\\\\]+)?$'

const schema = {
  type: 'object',
  // CASHNET_* (for cashnet) and PAYPAL_* (for paypal) are required by PAYMENT_PROVIDER: see loadConfig
  required: ['PUBLIC_URL', 'ALMA_API_KEY', 'EZPROXY_ALLOW', 'COOKIE_SECRET'],
  properties: {
    PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 3000 },
    HOST: { type: 'string', minLength: 1, default: '127.0.0.1' },
    PUBLIC_URL: { type: 'string', pattern: '^https?://[^\\s/]+(/[^\\s]*)?$' },
    ALMA_API_URL: { type: 'string', pattern: '^https?://[^\\s]+$', default: 'https://api-na.hosted.exlibrisgroup.com/almaws/v1' },
    ALMA_API_KEY: { type: 'string', minLength: 1 },
    ALMA_USER_ID_TYPE: { type: 'string', pattern: '^[A-Za-z0-9_]+$', default: 'all_unique' },
    ALMA_RATE_LIMIT: { type: 'integer', minimum: 1, maximum: 25, default: 20 },
    ALMA_PAYMENT_METHOD: { type: 'string', enum: ['ONLINE', 'CREDIT_CARD', 'CASH'], default: 'ONLINE' },
    ALMA_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 120000, default: 15000 },
    ALMA_MAX_RESPONSE_BYTES: { type: 'integer', minimum: 65536, maximum: 1073741824, default: 4194304 },
    PAYMENT_PROVIDER: { type: 'string', enum: ['cashnet', 'paypal'], default: 'cashnet' },
    PAYPAL_API_URL: { type: 'string', pattern: '^https?://[^\\s]+$', default: 'https://api-m.paypal.com' },
    PAYPAL_CLIENT_ID: { type: 'string', default: '' },
    PAYPAL_CLIENT_SECRET: { type: 'string', default: '' },
    PAYPAL_WEBHOOK_ID: { type: 'string', pattern: '^([A-Za-z0-9_-]{1,64})?$', default: '' },
    CASHNET_CHECKOUT_URL: { type: 'string', pattern: '^(https?://[^\\s]+)?$', default: '' },
    CASHNET_ITEM_CODE: { type: 'string', pattern: '^([A-Za-z0-9_.-]+)?$', default: '' },
    CASHNET_ITEM_CODES: { type: 'string', pattern: '^([A-Za-z0-9_]+=[A-Za-z0-9_.-]+)?(\\s*,\\s*[A-Za-z0-9_]+=[A-Za-z0-9_.-]+)*$', default: '' },
    CASHNET_REF_TYPE: { type: 'string', pattern: '^[A-Za-z0-9_]+$', default: 'ALMACHECKOUT' },
    CASHNET_POSTBACK_ALLOW: { type: 'string', default: '' },
    CASHNET_POSTBACK_TOKEN: { type: 'string', pattern: '^([A-Za-z0-9._~-]{16,256})?$', default: '' },
    EZPROXY_ALLOW: { type: 'string', minLength: 1 },
    EZPROXY_USER_HEADER: { type: 'string', pattern: '^[A-Za-z0-9-]+$', default: 'X-EZproxy-User' },
    EZPROXY_USER_HEADER_ENCODING: { type: 'string', enum: ['plain', 'base64'], default: 'plain' },
    EZPROXY_LOGOUT_URL: { type: 'string', pattern: '^(https?://[^\\s]+)?$', default: '' },
    EZPROXY_SECRET_HEADER: { type: 'string', pattern: '^([A-Za-z0-9-]+)?$', default: '' },
    EZPROXY_SECRET: { type: 'string', default: '' },
    TRUST_PROXY: { type: 'string', default: '' },
    COOKIE_SECRET: { type: 'string', minLength: 32 },
    DATABASE_PATH: { type: 'string', minLength: 1, default: 'data/payments.sqlite' },
    DATABASE_URL: { type: 'string', pattern: '^(postgres(ql)?://[^\\s]+)?$', default: '' },
    MIN_PAYMENT: { type: 'string', pattern: '^\\d+(\\.\\d{1,2})?$', default: '0.01' },
    PAYABLE_FEE_TYPES: { type: 'string', default: '' },
    PAYABLE_OWNERS: { type: 'string', default: '' },
    RELEASE_BLOCKS: { type: 'string', default: '' },
    ADMIN_USERS: { type: 'string', default: '' },
    AUTH_MODE: { type: 'string', enum: ['header', 'userobject', 'primo'], default: 'header' },
    ALMA_INSTITUTION_CODE: { type: 'string', pattern: '^([A-Za-z0-9_]{1,64})?$', default: '' },
    PRIMO_JWKS_URL: { type: 'string', pattern: '^(https?://[^\\s]+)?$', default: '' },
    PRIMO_ISSUER: { type: 'string', maxLength: 512, default: '' },
    PAY_LINKS: { type: 'string', enum: ['on', 'off'], default: 'off' },
    PAY_LINK_TTL_HOURS: { type: 'integer', minimum: 1, maximum: 2160, default: 72 },
    PAY_LINK_URL: { type: 'string', pattern: '^(https?://[^\\s]+)?$', default: '' },
    TIMEZONE: { type: 'string', pattern: '^([A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*)?$', default: '' },
    EZPROXY_URL: { type: 'string', pattern: '^(https?://[^\\s]+)?$', default: '' },
    EZPROXY_WSKEY: { type: 'string', default: '' },
    SESSION_TTL_MINUTES: { type: 'integer', minimum: 1, maximum: 1440, default: 60 },
    SESSION_IDLE_MINUTES: { type: 'integer', minimum: 1, maximum: 1440, default: 20 },
    LIBRARY_NAME: { type: 'string', minLength: 1, default: 'Library' },
    LIBRARY_LOGO_URL: { type: 'string', pattern: '^((https?://|/)[^\\s"<>]*)?$', default: '' },
    ACCENT_COLOR: { type: 'string', pattern: '^#[0-9A-Fa-f]{6}$', default: '#1d4f91' },
    CURRENCY: { type: 'string', pattern: '^[A-Z]{3}$', default: 'USD' },
    LOG_LEVEL: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    POSTING_MAX_ATTEMPTS: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
    POSTING_RETRY_BASE_MS: { type: 'integer', minimum: 1, maximum: 3600000, default: 2000 },
    POSTING_RETRY_MAX_MS: { type: 'integer', minimum: 1, maximum: 86400000, default: 600000 },
    POSTING_LEASE_SECONDS: { type: 'integer', minimum: 1, maximum: 3600, default: 60 },
    WEB_CONCURRENCY: { type: 'integer', minimum: 1, maximum: 64, default: 1 },
    PAID_ALERT_MINUTES: { type: 'integer', minimum: 1, default: 30 },
    PATRON_RATE_LIMIT: { type: 'integer', minimum: 1, default: 60 },
    SMTP_URL: { type: 'string', default: '' },
    ALERT_EMAIL_TO: { type: 'string', default: '' },
    ALERT_EMAIL_FROM: { type: 'string', default: 'alma-cashnet@localhost' },
    METRICS_ALLOW: { type: 'string', default: '' },
    ALMA_UI_URL: { type: 'string', pattern: '^(https?://[^\\s"<>]+)?$', default: '' },
    PARTIAL_PAYMENTS: { type: 'string', enum: ['on', 'off'], default: 'off' },
    RECEIPT_EMAIL: { type: 'string', enum: ['on', 'off'], default: 'off' },
    LIBRARY_RECEIPT_COPY_TO: { type: 'string', pattern: MAILBOX, default: '' },
    RECEIPT_EMAIL_FROM: { type: 'string', pattern: MAILBOX, default: '' },
    RECEIPT_RETRY_BASE_MS: { type: 'integer', minimum: 1, maximum: 3600000, default: 30000 },
    RECEIPT_RETRY_MAX_MS: { type: 'integer', minimum: 1, maximum: 86400000, default: 3600000 },
    CAMPUSES_FILE: { type: 'string', default: '' }
  }
} as const

/** Every variable of the schema (the campuses file may name only these). */
export const VARIABLES: readonly string[] = Object.keys(schema.properties)

export interface Config {
  port: number
  host: string
  publicUrl: string
  almaApiUrl: string
  almaApiKey: string
  almaUserIdType: string
  almaRateLimit: number
  almaPaymentMethod: 'ONLINE' | 'CREDIT_CARD' | 'CASH'
  almaTimeoutMs: number
  /** a larger answer from Alma is refused unread (AlmaResponseTooLarge) */
  almaMaxResponseBytes: number
  /** PAYMENT_PROVIDER: who takes the money (SPEC 13) */
  paymentProvider: 'cashnet' | 'paypal'
  paypalApiUrl: string
  paypalClientId: string
  paypalClientSecret: string
  paypalWebhookId: string
  /** '' for a PayPal deployment */
  cashnetCheckoutUrl: string
  cashnetItemCode: string
  cashnetItemCodes: ReadonlyMap<string, string>
  cashnetRefType: string
  cashnetPostbackAllow: readonly string[]
  /** CASHNET_POSTBACK_TOKEN: when not empty, a postback must carry ?token=<this> */
  cashnetPostbackToken: string
  ezproxyAllow: readonly string[]
  ezproxyUserHeader: string
  ezproxyUserHeaderEncoding: 'plain' | 'base64'
  /** where /logout sends the browser: EZPROXY_LOGOUT_URL, else EZPROXY_URL/logout, else '' (a page instead) */
  ezproxyLogoutUrl: string
  ezproxySecretHeader: string
  ezproxySecret: string
  trustProxy: readonly string[]
  cookieSecret: string
  secureCookies: boolean
  databasePath: string
  /** DATABASE_URL: when not empty, the ledger is in PostgreSQL and DATABASE_PATH is not used (SPEC 11) */
  databaseUrl: string
  minPayment: Cents
  payableFeeTypes: ReadonlySet<string>
  payableOwners: ReadonlySet<string>
  releaseBlocks: ReadonlySet<string>
  adminUsers: ReadonlySet<string>
  authMode: 'header' | 'userobject' | 'primo'
  /** ALMA_INSTITUTION_CODE: required for AUTH_MODE=primo (the JWKS and issuer defaults are built from it) */
  almaInstitutionCode: string
  /** PRIMO_JWKS_URL, or the North American default for the institution; '' unless AUTH_MODE=primo */
  primoJwksUrl: string
  /** PRIMO_ISSUER, or the North American default for the institution; '' unless AUTH_MODE=primo */
  primoIssuer: string
  /** PAY_LINKS=on: staff may e-mail a patron a /pay/<token> link */
  payLinks: boolean
  payLinkTtlHours: number
  /** PAY_LINK_URL: the base of e-mailed pay links, the service's own address without EZproxy (default PUBLIC_URL) */
  payLinkUrl: string
  ezproxyUrl: string
  ezproxyWskey: string
  sessionTtlMinutes: number
  sessionIdleMinutes: number
  libraryName: string
  libraryLogoUrl: string
  accentColor: string
  currency: string
  logLevel: string
  postingMaxAttempts: number
  postingRetryBaseMs: number
  postingRetryMaxMs: number
  /** how long a process may hold a paid checkout's posting before another may take it over (SPEC 11) */
  postingLeaseSeconds: number
  /** service processes `npm start` forks on this machine (SPEC 11) */
  webConcurrency: number
  paidAlertMinutes: number
  patronRateLimit: number
  smtpUrl: string
  alertEmailTo: string
  alertEmailFrom: string
  /** TIMEZONE: the library's zone for pages, reports and day boundaries (the process's zone when not set) */
  timeZone: string
  /** METRICS_ALLOW: peers that may read /metrics (nobody when empty) */
  metricsAllow: readonly string[]
  /** ALMA_UI_URL: Alma's staff interface (e.g. https://myinst.alma.exlibrisgroup.com), for links to a patron; '' for none */
  almaUiUrl: string
  /** PARTIAL_PAYMENTS=on: the fines form may carry amount_<fee id> to pay part of a fee */
  partialPayments: boolean
  /** RECEIPT_EMAIL=on: a receipt e-mail per payment recorded in Alma (or handed to staff), through the outbox */
  receiptEmail: boolean
  /** LIBRARY_RECEIPT_COPY_TO: a library mailbox that gets a copy of every receipt; '' for none */
  libraryReceiptCopyTo: string
  /** RECEIPT_EMAIL_FROM, else ALERT_EMAIL_FROM: the receipts' sender */
  receiptEmailFrom: string
  /** a receipt the mail server did not take is tried again after this long, doubling up to receiptRetryMaxMs */
  receiptRetryBaseMs: number
  receiptRetryMaxMs: number
  /** CAMPUSES_FILE: the campuses of a system deployment (SPEC 12); '' for one campus from the environment */
  campusesFile: string
  /** the campus this configuration belongs to (SPEC 12); absent for the one campus of an environment configuration */
  campus?: string
}

export class ConfigError extends Error {
  readonly kind = 'ConfigError'
  constructor (readonly variable: string, expected: string) {
    super(`configuration: ${variable} ${expected}`)
  }
}

function list (value: string): string[] {
  return value.split(',').map(s => s.trim()).filter(s => s !== '')
}

function addressList (variable: string, value: string): string[] {
  const entries = list(value)
  for (const entry of entries) {
    try {
      proxyAddr.compile(entry)
    } catch {
      throw new ConfigError(variable, `has "${entry}", which is not an IP address or CIDR range (expected e.g. 192.0.2.10, 192.0.2.0/24, 2001:db8::/32)`)
    }
  }
  return entries
}

const HINTS: Record<string, string> = {
  ALMA_API_KEY: 'the Alma API key from the Ex Libris Developer Network, with Users read/write',
  CASHNET_ITEM_CODE: 'the CashNet item code for a fee line, e.g. LIB-FINE',
  CASHNET_POSTBACK_ALLOW: 'the IPs or CIDR ranges CashNet posts results from, comma-separated (ask Transact)',
  EZPROXY_ALLOW: 'the IPs or CIDR ranges of the EZproxy servers, comma-separated',
  CASHNET_CHECKOUT_URL: 'the CashNet store URL, e.g. https://commerce.cashnet.com/LIBFINES',
  PAYPAL_CLIENT_ID: 'the client id of the PayPal REST app (developer.paypal.com, Apps & Credentials)',
  PAYPAL_CLIENT_SECRET: 'the secret of the PayPal REST app',
  PAYPAL_WEBHOOK_ID: 'the id PayPal gave the webhook registered for PUBLIC_URL/paypal/webhook'
}

/** What each variable expects, for the one-line start-up error. */
function describe (variable: string): string {
  const property = (schema.properties as Record<string, { type: string, enum?: readonly string[], pattern?: string, minLength?: number, minimum?: number, maximum?: number }>)[variable]
  if (property === undefined) return 'is not valid'
  const hint = HINTS[variable]
  if (hint !== undefined) return hint
  if (property.enum !== undefined) return `must be one of ${property.enum.join(', ')}`
  if (property.type === 'integer') return `must be a whole number${property.minimum !== undefined ? ` from ${property.minimum}` : ''}${property.maximum !== undefined ? ` to ${property.maximum}` : ''}`
  if (variable === 'COOKIE_SECRET') return 'must be at least 32 characters of random text'
  if (variable === 'DATABASE_URL') return 'must be empty (SQLite at DATABASE_PATH) or a PostgreSQL URL like postgres://user:password@host:5432/dbname'
  if (variable.endsWith('_URL')) return 'must be an absolute http(s) URL'
  if (variable === 'MIN_PAYMENT') return 'must be an amount like 0.01 or 5.00'
  if (variable === 'CASHNET_ITEM_CODES') return 'must look like OVERDUEFINE=LIB-OVD,LOSTITEMREPLACEMENTFEE=LIB-LOST'
  if (variable === 'ACCENT_COLOR') return 'must be a colour like #1d4f91'
  if (variable === 'LIBRARY_RECEIPT_COPY_TO' || variable === 'RECEIPT_EMAIL_FROM') return 'must be one e-mail address, like fines@library.example.edu'
  if (variable === 'CASHNET_POSTBACK_TOKEN') return 'must be 16 to 256 URL-safe characters (letters, digits, . _ ~ -), e.g. the output of: openssl rand -hex 32'
  if (property.pattern !== undefined) return `does not match the expected format ${property.pattern}`
  return 'is not valid'
}

type Schema = typeof schema
type Variable = keyof Schema['properties']

/** env-schema over the given schema; the first problem becomes a ConfigError naming the variable. */
function validate (env: Record<string, string | undefined>, subject: { type: 'object', required?: readonly string[], properties: Record<string, object> }): Record<string, any> {
  const data: Record<string, string> = {}
  for (const key of Object.keys(subject.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') data[key] = value
  }
  try {
    // env: false: only the variables handed in (a test's, a job's), never whatever else process.env holds
    return envSchema({ schema: subject, data, dotenv: false, env: false })
  } catch (error: any) {
    const first = error?.errors?.[0]
    const missing = first?.params?.missingProperty as string | undefined
    if (missing !== undefined) throw new ConfigError(missing, `is required: ${describe(missing)}`)
    const variable = String(first?.instancePath ?? '').replace(/^\//, '')
    // DATABASE_URL may carry a password: never echoed
    if (variable === 'DATABASE_URL') throw new ConfigError(variable, describe(variable))
    if (variable !== '') throw new ConfigError(variable, `${describe(variable)} (got ${String(JSON.stringify(data[variable] ?? '')).slice(0, 60)})`)
    throw new ConfigError('environment', String(error?.message ?? error))
  }
}

/** Reads and validates the configuration; throws a ConfigError whose message names the variable. */
export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const raw = validate(env, schema)

  const itemCodes = new Map<string, string>()
  for (const pair of list(raw.CASHNET_ITEM_CODES)) {
    const [feeType, code] = pair.split('=').map(s => s.trim())
    itemCodes.set(feeType.toUpperCase(), code)
  }
  if (raw.AUTH_MODE === 'userobject') {
    if (raw.EZPROXY_URL === '') throw new ConfigError('EZPROXY_URL', 'is required when AUTH_MODE=userobject: the EZproxy base URL, e.g. https://ezproxy.example.edu')
    if (raw.EZPROXY_WSKEY === '') throw new ConfigError('EZPROXY_WSKEY', 'is required when AUTH_MODE=userobject: the LocalWSKey from EZproxy config.txt')
  }
  if ((raw.EZPROXY_SECRET_HEADER === '') !== (raw.EZPROXY_SECRET === '')) {
    throw new ConfigError(raw.EZPROXY_SECRET === '' ? 'EZPROXY_SECRET' : 'EZPROXY_SECRET_HEADER', 'must be set together with ' + (raw.EZPROXY_SECRET === '' ? 'EZPROXY_SECRET_HEADER' : 'EZPROXY_SECRET'))
  }
  const required = raw.PAYMENT_PROVIDER === 'paypal'
    ? ['PAYPAL_CLIENT_ID', 'PAYPAL_CLIENT_SECRET', 'PAYPAL_WEBHOOK_ID']
    : ['CASHNET_CHECKOUT_URL', 'CASHNET_ITEM_CODE', 'CASHNET_POSTBACK_ALLOW']
  for (const variable of required) {
    if (raw[variable] === '') throw new ConfigError(variable, `is required when PAYMENT_PROVIDER=${String(raw.PAYMENT_PROVIDER)}: ${HINTS[variable] ?? describe(variable)}`)
  }
  if (raw.AUTH_MODE === 'primo' && raw.ALMA_INSTITUTION_CODE === '') {
    throw new ConfigError('ALMA_INSTITUTION_CODE', 'is required when AUTH_MODE=primo: your institution code, e.g. 01ABC_INST (the part before the colon in your Primo VE vid)')
  }
  if (raw.RECEIPT_EMAIL === 'on' && String(raw.SMTP_URL) === '') {
    throw new ConfigError('SMTP_URL', 'is required when RECEIPT_EMAIL=on: the mail server receipts go through, e.g. smtp://mail.example.edu:25')
  }
  const publicUrl = String(raw.PUBLIC_URL).replace(/\/+$/, '')
  const minPayment = parseCents(raw.MIN_PAYMENT)
  if (minPayment < 1) throw new ConfigError('MIN_PAYMENT', 'must be at least 0.01')

  return {
    port: raw.PORT,
    host: raw.HOST,
    publicUrl,
    almaApiUrl: String(raw.ALMA_API_URL).replace(/\/+$/, ''),
    almaApiKey: raw.ALMA_API_KEY,
    almaUserIdType: raw.ALMA_USER_ID_TYPE,
    almaRateLimit: raw.ALMA_RATE_LIMIT,
    almaPaymentMethod: raw.ALMA_PAYMENT_METHOD,
    almaTimeoutMs: raw.ALMA_TIMEOUT_MS,
    almaMaxResponseBytes: raw.ALMA_MAX_RESPONSE_BYTES,
    paymentProvider: raw.PAYMENT_PROVIDER,
    paypalApiUrl: String(raw.PAYPAL_API_URL).replace(/\/+$/, ''),
    paypalClientId: raw.PAYPAL_CLIENT_ID,
    paypalClientSecret: raw.PAYPAL_CLIENT_SECRET,
    paypalWebhookId: raw.PAYPAL_WEBHOOK_ID,
    cashnetCheckoutUrl: raw.CASHNET_CHECKOUT_URL,
    cashnetItemCode: raw.CASHNET_ITEM_CODE,
    cashnetItemCodes: itemCodes,
    cashnetRefType: raw.CASHNET_REF_TYPE,
    cashnetPostbackAllow: addressList('CASHNET_POSTBACK_ALLOW', raw.CASHNET_POSTBACK_ALLOW),
    cashnetPostbackToken: raw.CASHNET_POSTBACK_TOKEN,
    ezproxyAllow: addressList('EZPROXY_ALLOW', raw.EZPROXY_ALLOW),
    ezproxyUserHeader: String(raw.EZPROXY_USER_HEADER).toLowerCase(),
    ezproxyUserHeaderEncoding: raw.EZPROXY_USER_HEADER_ENCODING,
    ezproxyLogoutUrl: raw.EZPROXY_LOGOUT_URL !== '' ? raw.EZPROXY_LOGOUT_URL : (raw.EZPROXY_URL !== '' ? `${String(raw.EZPROXY_URL).replace(/\/+$/, '')}/logout` : ''),
    ezproxySecretHeader: String(raw.EZPROXY_SECRET_HEADER).toLowerCase(),
    ezproxySecret: raw.EZPROXY_SECRET,
    trustProxy: addressList('TRUST_PROXY', raw.TRUST_PROXY),
    cookieSecret: raw.COOKIE_SECRET,
    secureCookies: publicUrl.startsWith('https://'),
    databasePath: raw.DATABASE_PATH,
    databaseUrl: raw.DATABASE_URL,
    minPayment,
    payableFeeTypes: new Set(list(raw.PAYABLE_FEE_TYPES).map(s => s.toUpperCase())),
    payableOwners: new Set(list(raw.PAYABLE_OWNERS).map(s => s.toUpperCase())),
    releaseBlocks: new Set(list(raw.RELEASE_BLOCKS).map(s => s.toUpperCase())),
    adminUsers: new Set(list(raw.ADMIN_USERS)),
    authMode: raw.AUTH_MODE,
    almaInstitutionCode: raw.ALMA_INSTITUTION_CODE,
    primoJwksUrl: raw.AUTH_MODE !== 'primo' ? '' : raw.PRIMO_JWKS_URL !== '' ? raw.PRIMO_JWKS_URL : defaultPrimoJwksUrl(raw.ALMA_INSTITUTION_CODE),
    primoIssuer: raw.AUTH_MODE !== 'primo' ? '' : raw.PRIMO_ISSUER !== '' ? raw.PRIMO_ISSUER : defaultPrimoIssuer(raw.ALMA_INSTITUTION_CODE),
    payLinks: raw.PAY_LINKS === 'on',
    payLinkTtlHours: raw.PAY_LINK_TTL_HOURS,
    payLinkUrl: raw.PAY_LINK_URL === '' ? publicUrl : String(raw.PAY_LINK_URL).replace(/\/+$/, ''),
    ezproxyUrl: String(raw.EZPROXY_URL).replace(/\/+$/, ''),
    ezproxyWskey: raw.EZPROXY_WSKEY,
    sessionTtlMinutes: raw.SESSION_TTL_MINUTES,
    sessionIdleMinutes: raw.SESSION_IDLE_MINUTES,
    libraryName: raw.LIBRARY_NAME,
    libraryLogoUrl: raw.LIBRARY_LOGO_URL,
    accentColor: raw.ACCENT_COLOR,
    currency: raw.CURRENCY,
    logLevel: raw.LOG_LEVEL,
    postingMaxAttempts: raw.POSTING_MAX_ATTEMPTS,
    postingRetryBaseMs: raw.POSTING_RETRY_BASE_MS,
    postingRetryMaxMs: raw.POSTING_RETRY_MAX_MS,
    postingLeaseSeconds: raw.POSTING_LEASE_SECONDS,
    webConcurrency: raw.WEB_CONCURRENCY,
    paidAlertMinutes: raw.PAID_ALERT_MINUTES,
    patronRateLimit: raw.PATRON_RATE_LIMIT,
    smtpUrl: raw.SMTP_URL,
    alertEmailTo: raw.ALERT_EMAIL_TO,
    alertEmailFrom: raw.ALERT_EMAIL_FROM,
    timeZone: timeZoneOf(raw.TIMEZONE),
    metricsAllow: addressList('METRICS_ALLOW', raw.METRICS_ALLOW),
    almaUiUrl: String(raw.ALMA_UI_URL).replace(/\/+$/, ''),
    partialPayments: raw.PARTIAL_PAYMENTS === 'on',
    receiptEmail: raw.RECEIPT_EMAIL === 'on',
    libraryReceiptCopyTo: raw.LIBRARY_RECEIPT_COPY_TO,
    receiptEmailFrom: raw.RECEIPT_EMAIL_FROM !== '' ? raw.RECEIPT_EMAIL_FROM : raw.ALERT_EMAIL_FROM,
    receiptRetryBaseMs: raw.RECEIPT_RETRY_BASE_MS,
    receiptRetryMaxMs: raw.RECEIPT_RETRY_MAX_MS,
    campusesFile: raw.CAMPUSES_FILE
  }
}

/** TIMEZONE as given (an IANA zone such as America/Los_Angeles), else the process's own zone. */
function timeZoneOf (value: string | undefined): string {
  const zone = value ?? ''
  if (zone === '') return processTimeZone()
  if (!isTimeZone(zone)) throw new ConfigError('TIMEZONE', `must be an IANA time zone such as America/Los_Angeles (got ${JSON.stringify(zone).slice(0, 60)})`)
  return zone
}

/** The batch jobs (scripts/): each reads only the variables it needs, never the web service's secrets. */
export type Job = 'reconcile' | 'export:fines' | 'export:gl' | 'export:holds' | 'migrate'

/** The service's variables a job may read, as a job sees them. */
export interface JobConfig {
  databasePath: string
  databaseUrl: string
  almaApiUrl: string
  almaApiKey: string
  almaRateLimit: number
  almaTimeoutMs: number
  currency: string
  logLevel: string
  /** TIMEZONE, else the process's zone */
  timeZone: string
  /** reconcile --paypal: the REST app whose Transaction Search is read */
  paypalApiUrl: string
  paypalClientId: string
  paypalClientSecret: string
  /** CAMPUS (set from --campus with CAMPUSES_FILE, SPEC 12): the campus whose ledger the job reads; absent for the one campus */
  campus?: string
}

const JOB_VARIABLES: Record<Exclude<keyof JobConfig, 'campus'>, Variable> = {
  databasePath: 'DATABASE_PATH',
  databaseUrl: 'DATABASE_URL',
  almaApiUrl: 'ALMA_API_URL',
  almaApiKey: 'ALMA_API_KEY',
  almaRateLimit: 'ALMA_RATE_LIMIT',
  almaTimeoutMs: 'ALMA_TIMEOUT_MS',
  currency: 'CURRENCY',
  logLevel: 'LOG_LEVEL',
  timeZone: 'TIMEZONE',
  paypalApiUrl: 'PAYPAL_API_URL',
  paypalClientId: 'PAYPAL_CLIENT_ID',
  paypalClientSecret: 'PAYPAL_CLIENT_SECRET'
}

/**
 * Where a job's default differs from the service's, and why. A job shares Alma's per-institution API budget
 * (25 calls a second) with the running service, so it takes a small part of it; it writes to stderr only what
 * cron should mail (reconcile: errors; the fines extract: warnings too, such as a slow Analytics page); and
 * Analytics pages are slow, so the fines extract waits longer for one.
 */
export const JOB_DEFAULTS: Record<Job, Partial<Record<Variable, string | number>>> = {
  reconcile: { ALMA_RATE_LIMIT: 5, LOG_LEVEL: 'error' },
  'export:fines': { ALMA_RATE_LIMIT: 5, LOG_LEVEL: 'warn', ALMA_TIMEOUT_MS: 120000 },
  'export:gl': {},
  'export:holds': {},
  migrate: {}
}

/** A variable's default for a job: the job's own (JOB_DEFAULTS), else the service's; as text, for --help. */
export function jobDefault (job: Job, variable: Variable): string {
  const own = JOB_DEFAULTS[job][variable]
  if (own !== undefined) return String(own)
  const property = schema.properties[variable] as { default?: string | number }
  return property.default === undefined ? '' : String(property.default)
}

/**
 * The service's variables a job reads, validated by the service's own schema with the job's defaults: a bad
 * value is refused with the same line the service would print. `required` names what this job cannot run
 * without (for the service some of these have defaults, or are required for other reasons).
 */
export function loadJobConfig (job: Job, env: Record<string, string | undefined>, required: readonly Variable[] = []): JobConfig {
  const properties: Record<string, object> = {}
  for (const variable of Object.values(JOB_VARIABLES)) {
    const property = schema.properties[variable] as Record<string, unknown>
    const own = JOB_DEFAULTS[job][variable]
    properties[variable] = own === undefined ? property : { ...property, default: own }
  }
  const raw = validate(env, { type: 'object', required, properties })
  return {
    databasePath: raw.DATABASE_PATH,
    databaseUrl: raw.DATABASE_URL,
    almaApiUrl: String(raw.ALMA_API_URL).replace(/\/+$/, ''),
    almaApiKey: raw.ALMA_API_KEY ?? '',
    almaRateLimit: raw.ALMA_RATE_LIMIT,
    almaTimeoutMs: raw.ALMA_TIMEOUT_MS,
    currency: raw.CURRENCY,
    logLevel: raw.LOG_LEVEL,
    timeZone: timeZoneOf(raw.TIMEZONE),
    paypalApiUrl: String(raw.PAYPAL_API_URL).replace(/\/+$/, ''),
    paypalClientId: raw.PAYPAL_CLIENT_ID ?? '',
    paypalClientSecret: raw.PAYPAL_CLIENT_SECRET ?? '',
    ...(env.CAMPUS !== undefined && env.CAMPUS !== '' ? { campus: env.CAMPUS } : {})
  }
}
