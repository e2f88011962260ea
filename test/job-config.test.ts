// One configuration reader: the service and every batch job read the same variables through src/config.ts,
// with one default each (a job's own default stated once, in JOB_DEFAULTS), and only from the variables
// handed in.

import t from 'tap'
import { ConfigError, jobDefault, loadConfig, loadJobConfig } from '../src/config.ts'

const required = {
  PUBLIC_URL: 'https://fines.example.edu',
  ALMA_API_KEY: 'l7xx-test-key',
  CASHNET_CHECKOUT_URL: 'https://train.cashnet.com/LIBFINESTEST',
  CASHNET_ITEM_CODE: 'LIB-FINE',
  CASHNET_POSTBACK_ALLOW: '192.0.2.10',
  EZPROXY_ALLOW: '203.0.113.5',
  COOKIE_SECRET: 'x'.repeat(32)
}

t.test('a configuration handed in is the whole configuration: nothing leaks in from process.env', async t => {
  const before = process.env.LIBRARY_NAME
  process.env.LIBRARY_NAME = 'Leaked From The Shell'
  t.teardown(() => { if (before === undefined) delete process.env.LIBRARY_NAME; else process.env.LIBRARY_NAME = before })
  t.equal(loadConfig(required).libraryName, 'Library', 'the default, not the shell\'s variable')
  t.equal(loadConfig({ ...required, LIBRARY_NAME: 'Springfield' }).libraryName, 'Springfield')
})

t.test('a job reads the service\'s variables with the service\'s defaults, except where JOB_DEFAULTS says', async t => {
  const service = loadConfig(required)
  const reconcile = loadJobConfig('reconcile', { ALMA_API_KEY: 'k' }, ['ALMA_API_KEY'])
  t.equal(reconcile.databasePath, service.databasePath, 'the same ledger by default')
  t.equal(reconcile.almaApiUrl, service.almaApiUrl)
  t.equal(reconcile.almaTimeoutMs, service.almaTimeoutMs)
  t.equal(reconcile.currency, service.currency)
  t.equal(reconcile.almaRateLimit, 5, 'a job leaves most of Alma\'s budget to the service')
  t.equal(reconcile.logLevel, 'error')
  t.equal(loadJobConfig('export:fines', {}).almaTimeoutMs, 120000, 'Analytics pages are slow')
  t.equal(jobDefault('export:gl', 'DATABASE_PATH'), 'data/payments.sqlite')
  t.equal(jobDefault('reconcile', 'ALMA_RATE_LIMIT'), '5')
  const set = loadJobConfig('reconcile', { ALMA_API_KEY: 'k', ALMA_RATE_LIMIT: '7', ALMA_API_URL: 'https://alma.example.edu/almaws/v1/', LOG_LEVEL: 'debug' })
  t.same([set.almaRateLimit, set.almaApiUrl, set.logLevel], [7, 'https://alma.example.edu/almaws/v1', 'debug'], 'set values win, the URL normalised as for the service')
})

t.test('a job refuses a bad or missing variable with the service\'s own line', async t => {
  t.throws(() => loadJobConfig('reconcile', {}, ['ALMA_API_KEY']), { kind: 'ConfigError', message: /^configuration: ALMA_API_KEY is required/ })
  t.throws(() => loadJobConfig('reconcile', { ALMA_API_KEY: 'k', ALMA_RATE_LIMIT: '30' }), { kind: 'ConfigError', message: 'configuration: ALMA_RATE_LIMIT must be a whole number from 1 to 25 (got "30")' })
  let serviceLine = ''
  try { loadConfig({ ...required, ALMA_RATE_LIMIT: '30' }) } catch (error) { serviceLine = (error as ConfigError).message }
  t.equal(serviceLine, 'configuration: ALMA_RATE_LIMIT must be a whole number from 1 to 25 (got "30")', 'the same line from the service')
  t.throws(() => loadJobConfig('reconcile', { ALMA_API_KEY: 'k', LOG_LEVEL: 'loud' }), { kind: 'ConfigError', message: /LOG_LEVEL must be one of/ })
})
