// Route schemas: each route's body, query and params are declared, and input that does not fit is answered by
// the one error handler with a calm page (the route's own where it has one), never Fastify's JSON error, and
// with nothing changed. A forged form is refused as forged (403) whatever shape its fields have.

import t from 'tap'
import { Browser, build, readForm, send } from './helper.ts'

t.test('checkout: a single fee and repeated fees both arrive as a list; a forged form of any shape is 403', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const page = readForm((await alice.get('/')).body, 'pay-form')
  const token = page.fields.find(([k]) => k === '_csrf')?.[1] ?? ''
  t.ok(page.checkboxes.length >= 2, 'alice has several fees')
  const forged = await alice.post('/checkout', [['_csrf', 'forged'], ['_csrf', 'twice'], ['fee', page.checkboxes[0]]])
  t.equal(forged.status, 403, 'a repeated forged token is a CSRF refusal, not a schema one')
  t.match(forged.body, 'Please start again')
  const repeated = await alice.post('/checkout', [['_csrf', token], ...page.checkboxes.map((id): [string, string] => ['fee', id])])
  t.equal(repeated.status, 200, 'every ticked fee')
  const checkout = await stack.app.ledger.latestCheckoutForUser('alice')
  t.same(checkout?.lines.map(l => l.feeId).sort(), [...page.checkboxes].sort())
})

t.test('staff forms: a field sent twice gets the form\'s own 400 page, one log line, nothing recorded', async t => {
  const stack = await build(t)
  const staff = new Browser(stack).login('staff')
  const alice = new Browser(stack).login('alice')
  // CashNet reports a different amount: the payment needs a person, and its page offers "mark as settled"
  stack.cashnet.behaviour.tamperAmount1Cents = -100
  const { fields, action } = await alice.checkout(['100001'])
  await alice.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  const id = (await stack.app.ledger.latestCheckoutForUser('alice'))?.id ?? ''
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'NEEDS_ATTENTION')
  const detail = await staff.get(`/admin/payments/${id}`)
  t.match(detail.body, '<form class="resolve"')
  const token = /name="_csrf" value="([^"]+)"/.exec(detail.body)?.[1] ?? ''
  const before = await stack.app.ledger.history(id)
  const answer = await staff.post(`/admin/payments/${id}/resolve`, [['_csrf', token], ['resolution', 'one'], ['resolution', 'two']])
  t.equal(answer.status, 400)
  t.match(String(answer.headers['content-type']), 'text/html')
  t.match(answer.body, 'Say what was done', 'the resolve form\'s own page')
  t.notMatch(answer.body, /"statusCode"|FST_ERR_VALIDATION|at \w+ \(/, 'not Fastify\'s JSON, no stack')
  const refused = stack.logLines().filter(l => l.event === 'request.refused' && l.code === 'FST_ERR_VALIDATION')
  t.equal(refused.length, 1, 'one operator line')
  t.same((await stack.app.ledger.history(id))?.events, before?.events, 'nothing recorded')
})

t.test('queries: the list ignores what it does not know; a query that breaks its schema is a calm 400', async t => {
  const stack = await build(t)
  const staff = new Browser(stack).login('staff')
  t.equal((await staff.get('/admin?state=NOPE&page=abc&colour=red')).status, 200, 'unknown filters and parameters are ignored')
  const twice = await staff.get('/admin?q=alice&q=bob')
  t.equal(twice.status, 400, 'two searches at once')
  t.match(twice.body, 'We could not process that request')
  t.notMatch(twice.body, '"statusCode"')
  const check = await send(`${stack.serviceUrl}/ezproxy-check?format=json&format=html`)
  t.equal(check.status, 400)
  t.match(String(check.headers['content-type']), 'text/html')
})

t.test('the sign-in return: an oversized token is a calm 400 and EZproxy is not asked', async t => {
  const stack = await build(t, { env: { AUTH_MODE: 'userobject' } })
  const answer = await send(`${stack.serviceUrl}/auth/ezproxy?token=${'a'.repeat(5000)}&state=x`)
  t.equal(answer.status, 400)
  t.match(String(answer.headers['content-type']), 'text/html')
  t.match(answer.body, 'We could not process that request')
  t.equal(stack.logLines().filter(l => String(l.event).startsWith('auth.')).length, 0, 'no sign-in was attempted')
})
