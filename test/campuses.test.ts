// SPEC 12, every campus in one deployment, over real HTTP: two campuses, each with its own Alma sandbox (the same
// usernames, different fees), CashNet store and EZproxy stand-in, served by one process under /{campus}/.

import t from 'tap'
import type { SandboxCampus } from '../src/sandbox/stack.ts'
import { Browser, buildCampuses, checkoutIdFrom, send, until } from './helper.ts'

function browserAt (campus: SandboxCampus): Browser {
  return new Browser({ publicUrl: campus.ezproxyUrl, ezproxy: campus.ezproxy }, { prefix: `/${campus.id}` })
}

t.test('each campus\'s patron sees only their own campus\'s fees, though the usernames are the same', async t => {
  const stack = await buildCampuses(t)
  const [springfield, shelbyville] = stack.campuses
  const atSpringfield = await browserAt(springfield).login('alice').get('/')
  const atShelbyville = await browserAt(shelbyville).login('alice').get('/')
  t.equal(atSpringfield.status, 200)
  t.equal(atShelbyville.status, 200)
  t.match(atSpringfield.body, 'The Name of the Rose')
  t.notMatch(atSpringfield.body, '(shelbyville)', 'no fee of the other campus')
  t.match(atShelbyville.body, 'The Name of the Rose (shelbyville)')
  t.notMatch(atShelbyville.body, /The Name of the Rose<\//, 'no fee of the other campus')
  t.match(atSpringfield.body, 'University Library, Springfield', 'its own branding')
  t.match(atShelbyville.body, 'University Library, Shelbyville', 'its own branding')
  // the page's relative links resolve under the campus's prefix: its stylesheet is there
  const stylesheet = /<link rel="stylesheet" href="([^"]+)">/.exec(atShelbyville.body)?.[1] ?? ''
  t.equal(stylesheet, './assets/style.css')
  t.equal((await send(new URL(stylesheet, `${stack.serviceUrl}/shelbyville/`).toString())).status, 200, 'the stylesheet is served under the campus')
  // each Alma sandbox only ever receives its own campus's API key
  for (const campus of stack.campuses) {
    t.ok(campus.alma.authorizations.length > 0, `${campus.id}'s Alma was called`)
    t.same([...new Set(campus.alma.authorizations)], [`apikey ${campus.almaApiKey}`], `${campus.id}'s Alma saw only its own key`)
  }
  // every log line of a campus request carries the campus
  const lines = stack.logLines().filter(l => typeof l.req?.url === 'string' && l.req.url.startsWith('/shelbyville/'))
  t.ok(lines.length > 0)
  t.ok(lines.every(l => l.campus === 'shelbyville'), 'request lines carry campus')
  const almaCalls = stack.logLines().filter(l => l.event === 'alma.call')
  t.ok(almaCalls.length >= 2)
  t.ok(almaCalls.every(l => l.campus === 'springfield' || l.campus === 'shelbyville'), 'the Alma client\'s lines carry campus')
  t.ok(stack.logLines().filter(l => l.event === 'access.routes').every(l => l.campus !== undefined), 'so do the lines a campus writes outside requests')
})

t.test('GET / lists the campuses; health stays at the root; /{campus} without the slash goes to /{campus}/', async t => {
  const stack = await buildCampuses(t)
  const list = await send(`${stack.serviceUrl}/`)
  t.equal(list.status, 200)
  t.match(list.body, '<a href="./springfield/">University Library, Springfield</a>')
  t.match(list.body, '<a href="./shelbyville/">University Library, Shelbyville</a>')
  t.match(String(list.headers['content-security-policy']), "frame-ancestors 'none'")
  const ready = await send(`${stack.serviceUrl}/readyz`)
  t.equal(ready.status, 200)
  t.same(JSON.parse(ready.body).ledgers, { springfield: 'writable', shelbyville: 'writable' })
  t.equal((await send(`${stack.serviceUrl}/healthz`)).status, 200)
  const bare = await send(`${stack.serviceUrl}/springfield`)
  t.equal(bare.status, 301)
  t.equal(bare.headers.location, '/springfield/')
  t.equal((await send(`${stack.serviceUrl}/nowhere/checkout`)).status, 404, 'no campus, no route')
  const lost = await send(`${stack.serviceUrl}/springfield/no/such/page`)
  t.equal(lost.status, 404)
  t.match(lost.body, 'href="../../"', 'the way back from a campus\'s 404 leads to the campus, not the list')
  t.equal((await send(`${stack.serviceUrl}/checkout`, { method: 'POST', body: 'a=b' })).status, 404, 'no campus routes at the root')
  // the route table has every campus's routes under its prefix, with the same rules
  t.equal(stack.app.routeAccess.get('GET /springfield'), 'patron')
  t.equal(stack.app.routeAccess.get('HEAD /springfield/'), 'patron')
  t.equal(stack.app.routeAccess.get('POST /shelbyville/cashnet/postback'), 'cashnet')
  t.equal(stack.app.routeAccess.get('GET /shelbyville/admin'), 'admin')
  t.equal(stack.app.routeAccess.get('GET /'), 'public')
  t.equal(stack.app.routeAccess.get('GET /metrics'), 'metrics')
})

t.test('one campus\'s EZproxy address is refused by the other', async t => {
  const stack = await buildCampuses(t)
  const [springfield, shelbyville] = stack.campuses
  const header = { 'x-ezproxy-user': 'alice' }
  t.equal((await send(`${stack.serviceUrl}/springfield/`, { headers: header, from: springfield.ezproxyFrom })).status, 200)
  t.equal((await send(`${stack.serviceUrl}/shelbyville/`, { headers: header, from: shelbyville.ezproxyFrom })).status, 200)
  const calls = springfield.alma.calls.length + shelbyville.alma.calls.length
  t.equal((await send(`${stack.serviceUrl}/shelbyville/`, { headers: header, from: springfield.ezproxyFrom })).status, 403)
  t.equal((await send(`${stack.serviceUrl}/springfield/`, { headers: header, from: shelbyville.ezproxyFrom })).status, 403)
  t.equal((await send(`${stack.serviceUrl}/springfield/checkout`, { method: 'POST', body: 'fee=1', headers: header, from: shelbyville.ezproxyFrom })).status, 403)
  t.equal(springfield.alma.calls.length + shelbyville.alma.calls.length, calls, 'the refused requests never reached an Alma')
})

t.test('a campus\'s cookies stay on its own prefix', async t => {
  const stack = await buildCampuses(t, { campuses: [{ id: 'springfield', env: { AUTH_MODE: 'userobject' } }, { id: 'shelbyville' }] })
  const [springfield, shelbyville] = stack.campuses
  // userobject: a page load without a session starts the sign-in, with its state cookie on the campus's path
  const start = await send(`${stack.serviceUrl}/springfield/`, { from: springfield.ezproxyFrom })
  t.equal(start.status, 302)
  t.match(String(start.headers['set-cookie']), /acn_signin=[^;]+;.*Path=\/springfield\//)
  // the hand-off's checkout and CSRF cookies of a header-mode campus too
  const patron = browserAt(shelbyville).login('alice')
  const fines = await send(`${stack.serviceUrl}/shelbyville/`, { from: shelbyville.ezproxyFrom, headers: { 'x-ezproxy-user': 'alice' } })
  t.match(String(fines.headers['set-cookie']), /acn_csrf=[^;]+;.*Path=\/shelbyville\//)
  t.equal((await patron.get('/')).status, 200)
})

t.test('staff of one campus get 403 at the other', async t => {
  const stack = await buildCampuses(t)
  const [springfield, shelbyville] = stack.campuses
  t.equal((await browserAt(springfield).login('staff-springfield').get('/admin')).status, 200)
  t.equal((await browserAt(shelbyville).login('staff-springfield').get('/admin')).status, 403)
  t.equal((await browserAt(shelbyville).login('staff-shelbyville').get('/admin')).status, 200)
  t.equal((await browserAt(springfield).login('staff-shelbyville').get('/admin')).status, 403)
})

t.test('a postback at the wrong campus\'s URL, or from the other campus\'s CashNet, pays nothing', async t => {
  const stack = await buildCampuses(t)
  const [springfield, shelbyville] = stack.campuses
  // Springfield's CashNet is (mis)configured to notify Shelbyville's URL
  springfield.cashnet.setPostbackUrl(`${stack.serviceUrl}/shelbyville/cashnet/postback`)
  const patron = browserAt(springfield).login('alice')
  const { fields, action } = await patron.checkout()
  const id = checkoutIdFrom(fields)
  await patron.payOnCashnet(action, fields)
  await until(() => springfield.cashnet.sent.length > 0, 'the postback')
  const sent = springfield.cashnet.sent[0]
  t.equal(sent.status, 403, 'from Springfield\'s CashNet address: refused at Shelbyville')

  // the same fields at Shelbyville's URL from Shelbyville's own CashNet address: an orphan there
  const body = new URLSearchParams(sent.fields).toString()
  const wrong = await send(`${stack.serviceUrl}/shelbyville/cashnet/postback`, { method: 'POST', body, from: shelbyville.cashnetFrom })
  t.ok(wrong.status < 500, `answered ${wrong.status}`)
  t.equal(await stack.app.campuses.get('shelbyville')?.ledger.countUnmatchedPostbacks(), 1, 'recorded at Shelbyville as an orphan')
  t.equal(await stack.app.campuses.get('shelbyville')?.ledger.getCheckout(id), undefined, 'Shelbyville has no such checkout')
  t.equal((await stack.app.campuses.get('springfield')?.ledger.getCheckout(id))?.state, 'CREATED', 'Springfield\'s checkout untouched')
  t.notOk(springfield.alma.calls.some(c => c.method === 'POST'), 'nothing paid in Springfield\'s Alma')
  t.notOk(shelbyville.alma.calls.some(c => c.method === 'POST'), 'nothing paid in Shelbyville\'s Alma')

  // the same postback at its own campus's URL pays (the fields were good all along)
  const right = await send(`${stack.serviceUrl}/springfield/cashnet/postback`, { method: 'POST', body, from: springfield.cashnetFrom })
  t.equal(right.status, 200)
  await until(async () => (await stack.app.campuses.get('springfield')?.ledger.getCheckout(id))?.state === 'POSTED', 'posted at Springfield')
  t.ok(springfield.alma.calls.some(c => c.method === 'POST'), 'paid in Springfield\'s Alma')
  t.notOk(shelbyville.alma.calls.some(c => c.method === 'POST'), 'still nothing in Shelbyville\'s Alma')
  // the audit events the poster writes name the campus
  const history = await stack.app.campuses.get('springfield')?.ledger.history(id)
  const started = history?.events.filter(e => e.event === 'line.pay_started') ?? []
  t.ok(started.length > 0)
  t.ok(started.every(e => JSON.parse(e.detail).campus === 'springfield'), 'audit detail carries the campus')
})

t.test('one campus\'s Alma held or rate-limited does not hold another campus\'s pages or postings', async t => {
  const stack = await buildCampuses(t)
  const [springfield, shelbyville] = stack.campuses
  // Springfield's Alma takes every call and answers none until released
  const held: Array<() => void> = []
  springfield.alma.beforeCall = async () => { await new Promise<void>(resolve => { held.push(resolve) }); return undefined }
  const stuck = browserAt(springfield).login('bob').get('/')
  await until(() => held.length > 0, 'Springfield\'s page waiting on its Alma')

  // Shelbyville: a page and a whole payment, posted, while Springfield's request still waits
  const patron = browserAt(shelbyville).login('alice')
  t.equal((await patron.get('/')).status, 200, 'Shelbyville\'s page answers')
  const { fields, action } = await patron.checkout()
  await patron.payOnCashnet(action, fields)
  const id = checkoutIdFrom(fields)
  await until(async () => (await stack.app.campuses.get('shelbyville')?.ledger.getCheckout(id))?.state === 'POSTED', 'Shelbyville posted')
  let answered = false
  void stuck.then(() => { answered = true })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(answered, false, 'Springfield\'s page was still waiting on its Alma all along')

  // Springfield's Alma now refuses for its rate limit: Shelbyville still answers
  springfield.alma.beforeCall = undefined
  springfield.alma.faults.throttleNext = 1000
  for (const release of held) release()
  t.equal((await browserAt(shelbyville).login('carol').get('/')).status, 200, 'Shelbyville answers while Springfield is throttled')
  await stuck
})

t.test('/metrics at the root: every campus\'s series with its campus label, for METRICS_ALLOW only', async t => {
  const stack = await buildCampuses(t, { env: { METRICS_ALLOW: '127.0.0.1' } })
  const [springfield] = stack.campuses
  t.equal((await browserAt(springfield).login('alice').get('/')).status, 200)
  const metrics = await send(`${stack.serviceUrl}/metrics`)
  t.equal(metrics.status, 200)
  t.match(metrics.body, 'almacashnet_http_requests_total{route="/",method="GET",status="200",campus="springfield"} 1')
  t.notMatch(metrics.body, /almacashnet_http_requests_total\{[^}]*campus="shelbyville"/, 'no request counted at the other campus')
  t.match(metrics.body, 'almacashnet_checkouts{state="CREATED",campus="shelbyville"} 0')
  t.match(metrics.body, 'almacashnet_alma_calls_total{outcome="ok",campus="springfield"} 2')
  t.equal((metrics.body.match(/^# TYPE almacashnet_checkouts gauge$/gm) ?? []).length, 1, 'one family per metric')
  t.equal((await send(`${stack.serviceUrl}/metrics`, { from: '127.0.0.3' })).status, 403)
  t.equal((await send(`${stack.serviceUrl}/springfield/metrics`)).status, 404, 'no /metrics under a campus')
})
