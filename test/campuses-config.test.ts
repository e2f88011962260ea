// SPEC 12's campuses file: defaults, "env:NAME" secrets, process-wide variables from the environment only, and
// one start-up line naming the campus and the variable for anything wrong.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { campusJobEnvironment, loadCampuses } from '../src/campuses/config.ts'
import { ConfigError, loadJobConfig } from '../src/config.ts'
import { tsNodeArgs, tsNodeEnv } from './support/ts-child.ts'

const directory = mkdtempSync(join(tmpdir(), 'campuses-config-'))
t.teardown(() => { rmSync(directory, { recursive: true, force: true }) })
let files = 0
function campusesFile (content: unknown): string {
  const file = join(directory, `campuses-${++files}.json`)
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content))
  return file
}

const cashnet = { CASHNET_CHECKOUT_URL: 'https://commerce.cashnet.com/LIB', CASHNET_ITEM_CODE: 'LIB-FINE', CASHNET_POSTBACK_ALLOW: '192.0.2.10' }
const processEnv = { COOKIE_SECRET: 'c'.repeat(40), DATABASE_PATH: '/var/lib/alma-cashnet/payments.sqlite', PORT: '3100' }
// each campus its own EZproxy (two campuses trusting one EZproxy in header mode are refused)
const EZPROXIES: Record<string, string> = { north: '198.51.100.1', south: '198.51.100.2', sanmarcos: '198.51.100.3', pomona: '198.51.100.4' }
function campus (id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { PUBLIC_URL: `https://fines.example.edu/${id}`, ALMA_API_KEY: `env:${id.toUpperCase()}_KEY`, EZPROXY_ALLOW: EZPROXIES[id] ?? '198.51.100.9', ...extra }
}

t.test('the example file in config/ loads, with its secrets from the environment', async t => {
  const campuses = loadCampuses({ ...processEnv, CAMPUSES_FILE: 'config/campuses.example.json', SANMARCOS_ALMA_API_KEY: 'sm-key', POMONA_ALMA_API_KEY: 'pp-key', POMONA_PAYPAL_CLIENT_ID: 'id', POMONA_PAYPAL_CLIENT_SECRET: 'secret', POMONA_PAYPAL_WEBHOOK_ID: 'WH-1' })
  t.same(campuses?.map(c => c.id), ['sanmarcos', 'pomona'])
  t.equal(campuses?.[0].config.almaApiKey, 'sm-key')
  t.equal(campuses?.[1].config.almaApiKey, 'pp-key')
  t.equal(campuses?.[1].config.paymentProvider, 'paypal')
  t.equal(campuses?.[0].config.currency, 'USD', 'from defaults')
})

t.test('defaults apply, a campus overrides them, process-wide variables come from the environment', async t => {
  const file = campusesFile({ defaults: { ...cashnet, LIBRARY_NAME: 'Library', MIN_PAYMENT: 1 }, campuses: { north: campus('north'), south: campus('south', { LIBRARY_NAME: 'South Library' }) } })
  const campuses = loadCampuses({ ...processEnv, CAMPUSES_FILE: file, NORTH_KEY: 'north-key', SOUTH_KEY: 'south-key', ALMA_API_KEY: 'not-any-campus' })
  t.ok(campuses !== null)
  const [north, south] = campuses ?? []
  t.equal(north.config.libraryName, 'Library')
  t.equal(south.config.libraryName, 'South Library')
  t.equal(north.config.minPayment, 100, 'a number in the file is read as its text')
  t.equal(north.config.almaApiKey, 'north-key')
  t.equal(south.config.almaApiKey, 'south-key', 'never the environment\'s ALMA_API_KEY')
  t.equal(north.config.port, 3100)
  t.equal(north.config.cookieSecret, 'c'.repeat(40))
  t.equal(north.config.campus, 'north')
  t.equal(north.config.databasePath, '/var/lib/alma-cashnet/north.sqlite', 'each campus its own ledger beside DATABASE_PATH')
  t.equal(south.config.databasePath, '/var/lib/alma-cashnet/south.sqlite')
  t.equal(loadCampuses({ ...processEnv }), null, 'no CAMPUSES_FILE: one campus from the environment')
})

function paypal (webhookId: string, clientId = 'one-app'): Record<string, string> {
  return { PAYMENT_PROVIDER: 'paypal', PAYPAL_API_URL: 'https://api-m.sandbox.paypal.com', PAYPAL_CLIENT_ID: clientId, PAYPAL_CLIENT_SECRET: 'secret', PAYPAL_WEBHOOK_ID: webhookId }
}
const errors: Array<[string, unknown, Record<string, string>, RegExp]> = [
  ['a campus without a required variable', { defaults: cashnet, campuses: { north: campus('north', { EZPROXY_ALLOW: undefined }) } }, { NORTH_KEY: 'k' }, /^configuration: campus north: EZPROXY_ALLOW is required/],
  ['a PayPal campus without its client id', { defaults: cashnet, campuses: { pomona: campus('pomona', { PAYMENT_PROVIDER: 'paypal' }) } }, { POMONA_KEY: 'k' }, /^configuration: campus pomona: PAYPAL_CLIENT_ID is required when PAYMENT_PROVIDER=paypal/],
  ['a malformed value', { defaults: cashnet, campuses: { north: campus('north', { ACCENT_COLOR: 'blue' }) } }, { NORTH_KEY: 'k' }, /^configuration: campus north: ACCENT_COLOR must be a colour/],
  ['an env: secret that is not set', { defaults: cashnet, campuses: { north: campus('north') } }, {}, /^configuration: campus north: ALMA_API_KEY is "env:NORTH_KEY", but the environment variable NORTH_KEY is not set/],
  ['a process-wide variable in a campus', { defaults: cashnet, campuses: { north: campus('north', { PORT: 8080 }) } }, { NORTH_KEY: 'k' }, /^configuration: campus north: PORT is process-wide/],
  ['a process-wide variable in the defaults', { defaults: { ...cashnet, COOKIE_SECRET: 'x'.repeat(40) }, campuses: { north: campus('north') } }, { NORTH_KEY: 'k' }, /^configuration: campus defaults: COOKIE_SECRET is process-wide/],
  ['a misspelt variable', { defaults: cashnet, campuses: { north: campus('north', { ALMA_API_KEYS: 'x' }) } }, { NORTH_KEY: 'k' }, /^configuration: campus north: ALMA_API_KEYS is not a variable/],
  ['a bad campus id', { defaults: cashnet, campuses: { North_Campus: campus('north') } }, { NORTH_KEY: 'k' }, /^configuration: CAMPUSES_FILE \(.*\) has the campus id "North_Campus"/],
  ['no campuses', { defaults: cashnet, campuses: {} }, {}, /must name at least one campus/],
  ['not JSON', '{ "campuses": ', {}, /is not valid JSON/],
  ['two PayPal campuses on one PayPal app', { defaults: cashnet, campuses: { north: campus('north', paypal('N-WH')), south: campus('south', paypal('S-WH')) } }, { NORTH_KEY: 'k', SOUTH_KEY: 'k' }, /^configuration: campus south: PAYPAL_CLIENT_ID is the same as campus north's: each PayPal campus needs its own PayPal REST app and webhook/],
  ['two PayPal campuses on one webhook', { defaults: cashnet, campuses: { north: campus('north', paypal('WH-1', 'north-app')), south: campus('south', paypal('WH-1', 'south-app')) } }, { NORTH_KEY: 'k', SOUTH_KEY: 'k' }, /^configuration: campus south: PAYPAL_WEBHOOK_ID is the same as campus north's/],
  ['two CashNet campuses with one postback token', { defaults: { ...cashnet, CASHNET_POSTBACK_TOKEN: 'one-token-for-both-campuses' }, campuses: { north: campus('north'), south: campus('south') } }, { NORTH_KEY: 'k', SOUTH_KEY: 'k' }, /^configuration: campus south: CASHNET_POSTBACK_TOKEN is the same as campus north's: each CashNet campus needs its own token/],
  ['two campuses trusting one EZproxy address', { defaults: cashnet, campuses: { north: campus('north', { EZPROXY_ALLOW: '203.0.113.7' }), south: campus('south', { EZPROXY_ALLOW: '192.0.2.1, 203.0.113.7' }) } }, { NORTH_KEY: 'k', SOUTH_KEY: 'k' }, /^configuration: campus south: EZPROXY_ALLOW \(203\.0\.113\.7\) overlaps campus north's \(203\.0\.113\.7\): campus north \(AUTH_MODE=header\) would take campus south's EZproxy patrons for its own/],
  ['two campuses whose EZproxy ranges overlap', { defaults: cashnet, campuses: { north: campus('north', { EZPROXY_ALLOW: '203.0.113.0/24' }), south: campus('south', { EZPROXY_ALLOW: '203.0.113.128/25' }) } }, { NORTH_KEY: 'k', SOUTH_KEY: 'k' }, /^configuration: campus south: EZPROXY_ALLOW \(203\.0\.113\.128\/25\) overlaps campus north's \(203\.0\.113\.0\/24\)/],
  ['overlapping IPv6 and IPv4-mapped ranges', { defaults: cashnet, campuses: { north: campus('north', { EZPROXY_ALLOW: '2001:db8::/32' }), south: campus('south', { EZPROXY_ALLOW: '2001:db8:1::5' }) } }, { NORTH_KEY: 'k', SOUTH_KEY: 'k' }, /^configuration: campus south: EZPROXY_ALLOW \(2001:db8:1::5\) overlaps campus north's/],
  ['overlapping EZproxy ranges with one EZPROXY_SECRET for both', { defaults: { ...cashnet, EZPROXY_SECRET_HEADER: 'X-Fines-Secret', EZPROXY_SECRET: 'one-secret-for-both' }, campuses: { north: campus('north', { EZPROXY_ALLOW: '203.0.113.0/24' }), south: campus('south', { EZPROXY_ALLOW: '203.0.113.9' }) } }, { NORTH_KEY: 'k', SOUTH_KEY: 'k' }, /^configuration: campus south: EZPROXY_ALLOW \(203\.0\.113\.9\) overlaps campus north's/],
  ['overlapping EZproxy ranges where only the other campus has a secret', { defaults: cashnet, campuses: { north: campus('north', { EZPROXY_ALLOW: 'uniquelocal' }), south: campus('south', { EZPROXY_ALLOW: '10.1.2.3', EZPROXY_SECRET_HEADER: 'X-Fines-Secret', EZPROXY_SECRET: 'south-only' }) } }, { NORTH_KEY: 'k', SOUTH_KEY: 'k' }, /^configuration: campus south: EZPROXY_ALLOW \(10\.1\.2\.3\) overlaps campus north's \(uniquelocal\): campus north \(AUTH_MODE=header\)/],
  ['two userobject campuses asking one EZproxy', { defaults: { ...cashnet, AUTH_MODE: 'userobject', EZPROXY_WSKEY: 'wskey-of-the-one-ezproxy' }, campuses: { north: campus('north', { EZPROXY_URL: 'https://ezproxy.example.edu' }), south: campus('south', { EZPROXY_URL: 'https://EZPROXY.example.edu/' }) } }, { NORTH_KEY: 'k', SOUTH_KEY: 'k' }, /^configuration: campus south: EZPROXY_URL is the same as campus north's: with AUTH_MODE=userobject each campus needs its own EZproxy/],
  ['a value that is an object', { defaults: cashnet, campuses: { north: campus('north', { LIBRARY_NAME: { en: 'x' } }) } }, { NORTH_KEY: 'k' }, /^configuration: campus north: LIBRARY_NAME must be a string/]
]
for (const [name, content, env, message] of errors) {
  t.test(`refused with one line naming the campus and the variable: ${name}`, async t => {
    const file = campusesFile(content)
    t.throws(() => loadCampuses({ ...processEnv, ...env, CAMPUSES_FILE: file }), message)
    try { loadCampuses({ ...processEnv, ...env, CAMPUSES_FILE: file }) } catch (error) {
      t.ok(error instanceof ConfigError)
      t.notMatch((error as Error).message, '\n', 'one line')
    }
  })
}
t.test('what campuses may share: an EZproxy range told apart by secrets, or trusted by a campus not in header mode; CashNet\'s addresses; no token; not a userobject EZproxy', async t => {
  const apart = campusesFile({ defaults: { ...cashnet, EZPROXY_SECRET_HEADER: 'X-Fines-Secret' }, campuses: { north: campus('north', { EZPROXY_ALLOW: '203.0.113.0/24', EZPROXY_SECRET: 'env:NORTH_SECRET' }), south: campus('south', { EZPROXY_ALLOW: '203.0.113.9', EZPROXY_SECRET: 'env:SOUTH_SECRET' }) } })
  t.same(loadCampuses({ ...processEnv, CAMPUSES_FILE: apart, NORTH_KEY: 'k', SOUTH_KEY: 'k', NORTH_SECRET: 'north-secret', SOUTH_SECRET: 'south-secret' })?.map(c => c.id), ['north', 'south'], 'each its own EZPROXY_SECRET: the other EZproxy cannot send it')
  const primo = { AUTH_MODE: 'primo', ALMA_INSTITUTION_CODE: '01CALS_NORTH' }
  const notHeader = campusesFile({ defaults: cashnet, campuses: { north: campus('north', { ...primo, EZPROXY_ALLOW: '203.0.113.0/24' }), south: campus('south', { ...primo, ALMA_INSTITUTION_CODE: '01CALS_SOUTH', EZPROXY_ALLOW: '203.0.113.9' }) } })
  t.same(loadCampuses({ ...processEnv, CAMPUSES_FILE: notHeader, NORTH_KEY: 'k', SOUTH_KEY: 'k' })?.map(c => c.id), ['north', 'south'], 'AUTH_MODE=primo: no campus believes a peer\'s user header')
  const userobject = { AUTH_MODE: 'userobject', EZPROXY_WSKEY: 'wskey' }
  const ownEzproxies = campusesFile({ defaults: cashnet, campuses: { north: campus('north', { ...userobject, EZPROXY_URL: 'https://ezproxy.north.example.edu' }), south: campus('south', { ...userobject, EZPROXY_URL: 'https://ezproxy.south.example.edu' }) } })
  t.same(loadCampuses({ ...processEnv, CAMPUSES_FILE: ownEzproxies, NORTH_KEY: 'k', SOUTH_KEY: 'k' })?.map(c => c.id), ['north', 'south'], 'AUTH_MODE=userobject: each campus its own EZproxy')
  const tokens = campusesFile({ defaults: cashnet, campuses: { north: campus('north', { CASHNET_POSTBACK_TOKEN: 'north-token-0123456789' }), south: campus('south', { CASHNET_POSTBACK_TOKEN: 'south-token-0123456789' }), east: campus('east'), west: campus('west', { EZPROXY_ALLOW: '198.51.100.10' }) } })
  t.same(loadCampuses({ ...processEnv, CAMPUSES_FILE: tokens, NORTH_KEY: 'k', SOUTH_KEY: 'k', EAST_KEY: 'k', WEST_KEY: 'k' })?.map(c => c.id), ['north', 'south', 'east', 'west'], 'one CASHNET_POSTBACK_ALLOW for all, tokens of their own or none')
})

t.test('npm start refuses two campuses on one EZproxy with one line naming both campuses and the variable', async t => {
  const file = campusesFile({ defaults: cashnet, campuses: { sanmarcos: campus('sanmarcos', { EZPROXY_ALLOW: '192.0.2.0/24' }), pomona: campus('pomona', { EZPROXY_ALLOW: '192.0.2.44' }) } })
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', ...processEnv, PORT: '0', DATABASE_PATH: ':memory:', CAMPUSES_FILE: file, SANMARCOS_KEY: 'super-secret-sanmarcos-key', POMONA_KEY: 'super-secret-pomona-key' }
  const run = spawnSync(process.execPath, [...tsNodeArgs(), 'src/server.ts'], { env: { ...env, ...tsNodeEnv() }, encoding: 'utf8', timeout: 60000 })
  t.equal(run.status, 78, 'the process stops (EX_CONFIG)')
  const lines = run.stderr.trim().split('\n')
  t.equal(lines.length, 1, 'one line')
  t.match(lines[0], /^alma-cashnet: configuration: campus pomona: EZPROXY_ALLOW \(192\.0\.2\.44\) overlaps campus sanmarcos's \(192\.0\.2\.0\/24\)/)
  t.notMatch(run.stderr + run.stdout, 'super-secret')
})

t.test('a missing file is one line too', async t => {
  t.throws(() => loadCampuses({ ...processEnv, CAMPUSES_FILE: join(directory, 'nope.json') }), /^configuration: CAMPUSES_FILE \(.*nope.json\) cannot be read: ENOENT/)
})

t.test('a job reads one campus\'s settings (--campus / CAMPUS), required with CAMPUSES_FILE', async t => {
  const file = campusesFile({ defaults: { ...cashnet, TIMEZONE: 'America/Chicago' }, campuses: { north: campus('north', { ALMA_API_URL: 'https://north.example.edu/almaws/v1' }), south: campus('south') } })
  const env = { ...processEnv, CAMPUSES_FILE: file, NORTH_KEY: 'north-key', SOUTH_KEY: 'south-key' }
  const north = loadJobConfig('reconcile', campusJobEnvironment(env, 'north'), ['ALMA_API_KEY'])
  t.equal(north.almaApiKey, 'north-key')
  t.equal(north.almaApiUrl, 'https://north.example.edu/almaws/v1')
  t.equal(north.databasePath, '/var/lib/alma-cashnet/north.sqlite')
  t.equal(north.timeZone, 'America/Chicago')
  t.equal(north.almaRateLimit, 5, 'the job\'s own default still applies')
  t.equal(loadJobConfig('reconcile', campusJobEnvironment(env, 'south'), ['ALMA_API_KEY']).almaApiKey, 'south-key')
  t.throws(() => campusJobEnvironment(env, ''), /CAMPUS is required when CAMPUSES_FILE is set/)
  t.throws(() => campusJobEnvironment(env, 'east'), /CAMPUS is "east", which is not a campus of CAMPUSES_FILE \(north, south\)/)
  t.same(campusJobEnvironment({ ...processEnv }, ''), { ...processEnv }, 'without CAMPUSES_FILE the environment as it is')
})

t.test('a job\'s directories are the campus\'s own: a block\'s as it is, one set for every campus gets /<campus>', async t => {
  const file = campusesFile({
    defaults: { ...cashnet, HOLDS_STATE_DIR: '/var/lib/holds', GL_OUT_DIR: '/sftp/gl' },
    campuses: { north: campus('north', { GL_OUT_DIR: '/sftp/north/gl', HOLDS_OUT_DIR: '/sftp/north/holds' }), south: campus('south') }
  })
  const env = { ...processEnv, CAMPUSES_FILE: file, NORTH_KEY: 'k', SOUTH_KEY: 'k', HOLDS_OUT_DIR: '/sftp/holds', FINES_OUT_DIR: '/sftp/fines' }
  const pick = (e: Record<string, string | undefined>): Record<string, string | undefined> => ({ HOLDS_STATE_DIR: e.HOLDS_STATE_DIR, HOLDS_OUT_DIR: e.HOLDS_OUT_DIR, GL_OUT_DIR: e.GL_OUT_DIR, FINES_OUT_DIR: e.FINES_OUT_DIR })
  t.same(pick(campusJobEnvironment(env, 'north')), { HOLDS_STATE_DIR: '/var/lib/holds/north', HOLDS_OUT_DIR: '/sftp/north/holds', GL_OUT_DIR: '/sftp/north/gl', FINES_OUT_DIR: '/sftp/fines/north' })
  t.same(pick(campusJobEnvironment(env, 'south')), { HOLDS_STATE_DIR: '/var/lib/holds/south', HOLDS_OUT_DIR: '/sftp/holds/south', GL_OUT_DIR: '/sftp/gl/south', FINES_OUT_DIR: '/sftp/fines/south' })
  const bare = campusJobEnvironment({ ...processEnv, CAMPUSES_FILE: campusesFile({ defaults: cashnet, campuses: { north: campus('north') } }), NORTH_KEY: 'k' }, 'north')
  t.same(pick(bare), { HOLDS_STATE_DIR: 'data/holds/north', HOLDS_OUT_DIR: undefined, GL_OUT_DIR: undefined, FINES_OUT_DIR: undefined }, 'an output directory set nowhere stays required')
})

t.test('npm start refuses a campuses file with one line naming the campus and the variable, and no secret', async t => {
  const file = campusesFile({ defaults: cashnet, campuses: { sanmarcos: campus('sanmarcos'), pomona: campus('pomona', { PAYMENT_PROVIDER: 'paypal' }) } })
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', ...processEnv, PORT: '0', DATABASE_PATH: ':memory:', CAMPUSES_FILE: file, SANMARCOS_KEY: 'super-secret-sanmarcos-key', POMONA_KEY: 'super-secret-pomona-key' }
  const run = spawnSync(process.execPath, [...tsNodeArgs(), 'src/server.ts'], { env: { ...env, ...tsNodeEnv() }, encoding: 'utf8', timeout: 60000 })
  t.equal(run.status, 78, 'the process stops (EX_CONFIG)')
  const lines = run.stderr.trim().split('\n')
  t.equal(lines.length, 1, 'one line')
  t.match(lines[0], /^alma-cashnet: configuration: campus pomona: PAYPAL_CLIENT_ID is required when PAYMENT_PROVIDER=paypal/)
  t.notMatch(run.stderr + run.stdout, 'super-secret')
})
