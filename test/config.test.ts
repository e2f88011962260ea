// Configuration: every SPEC section 4 variable with its default; a missing or malformed value stops start-up
// with one clear line naming the variable.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { ConfigError, loadConfig } from '../src/config.ts'
import { tsNodeArgs, tsNodeEnv } from './support/ts-child.ts'

const required = {
  PUBLIC_URL: 'https://fines.example.edu',
  ALMA_API_KEY: 'l7xx-test-key',
  CASHNET_CHECKOUT_URL: 'https://train.cashnet.com/LIBFINESTEST',
  CASHNET_ITEM_CODE: 'LIB-FINE',
  CASHNET_POSTBACK_ALLOW: '192.0.2.10, 198.51.100.0/24',
  EZPROXY_ALLOW: '203.0.113.5,2001:db8::/32',
  COOKIE_SECRET: 'x'.repeat(32)
}

t.test('defaults follow SPEC section 4', async t => {
  const config = loadConfig(required)
  t.equal(config.port, 3000)
  t.equal(config.host, '127.0.0.1')
  t.equal(config.almaApiUrl, 'https://api-na.hosted.exlibrisgroup.com/almaws/v1')
  t.equal(config.almaUserIdType, 'all_unique')
  t.equal(config.almaRateLimit, 20)
  t.equal(config.almaPaymentMethod, 'ONLINE')
  t.equal(config.cashnetRefType, 'ALMACHECKOUT')
  t.equal(config.ezproxyUserHeader, 'x-ezproxy-user')
  t.equal(config.databasePath, 'data/payments.sqlite')
  t.equal(config.minPayment, 1)
  t.equal(config.authMode, 'header')
  t.equal(config.libraryName, 'Library')
  t.equal(config.currency, 'USD')
  t.equal(config.logLevel, 'info')
  t.equal(config.payableFeeTypes.size, 0)
  t.equal(config.releaseBlocks.size, 0)
  t.same(config.cashnetPostbackAllow, ['192.0.2.10', '198.51.100.0/24'])
  t.equal(config.secureCookies, true, 'https PUBLIC_URL: Secure cookies')
})

t.test('lists and maps are parsed once', async t => {
  const config = loadConfig({
    ...required,
    CASHNET_ITEM_CODES: 'OVERDUEFINE=LIB-OVD, LOSTITEMREPLACEMENTFEE=LIB-LOST',
    PAYABLE_FEE_TYPES: 'overduefine,LOSTITEMREPLACEMENTFEE',
    RELEASE_BLOCKS: 'FINES, GENERAL',
    ADMIN_USERS: 'jdoe, asmith',
    MIN_PAYMENT: '5.50',
    PUBLIC_URL: 'http://127.0.0.1:8080/'
  })
  t.same([...config.cashnetItemCodes], [['OVERDUEFINE', 'LIB-OVD'], ['LOSTITEMREPLACEMENTFEE', 'LIB-LOST']])
  t.ok(config.payableFeeTypes.has('OVERDUEFINE'))
  t.ok(config.releaseBlocks.has('GENERAL'))
  t.ok(config.adminUsers.has('asmith'))
  t.equal(config.minPayment, 550)
  t.equal(config.publicUrl, 'http://127.0.0.1:8080', 'no trailing slash')
  t.equal(config.secureCookies, false, 'plain-HTTP demo: no Secure flag')
})

const bad: Array<[string, Record<string, string>, RegExp]> = [
  ['ALMA_API_KEY', { ALMA_API_KEY: '' }, /ALMA_API_KEY is required/],
  ['PUBLIC_URL', { PUBLIC_URL: 'fines.example.edu' }, /PUBLIC_URL must be an absolute http\(s\) URL/],
  ['COOKIE_SECRET', { COOKIE_SECRET: 'short' }, /COOKIE_SECRET must be at least 32 characters/],
  ['EZPROXY_ALLOW', { EZPROXY_ALLOW: '10.0.0.300' }, /EZPROXY_ALLOW has "10.0.0.300", which is not an IP address or CIDR range/],
  ['CASHNET_POSTBACK_ALLOW', { CASHNET_POSTBACK_ALLOW: 'commerce.cashnet.com' }, /CASHNET_POSTBACK_ALLOW has/],
  ['ALMA_RATE_LIMIT', { ALMA_RATE_LIMIT: '40' }, /ALMA_RATE_LIMIT must be a whole number from 1 to 25/],
  ['ALMA_PAYMENT_METHOD', { ALMA_PAYMENT_METHOD: 'CHEQUE' }, /ALMA_PAYMENT_METHOD must be one of ONLINE, CREDIT_CARD, CASH/],
  ['AUTH_MODE', { AUTH_MODE: 'cookie' }, /AUTH_MODE must be one of header, userobject/],
  ['MIN_PAYMENT', { MIN_PAYMENT: '0.001' }, /MIN_PAYMENT must be an amount like 0.01/],
  ['MIN_PAYMENT zero', { MIN_PAYMENT: '0.00' }, /MIN_PAYMENT must be at least 0.01/],
  ['CASHNET_ITEM_CODES', { CASHNET_ITEM_CODES: 'OVERDUEFINE' }, /CASHNET_ITEM_CODES must look like/],
  ['PORT', { PORT: 'eighty' }, /PORT must be a whole number/],
  ['userobject without EZPROXY_URL', { AUTH_MODE: 'userobject' }, /EZPROXY_URL is required when AUTH_MODE=userobject/],
  ['secret header without secret', { EZPROXY_SECRET_HEADER: 'X-Secret' }, /EZPROXY_SECRET must be set together with EZPROXY_SECRET_HEADER/],
  ['ACCENT_COLOR', { ACCENT_COLOR: 'red;}' }, /ACCENT_COLOR must be a colour like #1d4f91/]
]

for (const [name, change, message] of bad) {
  t.test(`a bad ${name} is refused with a line naming it`, async t => {
    let error: unknown
    try {
      loadConfig({ ...required, ...change })
    } catch (caught) {
      error = caught
    }
    t.ok(error instanceof ConfigError, 'a ConfigError')
    t.match((error as Error)?.message, message)
  })
}

t.test('npm start refuses to start without a required variable, with one line naming it and no secret', async t => {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', ...required, ALMA_API_KEY: 'super-secret-alma-key' }
  delete env.CASHNET_ITEM_CODE
  const run = spawnSync(process.execPath, [...tsNodeArgs(), 'src/server.ts'], { env: { ...env, ...tsNodeEnv() }, encoding: 'utf8', timeout: 60000 })
  t.not(run.status, 0, 'the process stops')
  const lines = run.stderr.trim().split('\n')
  t.equal(lines.length, 1, 'one line')
  t.match(lines[0], /^alma-cashnet: configuration: CASHNET_ITEM_CODE is required/)
  t.notMatch(run.stderr + run.stdout, 'super-secret-alma-key')
})

t.test('identity, session and postback-token settings (issues 13 and 20)', async t => {
  const config = loadConfig(required)
  t.equal(config.ezproxyUserHeaderEncoding, 'plain')
  t.equal(config.sessionIdleMinutes, 20)
  t.equal(config.sessionTtlMinutes, 60)
  t.equal(config.cashnetPostbackToken, '')
  t.equal(config.ezproxyLogoutUrl, '', 'no EZproxy URL known: no logout URL')
  t.equal(loadConfig({ ...required, EZPROXY_URL: 'https://ezproxy.example.edu/' }).ezproxyLogoutUrl, 'https://ezproxy.example.edu/logout', 'EZPROXY_URL/logout by default')
  t.equal(loadConfig({ ...required, EZPROXY_URL: 'https://ezproxy.example.edu', EZPROXY_LOGOUT_URL: 'https://login.example.edu/logout' }).ezproxyLogoutUrl, 'https://login.example.edu/logout')
  t.equal(loadConfig({ ...required, EZPROXY_USER_HEADER_ENCODING: 'base64' }).ezproxyUserHeaderEncoding, 'base64')
  t.equal(loadConfig({ ...required, CASHNET_POSTBACK_TOKEN: 'a'.repeat(32) }).cashnetPostbackToken, 'a'.repeat(32))
  const bad: Array<[string, string]> = [
    ['EZPROXY_USER_HEADER_ENCODING', 'base32'],
    ['SESSION_IDLE_MINUTES', '0'],
    ['EZPROXY_LOGOUT_URL', 'javascript:alert(1)'],
    ['CASHNET_POSTBACK_TOKEN', 'short'],
    ['CASHNET_POSTBACK_TOKEN', 'has spaces in it, sixteen+']
  ]
  for (const [variable, value] of bad) {
    let refused: unknown
    try {
      loadConfig({ ...required, [variable]: value })
    } catch (error) {
      refused = error
    }
    t.ok(refused instanceof ConfigError, `${variable}=${value} is refused`)
    t.equal((refused as ConfigError | undefined)?.variable, variable, 'naming the variable')
  }
})
