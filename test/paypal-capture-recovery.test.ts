// A PayPal capture whose record never arrived (the ledger down when it was made, PayPal's webhook deliveries
// stopped, the patron never reloaded the return): the service remembers each checkout's order id and finds the
// capture itself, by the posting worker's sweep or before the patron starts a new checkout for the same fees, and
// records it by the webhook's rules (once, never more than collected). Over real HTTP with the PayPal and Alma
// stand-ins; time passes by calling the worker's sweep with a `now` in the future.

import t, { type Test } from 'tap'
import { Browser, build, readForm, type TestStack, until } from './helper.ts'
import { decide, startPaying as startPayingAs } from './support/paypal-flow.ts'
import type { StackOptions } from '../src/sandbox/stack.ts'
import { CAPTURE_RECOVERED_EVENT, ORDER_CREATED_EVENT } from '../src/payments/paypal.ts'
import { LedgerUnavailable } from '../src/ledger/errors.ts'
import { freshDatabase } from './support/postgres.ts'

type PayPalStack = TestStack & { pp: NonNullable<TestStack['paypal']> }

const MINUTE = 60_000

async function paypalStack (t: Test, paypal: StackOptions['paypal'] = {}, env: Record<string, string> = {}): Promise<PayPalStack> {
  // webhooks off: PayPal's deliveries never reach the service (stopped, or the webhook misconfigured)
  const stack = await build(t, { env: { PAYMENT_PROVIDER: 'paypal', ...env }, paypal: { webhookMode: 'off', ...paypal } })
  if (stack.paypal === null) throw new Error('no PayPal stand-in')
  return { ...stack, pp: stack.paypal }
}

/** The patron ticks fees and is sent to PayPal: the order and the checkout it is for. */
async function startPaying (stack: PayPalStack, browser: Browser, feeIds: string[]): Promise<{ approveUrl: string, orderId: string, checkoutId: string }> {
  const { approveUrl, orderId } = await startPayingAs(browser, feeIds)
  return { approveUrl, orderId, checkoutId: stack.pp.orders.get(orderId)?.customId as string }
}

/**
 * alice approves an order for the fees and PayPal captures it, but its record never reaches the ledger: the capture
 * is made behind the service's back (as when the ledger could not record it and the answer was lost), no webhook.
 */
async function capturedUnrecorded (stack: PayPalStack, feeIds: string[]): Promise<{ alice: Browser, orderId: string, checkoutId: string, captureId: string }> {
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId, checkoutId } = await startPaying(stack, alice, feeIds)
  await decide(alice, approveUrl, 'approve')
  const client = stack.app.paypal
  if (client === null) throw new Error('no PayPal client')
  const order = await client.captureOrder(orderId, 'behind-the-service')
  if (order.capture === null) throw new Error('not captured')
  return { alice, orderId, checkoutId, captureId: order.capture.id }
}

function orderAsks (stack: PayPalStack, orderId: string): number {
  return stack.pp.count('GET', `/v2/checkout/orders/${orderId}`)
}

async function auditEvents (stack: PayPalStack, checkoutId: string): Promise<Array<{ event: string, detail: Record<string, unknown> }>> {
  return ((await stack.app.ledger.history(checkoutId))?.events ?? []).map(e => ({ event: e.event, detail: JSON.parse(e.detail) as Record<string, unknown> }))
}

t.test('the order id of a PayPal checkout is remembered (an audit event) before the patron is sent to approve it', async t => {
  const stack = await paypalStack(t)
  const alice = new Browser(stack).login('alice')
  const { orderId, checkoutId } = await startPaying(stack, alice, ['100001'])
  t.same((await auditEvents(stack, checkoutId)).filter(e => e.event === ORDER_CREATED_EVENT).map(e => e.detail), [{ order: orderId }])
})

t.test('(a) a capture whose record and webhooks never arrive is found by the sweep: PAID, POSTED, each fee paid once in Alma', async t => {
  const stack = await paypalStack(t)
  const { checkoutId, orderId, captureId } = await capturedUnrecorded(stack, ['100001', '100003'])
  t.equal(stack.pp.webhooks.length, 0, 'PayPal sent no webhook')
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'CREATED', 'the ledger knows nothing of the capture')

  const asksBefore = orderAsks(stack, orderId)
  await stack.app.worker.sweep(new Date())
  t.equal(orderAsks(stack, orderId), asksBefore, 'a fresh order is left to the patron\'s own return: not asked about')

  await stack.app.worker.sweep(new Date(Date.now() + 11 * MINUTE))
  t.equal(orderAsks(stack, orderId), asksBefore + 1, 'ten minutes on, PayPal is asked about the order once')
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'posted after the sweep found the capture')
  await stack.app.worker.idle()
  const checkout = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(checkout?.tx, captureId, 'the capture is the checkout\'s transaction')
  t.same(stack.alma.paymentsFor(captureId).sort((a, b) => a.feeId.localeCompare(b.feeId)), [
    { feeId: '100001', amountCents: 500 },
    { feeId: '100003', amountCents: 1225 }
  ], 'Alma records each fee once with the capture id')
  const logged = stack.logLines().filter(l => l.event === 'paypal.capture_recovered')
  t.match(logged, [{ checkout: checkoutId, order: orderId, tx: captureId, amount: 1725, found: 'sweep', outcome: 'PAID' }], 'one operator log line')
  t.equal(logged.length, 1)
  t.match((await auditEvents(stack, checkoutId)).filter(e => e.event === CAPTURE_RECOVERED_EVENT).map(e => e.detail), [{ order: orderId, tx: captureId, amount: 1725, found: 'sweep', outcome: 'PAID' }], 'the audit trail says how it was found')

  await stack.app.worker.sweep(new Date(Date.now() + 40 * MINUTE))
  t.equal(orderAsks(stack, orderId), asksBefore + 1, 'a recorded checkout is not asked about again')
  t.equal(stack.alma.allExternalPayments().length, 2, 'nothing more posted')
})

t.test('(a) the patron returns, the ledger cannot record the capture once (webhooks off, no reload): the sweep records it, posted once', async t => {
  const stack = await paypalStack(t)
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId, checkoutId } = await startPaying(stack, alice, ['100001'])
  const ledger = stack.app.ledger
  const recordPostback = ledger.recordPostback.bind(ledger)
  let failures = 0
  // the database out of reach at the moment the return records the capture, once
  ledger.recordPostback = async (...args) => {
    if (failures++ === 0) throw new LedgerUnavailable('connection refused')
    return await recordPostback(...args)
  }
  t.teardown(() => { ledger.recordPostback = recordPostback })
  const back = await alice.request(await decide(alice, approveUrl, 'approve'))
  t.equal(back.status, 503, 'the return could not record the capture')
  t.equal(stack.pp.captures.length, 1, 'PayPal captured the order')
  const captureId = stack.pp.captures[0].id
  t.ok(stack.logLines().some(l => l.event === 'paypal.capture_unrecorded' && l.tx === captureId), 'the operator was told')
  t.equal((await ledger.getCheckout(checkoutId))?.state, 'CREATED', 'nothing recorded')

  await stack.app.worker.sweep(new Date(Date.now() + 11 * MINUTE))
  await until(async () => (await ledger.getCheckout(checkoutId))?.state === 'POSTED', 'posted after the sweep')
  await stack.app.worker.idle()
  t.same(stack.alma.paymentsFor(captureId), [{ feeId: '100001', amountCents: 500 }], 'Alma paid once')
  t.equal(stack.pp.captures.length, 1, 'captured once')
  t.match(stack.logLines().filter(l => l.event === 'paypal.capture_recovered'), [{ checkout: checkoutId, order: orderId, tx: captureId, amount: 500, found: 'sweep', outcome: 'PAID' }])
})

t.test('(a) a capture in another currency than its order: the client refuses PayPal\'s order answer, so the sweep logs it, records and posts nothing (a known gap: left to the COMPLETED webhook or reconcile --paypal)', async t => {
  const stack = await paypalStack(t, { faults: { captureCurrency: 'EUR' } })
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId, checkoutId } = await startPaying(stack, alice, ['100001'])
  await decide(alice, approveUrl, 'approve')
  // captured behind the service's back, in EUR (the client itself refuses the capture answer: nothing recorded)
  await t.rejects(stack.app.paypal?.captureOrder(orderId, 'behind-the-service') ?? Promise.reject(new Error('no client')), /in USD, its capture in EUR/)
  t.equal(stack.pp.captures.length, 1, 'PayPal captured in EUR')
  await stack.app.worker.sweep(new Date(Date.now() + 11 * MINUTE))
  t.ok(stack.logLines().some(l => l.event === 'paypal.order_check_failed' && l.checkout === checkoutId && l.order === orderId), 'logged for the operator')
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'CREATED', 'nothing recorded')
  await stack.app.worker.idle()
  t.same(stack.alma.allExternalPayments(), [], 'nothing posted to Alma')
})

t.test('(a) a capture for more than the checkout, found by the sweep, goes to staff as the webhook\'s would (MISMATCH), nothing posted', async t => {
  const stack = await paypalStack(t, { faults: { captureAmountDeltaCents: 100 } })
  const { checkoutId, captureId } = await capturedUnrecorded(stack, ['100001'])
  await stack.app.worker.sweep(new Date(Date.now() + 11 * MINUTE))
  const checkout = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(checkout?.state, 'NEEDS_ATTENTION')
  t.equal(checkout?.attentionKind, 'MISMATCH')
  await stack.app.worker.idle()
  t.same(stack.alma.paymentsFor(captureId), [], 'nothing posted to Alma')
  t.ok(stack.logLines().some(l => l.event === 'paypal.capture_recovered' && l.outcome === 'MISMATCH'))
})

t.test('(b) the patron starts a new checkout for the same fees before the sweep: the earlier capture is recorded first, not charged twice', async t => {
  const stack = await paypalStack(t)
  const { alice, checkoutId, orderId, captureId } = await capturedUnrecorded(stack, ['100001'])
  const fines = await alice.get('/')
  const pay = readForm(fines.body, 'pay-form')
  t.ok(pay.checkboxes.includes('100001'), 'with the capture unrecorded, the fee looks unpaid')
  const ordersBefore = stack.pp.orders.size
  const checkoutsBefore = (await stack.app.ledger.listCheckouts({})).total
  const asksBefore = orderAsks(stack, orderId)

  const again = await alice.post('/checkout', [...pay.fields, ['fee', '100001'], ['fee', '100002']])
  t.equal(again.status, 409, 'the new checkout is refused')
  t.match(again.body, 'We have already received a payment for one of the selected fees')
  t.equal(orderAsks(stack, orderId), asksBefore + 1, 'PayPal was asked about the open order once')
  t.equal(stack.pp.orders.size, ordersBefore, 'no new PayPal order')
  t.equal(stack.pp.captures.length, 1, 'PayPal holds one capture: the patron is not charged twice')
  t.equal((await stack.app.ledger.listCheckouts({})).total, checkoutsBefore, 'no new checkout')

  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'the earlier checkout is posted')
  await stack.app.worker.idle()
  t.same(stack.alma.paymentsFor(captureId), [{ feeId: '100001', amountCents: 500 }], 'Alma paid once')
  t.match(stack.logLines().filter(l => l.event === 'paypal.capture_recovered'), [{ checkout: checkoutId, order: orderId, tx: captureId, found: 'new-checkout', outcome: 'PAID' }])
  t.match((await auditEvents(stack, checkoutId)).filter(e => e.event === CAPTURE_RECOVERED_EVENT).map(e => e.detail), [{ found: 'new-checkout' }])

  // the other fee alone is payable again, and paying it asks nothing more of the recorded checkout
  const after = readForm((await alice.get('/')).body, 'pay-form')
  t.notOk(after.checkboxes.includes('100001'), 'the paid fee is no longer payable')
  const other = await alice.post('/checkout', [...after.fields, ['fee', '100002']])
  t.equal(other.status, 303, 'another fee starts a checkout as usual')
  t.equal(orderAsks(stack, orderId), asksBefore + 1, 'the recorded checkout is not asked about again')
})

t.test('(c) orders never approved or cancelled: asked at most once per interval, nothing recorded; past the bound, never asked', async t => {
  const stack = await paypalStack(t)
  const alice = new Browser(stack).login('alice')
  const open = await startPaying(stack, alice, ['100001'])
  const cancelled = await startPaying(stack, alice, ['100002'])
  await alice.request(await decide(alice, cancelled.approveUrl, 'cancel'))
  t.equal((await stack.app.ledger.getCheckout(cancelled.checkoutId))?.state, 'CANCELLED')
  const before = { open: orderAsks(stack, open.orderId), cancelled: orderAsks(stack, cancelled.orderId) }
  const start = Date.now()

  await stack.app.worker.sweep(new Date(start + 11 * MINUTE))
  await stack.app.worker.sweep(new Date(start + 12 * MINUTE))
  await stack.app.worker.sweep(new Date(start + 20 * MINUTE))
  t.equal(orderAsks(stack, open.orderId), before.open + 1, 'the open order is asked about once in its first interval')
  await stack.app.worker.sweep(new Date(start + 27 * MINUTE))
  t.equal(orderAsks(stack, open.orderId), before.open + 2, 'and again once the interval has passed')
  t.equal(orderAsks(stack, cancelled.orderId), before.cancelled, 'a cancelled checkout is never asked about')
  const checkout = await stack.app.ledger.getCheckout(open.checkoutId)
  t.equal(checkout?.state, 'CREATED', 'nothing recorded')
  t.equal(checkout?.tx, null)
  t.same((await stack.app.ledger.history(open.checkoutId))?.postbacks, [], 'no capture recorded')
  t.notOk(stack.logLines().some(l => l.event === 'paypal.capture_recovered'))

  // EXPIRED after a day, still within the bound: asked about
  await stack.app.worker.sweep(new Date(start + 25 * 60 * MINUTE))
  t.equal((await stack.app.ledger.getCheckout(open.checkoutId))?.state, 'EXPIRED')
  await stack.app.worker.sweep(new Date(start + 26 * 60 * MINUTE))
  t.equal(orderAsks(stack, open.orderId), before.open + 4, 'an EXPIRED checkout within the bound is still asked about')
  // past three days: never again
  const asked = orderAsks(stack, open.orderId)
  await stack.app.worker.sweep(new Date(start + 73 * 60 * MINUTE))
  await stack.app.worker.sweep(new Date(start + 80 * 60 * MINUTE))
  t.equal(orderAsks(stack, open.orderId), asked, 'a checkout older than the bound is never asked about')
})

t.test('(d) PayPal not answering during the sweep: logged, nothing recorded, asked again later and then recorded', async t => {
  const stack = await paypalStack(t)
  const { checkoutId, orderId, captureId } = await capturedUnrecorded(stack, ['100001'])
  stack.pp.faults.tokenDown = true
  stack.pp.expireTokens()
  const start = Date.now()
  await stack.app.worker.sweep(new Date(start + 11 * MINUTE))
  t.ok(stack.logLines().some(l => l.event === 'paypal.order_check_failed' && l.checkout === checkoutId && l.order === orderId), 'logged')
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'CREATED', 'nothing recorded')

  stack.pp.faults.tokenDown = false
  const asks = orderAsks(stack, orderId)
  await stack.app.worker.sweep(new Date(start + 12 * MINUTE))
  t.equal(orderAsks(stack, orderId), asks, 'not asked again within the interval')
  await stack.app.worker.sweep(new Date(start + 27 * MINUTE))
  t.equal(orderAsks(stack, orderId), asks + 1, 'asked again later')
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'posted')
  await stack.app.worker.idle()
  t.same(stack.alma.paymentsFor(captureId), [{ feeId: '100001', amountCents: 500 }], 'Alma paid once')
})

t.test('on PostgreSQL: the sweep finds the unrecorded capture and posts it once; the patron\'s new checkout for the same fees finds an earlier one first; past the bound nothing is asked', async t => {
  const url = await freshDatabase(t)
  if (url === null) return
  const stack = await paypalStack(t, {}, { DATABASE_URL: url })
  const first = await capturedUnrecorded(stack, ['100001'])
  await stack.app.worker.sweep(new Date(Date.now() + 11 * MINUTE))
  await until(async () => (await stack.app.ledger.getCheckout(first.checkoutId))?.state === 'POSTED', 'posted after the sweep')

  const second = await capturedUnrecorded(stack, ['100002'])
  const pay = readForm((await second.alice.get('/')).body, 'pay-form')
  const again = await second.alice.post('/checkout', [...pay.fields, ['fee', '100002']])
  t.equal(again.status, 409, 'the new checkout is refused: the earlier capture was found first')
  await until(async () => (await stack.app.ledger.getCheckout(second.checkoutId))?.state === 'POSTED', 'the earlier checkout posted')
  await stack.app.worker.idle()
  t.same(stack.alma.paymentsFor(first.captureId), [{ feeId: '100001', amountCents: 500 }], 'Alma paid once for the first')
  t.same(stack.alma.paymentsFor(second.captureId), [{ feeId: '100002', amountCents: 4550 }], 'and once for the second')
  t.equal(stack.pp.captures.length, 2, 'one capture per order')

  const open = await startPaying(stack, second.alice, ['100003'])
  const asked = orderAsks(stack, open.orderId)
  await stack.app.worker.sweep(new Date(Date.now() + 73 * 60 * MINUTE))
  t.equal(orderAsks(stack, open.orderId), asked, 'a checkout older than the bound is never asked about')
})
