// Item 8 of issue 13: access fails closed. Every registered route is listed with the rule it is served under
// and compared with the table below, so a new route cannot slip through as public unnoticed; a route that
// declares no rule is patron-only.

import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { SANDBOX_COOKIE_SECRET } from '../../src/sandbox/stack.ts'
import { build, buildCampuses, send, UNTRUSTED_PEER } from '../helper.ts'
import { EZPROXY_PEER } from './direct.ts'

/** Every route, method by method, and who may use it. Adding a route means adding a row here. */
const EXPECTED: Record<string, string> = {
  'GET /healthz': 'public',
  'HEAD /healthz': 'public',
  'GET /readyz': 'public',
  'HEAD /readyz': 'public',
  'GET /metrics': 'metrics',
  'HEAD /metrics': 'metrics',
  'GET /assets/:name': 'public',
  'HEAD /assets/:name': 'public',
  'GET /': 'patron',
  'HEAD /': 'patron',
  'POST /checkout': 'patron',
  'POST /cashnet/postback': 'cashnet',
  'GET /cashnet/return': 'patron',
  'HEAD /cashnet/return': 'patron',
  'POST /cashnet/return': 'patron',
  'GET /history': 'patron',
  'HEAD /history': 'patron',
  'GET /logout': 'public',
  'HEAD /logout': 'public',
  'GET /ezproxy-check': 'public',
  'HEAD /ezproxy-check': 'public',
  'GET /admin': 'admin',
  'HEAD /admin': 'admin',
  'GET /admin/payments.csv': 'admin',
  'HEAD /admin/payments.csv': 'admin',
  'GET /admin/postbacks': 'admin',
  'HEAD /admin/postbacks': 'admin',
  'GET /admin/payments/:id': 'admin',
  'HEAD /admin/payments/:id': 'admin',
  'GET /admin/reports': 'admin',
  'HEAD /admin/reports': 'admin'
}
/** Routes that exist only in userobject mode. */
const USEROBJECT_ONLY: Record<string, string> = {
  'GET /auth/ezproxy': 'public',
  'HEAD /auth/ezproxy': 'public'
}

/** Routes that exist only for PAYMENT_PROVIDER=paypal: the webhook is public, believed only once PayPal verifies it. */
const PAYPAL_ONLY: Record<string, string> = {
  'GET /paypal/return': 'patron',
  'HEAD /paypal/return': 'patron',
  'GET /paypal/cancel': 'patron',
  'HEAD /paypal/cancel': 'patron',
  'POST /paypal/webhook': 'public'
}

function table (routes: Map<string, string>): Record<string, string> {
  return Object.fromEntries([...routes].sort(([a], [b]) => a.localeCompare(b)))
}

/** POST routes under /admin/payments/:id/ are staff actions: all admin, whatever their names. */
function withoutStaffActions (routes: Map<string, string>, t: Test): Map<string, string> {
  const rest = new Map<string, string>()
  for (const [route, access] of routes) {
    if (/^POST \/admin\/payments\/:id\/[a-z-]+$/.test(route)) t.equal(access, 'admin', `${route} is a staff action: admin`)
    else rest.set(route, access)
  }
  return rest
}

t.test('every registered route is served under the rule in the table (header mode)', async t => {
  const stack = await build(t)
  const routes = withoutStaffActions(stack.app.routeAccess, t)
  t.same(table(routes), table(new Map(Object.entries(EXPECTED))), 'no route missing, none added without a row here')
  const logged = stack.logLines().find(l => l.event === 'access.routes')
  t.ok(logged, 'the rules are logged at start-up (debug)')
  t.equal(logged?.routes['GET /admin'], 'admin')
})

t.test('every registered route is served under the rule in the table (userobject mode)', async t => {
  const stack = await build(t, { env: { AUTH_MODE: 'userobject' } })
  const routes = withoutStaffActions(stack.app.routeAccess, t)
  t.same(table(routes), table(new Map(Object.entries({ ...EXPECTED, ...USEROBJECT_ONLY }))))
})

t.test('every registered route is served under the rule in the table (PayPal deployment)', async t => {
  const stack = await build(t, { env: { PAYMENT_PROVIDER: 'paypal' } })
  const routes = withoutStaffActions(stack.app.routeAccess, t)
  t.same(table(routes), table(new Map(Object.entries({ ...EXPECTED, ...PAYPAL_ONLY }))))
})

t.test('every registered route is served under the rule in the table (primo mode: the same routes, the token arrives at /)', async t => {
  const stack = await build(t, { env: { AUTH_MODE: 'primo' } })
  const routes = withoutStaffActions(stack.app.routeAccess, t)
  t.same(table(routes), table(new Map(Object.entries(EXPECTED))))
})

/** Routes that exist only with PAY_LINKS=on: the link is public (the token is its own authentication), the rest staff's. */
const PAY_LINKS_ONLY: Record<string, string> = {
  'GET /admin/pay-links': 'admin',
  'HEAD /admin/pay-links': 'admin',
  'POST /admin/pay-links': 'admin',
  'POST /admin/pay-links/:linkId/revoke': 'admin',
  'GET /pay/*': 'public',
  'HEAD /pay/*': 'public'
}

t.test('every registered route is served under the rule in the table (PAY_LINKS=on)', async t => {
  const stack = await build(t, { env: { PAY_LINKS: 'on' } })
  const routes = withoutStaffActions(stack.app.routeAccess, t)
  t.same(table(routes), table(new Map(Object.entries({ ...EXPECTED, ...PAY_LINKS_ONLY }))))
})

/** A system deployment's root (SPEC 12): the campus list, health, metrics and assets, nothing of a campus. */
const ROOT_ROUTES = ['GET /healthz', 'HEAD /healthz', 'GET /readyz', 'HEAD /readyz', 'GET /metrics', 'HEAD /metrics', 'GET /assets/:name', 'HEAD /assets/:name']

/** A campus's rows: every campus route of the table under /{campus}, under the same rule ("/" is /{campus}, and HEAD /{campus}/); the assets are served under each campus too, for the pages' relative links. */
function campusRows (campus: string, rows: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [route, access] of Object.entries(rows)) {
    if (ROOT_ROUTES.includes(route) && !route.includes('/assets/')) continue
    const [method, path] = route.split(' ')
    out[`${method} /${campus}${path === '/' ? '' : path}`] = access
    if (path === '/' && method === 'HEAD') out[`HEAD /${campus}/`] = access
  }
  return out
}

t.test('every registered route is served under the rule in the table (two campuses, one in userobject mode with PAY_LINKS=on)', async t => {
  const stack = await buildCampuses(t, { campuses: [{ id: 'springfield' }, { id: 'shelbyville', env: { AUTH_MODE: 'userobject', PAY_LINKS: 'on' } }] })
  const routes = new Map<string, string>()
  for (const [route, access] of stack.app.routeAccess) {
    if (/^POST \/[a-z0-9-]+\/admin\/payments\/:id\/[a-z-]+$/.test(route)) t.equal(access, 'admin', `${route} is a staff action: admin`)
    else routes.set(route, access)
  }
  const root = Object.fromEntries(ROOT_ROUTES.map(r => [r, EXPECTED[r]]))
  t.same(table(routes), table(new Map(Object.entries({
    ...root,
    'GET /': 'public',
    'HEAD /': 'public',
    ...campusRows('springfield', EXPECTED),
    ...campusRows('shelbyville', { ...EXPECTED, ...USEROBJECT_ONLY, ...PAY_LINKS_ONLY })
  }))), 'the root is the campus list only; each campus its own routes under its prefix, with the same rules')
  // and the rules hold: a campus page is refused to a stranger, the campus list is not
  t.equal((await send(`${stack.serviceUrl}/springfield/admin`, { from: UNTRUSTED_PEER, headers: { 'x-ezproxy-user': 'staff-springfield' } })).status, 403)
  t.equal((await send(`${stack.serviceUrl}/springfield/`, { from: UNTRUSTED_PEER, headers: { 'x-ezproxy-user': 'alice' } })).status, 403)
  t.equal((await send(`${stack.serviceUrl}/`, { from: UNTRUSTED_PEER })).status, 200)
  t.equal((await send(`${stack.serviceUrl}/metrics`, { from: UNTRUSTED_PEER })).status, 403, 'METRICS_ALLOW is empty: nobody')
})

t.test('a route that declares no access rule is patron-only, not public', async t => {
  const config = loadConfig({
    PUBLIC_URL: 'http://127.0.0.1:9',
    ALMA_API_KEY: 'k',
    ALMA_API_URL: 'http://127.0.0.1:9/almaws/v1',
    CASHNET_CHECKOUT_URL: 'http://127.0.0.1:9/LIB',
    CASHNET_ITEM_CODE: 'LIB-FINE',
    CASHNET_POSTBACK_ALLOW: '127.0.0.4',
    EZPROXY_ALLOW: EZPROXY_PEER,
    COOKIE_SECRET: SANDBOX_COOKIE_SECRET,
    DATABASE_PATH: ':memory:',
    LOG_LEVEL: 'silent'
  })
  const app = await buildApp(config, { startWorker: false })
  t.teardown(async () => { await app.close() })
  app.get('/forgot-to-say', async (request) => ({ secret: 'patron data', who: request.patron?.username ?? null }))
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal(app.routeAccess.get('GET /forgot-to-say'), 'patron', 'recorded as patron-only')

  const stranger = await send(`${url}/forgot-to-say`, { from: UNTRUSTED_PEER })
  t.equal(stranger.status, 403, 'a stranger is refused')
  t.notMatch(stranger.body, 'patron data')
  const noUser = await send(`${url}/forgot-to-say`, { from: EZPROXY_PEER })
  t.equal(noUser.status, 401, 'EZproxy without a username is refused')
  const patron = await send(`${url}/forgot-to-say`, { from: EZPROXY_PEER, headers: { 'x-ezproxy-user': 'alice' } })
  t.equal(patron.status, 200, 'a signed-in patron is served')
  t.same(JSON.parse(patron.body), { secret: 'patron data', who: 'alice' })
  const unknown = await send(`${url}/no-such-page`, { from: UNTRUSTED_PEER })
  t.equal(unknown.status, 404, 'an unknown path is a plain 404 for anyone (it shows nothing)')
})
