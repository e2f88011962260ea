// The fines page over real HTTP, through the EZproxy stand-in, against the Alma sandbox.

import t from 'tap'
import { Browser, build, send, UNTRUSTED_PEER } from './helper.ts'

t.test('each seeded patron sees the right fees and total', async t => {
  const stack = await build(t)
  const expected: Record<string, { total: string, fees: number, payable: number }> = {
    alice: { total: '$62.75', fees: 3, payable: 3 },
    carol: { total: '$2.50', fees: 1, payable: 1 },
    zoe: { total: '$13.75', fees: 2, payable: 2 },
    erin: { total: '$86.00', fees: 2, payable: 2 },
    noid: { total: '$15.00', fees: 1, payable: 1 },
    mallory: { total: '$12.25', fees: 1, payable: 1 }
  }
  for (const [user, want] of Object.entries(expected)) {
    const page = await new Browser(stack).login(user).get('/')
    t.equal(page.status, 200, `${user}: 200`)
    t.match(page.body, `You owe <strong>${want.total}</strong>`, `${user}: total ${want.total}`)
    t.equal((page.body.match(/<tr>\n<td class="select">/g) ?? []).length, want.fees, `${user}: ${want.fees} fee rows`)
    t.equal((page.body.match(/type="checkbox" name="fee"/g) ?? []).length, want.payable, `${user}: ${want.payable} payable`)
    t.match(page.headers['cache-control'], /no-store/)
  }
})

t.test('one fee and many fees; credits and foreign currency shown but not payable', async t => {
  const stack = await build(t)
  const carol = await new Browser(stack).login('carol').get('/')
  t.match(carol.body, 'Gödel, Escher, Bach')
  t.match(carol.body, 'value="300001"')
  const frank = await new Browser(stack).login('frank').get('/')
  t.equal(frank.status, 200)
  t.equal((frank.body.match(/type="checkbox" name="fee"/g) ?? []).length, 24, '24 payable overdue fines')
  t.match(frank.body, 'Credit on your account')
  t.match(frank.body, 'Pay at the library (not in the online currency)')
  t.notMatch(frank.body, 'value="500090"', 'the credit has no checkbox')
  t.notMatch(frank.body, 'value="500091"', 'the euro fee has no checkbox')
})

t.test('a USD and a EUR fee: a total per currency, never added together; the euro fee is said plainly to be unpayable online', async t => {
  const stack = await build(t)
  const frank = await new Browser(stack).login('frank').get('/')
  // the 24 dollar fines as Alma holds them, summed here from the sandbox (the credit is not owed)
  const dollars = [...stack.alma.findUser('frank')?.fees ?? []].filter(f => f.currency === undefined && f.balanceCents > 0).reduce((s, f) => s + f.balanceCents, 0)
  const usd = `$${(dollars / 100).toFixed(2)}`
  t.equal(usd, '$105.00', 'the seed: $105.00 in dollars, €9.00 in euros')
  t.match(frank.body, 'You owe <strong>$105.00</strong> and <strong>€9.00</strong>.', 'one total per currency')
  t.notMatch(frank.body, '$114.00', 'never dollars and euros added together')
  t.match(frank.body, 'Fees in EUR (€9.00) cannot be paid online: online payments are taken in USD only. Please contact the library to pay them.')
  t.match(frank.body, /<output id="selected-total"[^>]*>\$105\.00<\/output>/, 'the amount to pay is in dollars only')
  t.match(frank.body, 'data-currency="USD"', 'the pay button\'s script formats dollars')
  const dataCents = [...frank.body.matchAll(/data-cents="(\d+)"/g)].reduce((s, m) => s + Number(m[1]), 0)
  t.equal(dataCents, 10500, 'the pay button adds only the payable (dollar) fees')
  const carol = await new Browser(stack).login('carol').get('/')
  t.notMatch(carol.body, 'cannot be paid online: online payments', 'no currency sentence for a patron with one currency')
})

t.test('HTML in a fee title and non-ASCII names are shown as text', async t => {
  const stack = await build(t)
  const mallory = await new Browser(stack).login('mallory').get('/')
  t.equal(mallory.status, 200)
  t.notMatch(mallory.body, '<script>alert(1)</script>')
  t.notMatch(mallory.body, '<b>Bold</b>')
  t.match(mallory.body, '&lt;b&gt;Bold&lt;/b&gt; &amp; &quot;quoted&quot; &lt;script&gt;alert(1)&lt;/script&gt; title')
  t.match(mallory.body, 'aria-label="Damaged item fine, &lt;b&gt;Bold&lt;/b&gt;', 'the checkbox name is escaped too')
  const alice = await new Browser(stack).login('alice').get('/')
  t.notMatch(alice.body, '&lt;b&gt;', 'the first demo patron looks like a real account: no test markup in her titles')
  const zoe = await new Browser(stack).login('zoe').get('/')
  t.match(zoe.body, 'Zoë Ångström-Núñez')
  t.match(zoe.body, '日本語の本')
})

t.test('nothing owed, and a user Alma does not know', async t => {
  const stack = await build(t)
  const bob = await new Browser(stack).login('bob').get('/')
  t.equal(bob.status, 200)
  t.match(bob.body, 'Nothing to pay')
  t.notMatch(bob.body, '<form')
  const stranger = await new Browser(stack).login('nobody-here').get('/')
  t.equal(stranger.status, 404)
  t.match(stranger.body, 'We could not find your library account')
  t.notMatch(stranger.body, /at .*\.ts:\d+/, 'no stack trace')
})

t.test('one page view makes exactly two Alma calls, and they overlap in time', async t => {
  const stack = await build(t)
  stack.alma.faults.latencyMs = 100
  stack.alma.calls.length = 0
  const page = await new Browser(stack).login('alice').get('/')
  t.equal(page.status, 200)
  t.equal(stack.alma.calls.length, 2, 'two calls')
  const [a, b] = stack.alma.calls
  t.same(stack.alma.calls.map(c => c.path).sort(), ['/almaws/v1/users/alice', '/almaws/v1/users/alice/fees'])
  t.ok(a.start < b.end && b.start < a.end, 'the user and fee calls were in flight at the same time')
  t.equal(stack.alma.calls.find(c => c.path.endsWith('/fees'))?.query.status, 'ACTIVE')
})

t.test('untrusted peers get 403 even with the header; a missing header gets 401', async t => {
  const stack = await build(t)
  const spoofed = await send(`${stack.serviceUrl}/`, { from: UNTRUSTED_PEER, headers: { 'x-ezproxy-user': 'alice', 'x-forwarded-for': '127.0.0.1' } })
  t.equal(spoofed.status, 403)
  t.notMatch(spoofed.body, 'Alice')
  t.equal(stack.alma.calls.length, 0, 'Alma was not asked')
  const noHeader = await send(`${stack.serviceUrl}/`, { from: '127.0.0.1' })
  t.equal(noHeader.status, 401)
  const empty = await send(`${stack.serviceUrl}/`, { from: '127.0.0.1', headers: { 'x-ezproxy-user': '  ' } })
  t.equal(empty.status, 401)
  const direct = await send(`${stack.serviceUrl}/`, { from: '127.0.0.1', headers: { 'x-ezproxy-user': 'carol' } })
  t.equal(direct.status, 200, 'the EZproxy address with the header is served')
})

t.test('the shared-secret header: wrong or missing secret is 403, right secret is served', async t => {
  const stack = await build(t, { env: { EZPROXY_SECRET_HEADER: 'X-EZproxy-Secret', EZPROXY_SECRET: 'correct-horse-battery' } })
  const wrong = await send(`${stack.serviceUrl}/`, { from: '127.0.0.1', headers: { 'x-ezproxy-user': 'alice', 'x-ezproxy-secret': 'wrong-horse' } })
  t.equal(wrong.status, 403)
  const missing = await send(`${stack.serviceUrl}/`, { from: '127.0.0.1', headers: { 'x-ezproxy-user': 'alice' } })
  t.equal(missing.status, 403)
  const viaStandIn = await new Browser(stack).login('alice').get('/')
  t.equal(viaStandIn.status, 200, 'the stand-in adds the secret, as EZproxy would')
  t.notMatch(stack.logs.join('\n'), 'correct-horse-battery', 'the secret never reaches a log line')
})

t.test('Alma 5xx or a timeout gives the calm 503 page', async t => {
  const stack = await build(t, { env: { ALMA_TIMEOUT_MS: '300' } })
  stack.alma.faults.failNext = 2
  const down = await new Browser(stack).login('alice').get('/')
  t.equal(down.status, 503)
  t.match(down.body, 'The library system is not available')
  t.notMatch(down.body, /Error|stack|\.ts/)
  stack.alma.faults.latencyMs = 1000
  const slow = await new Browser(stack).login('alice').get('/')
  t.equal(slow.status, 503)
  t.match(slow.body, 'try again in a few minutes')
  const line = stack.logLines().find(l => l.event === 'alma.unavailable')
  t.ok(line, 'operators get one alma.unavailable line')
})

t.test('a bad API key is a 503 for the patron and a clear line for the operator', async t => {
  const stack = await build(t, { env: { ALMA_API_KEY: 'not-the-key' } })
  const page = await new Browser(stack).login('alice').get('/')
  t.equal(page.status, 503)
  const line = stack.logLines().find(l => l.event === 'alma.unavailable')
  t.match(line?.msg, 'check ALMA_API_KEY')
  t.notMatch(stack.logs.join('\n'), 'not-the-key')
})

t.test('health and readiness', async t => {
  const stack = await build(t)
  const health = await send(`${stack.serviceUrl}/healthz`, { from: UNTRUSTED_PEER })
  t.equal(health.status, 200)
  t.same(JSON.parse(health.body), { status: 'ok' })
  const ready = await send(`${stack.serviceUrl}/readyz`)
  t.equal(ready.status, 200)
  t.equal(JSON.parse(ready.body).ledger, 'writable')
})

t.test('PAYABLE_FEE_TYPES and PAYABLE_OWNERS limit what can be ticked', async t => {
  const stack = await build(t, { env: { PAYABLE_FEE_TYPES: 'OVERDUEFINE,DAMAGEDITEMFINE', PAYABLE_OWNERS: 'MAIN' } })
  const page = await new Browser(stack).login('alice').get('/')
  t.match(page.body, 'value="100001"', 'main-library overdue fine payable')
  t.notMatch(page.body, 'value="100002"', 'lost item fee type not payable')
  t.notMatch(page.body, 'value="100003"', 'law library fee not payable')
  t.match(page.body, 'Pay at the owning library')
})

t.test('each request is one log line when answered: method, path without its query, status, time, and its reqId', async t => {
  const stack = await build(t)
  const page = await new Browser(stack).login('carol').get('/?ticket=ST-0123-secret')
  t.equal(page.status, 200)
  const lines = stack.logLines()
  t.notOk(lines.some(l => l.msg === 'incoming request'), 'no separate line on arrival')
  const answered = lines.filter(l => l.msg === 'request completed' && l.req?.url === '/' && l.req?.method === 'GET')
  t.equal(answered.length, 1, 'one line for the page')
  const line = answered[0]
  t.equal(line.res?.statusCode, 200)
  t.ok(typeof line.responseTime === 'number' && line.responseTime >= 0, 'with the time it took')
  t.notMatch(JSON.stringify(lines), 'ST-0123-secret', 'the query string is not logged')
  t.equal(new Set(lines.filter(l => l.reqId === line.reqId && l.event === 'alma.call').map(l => l.alma.path)).size, 2, 'the Alma calls it made carry the same reqId')
})
