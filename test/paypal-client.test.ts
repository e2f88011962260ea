// The PayPal client over real HTTP against the PayPal stand-in: the token, orders with their items and
// idempotency keys, the approval page, captures (declined, repeated, lost answers), webhook signatures, Transaction
// Search, and PayPal answers the client must not believe.

import t, { type Test } from 'tap'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { Writable } from 'node:stream'
import pino from 'pino'
import type { Cents } from '../src/money.ts'
import { type OrderCheckout, PayPalClient, type PayPalClientOptions } from '../src/providers/paypal/client.ts'
import { PayPalError } from '../src/providers/paypal/errors.ts'
import { parseWebhookEvent } from '../src/providers/paypal/webhook.ts'
import { PayPalSandbox, type PayPalSandboxOptions } from '../src/sandbox/paypal.ts'

const CLIENT_ID = 'sandbox-paypal-client-id'
const CLIENT_SECRET = 'sandbox-paypal-client-secret-7d1e'
const WEBHOOK_ID = 'WH-SANDBOX-4JU57766NB3719218'

interface Received { headers: IncomingHttpHeaders, body: string }

interface Setup {
  paypal: PayPalSandbox
  client: PayPalClient
  received: Received[]
  logs: Array<Record<string, any>>
  listenerUrl: string
}

async function setup (t: Test, options: Partial<PayPalSandboxOptions> = {}, clientOptions: Partial<PayPalClientOptions> = {}): Promise<Setup> {
  const received: Received[] = []
  const listener = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c) => { body += c })
    req.on('end', () => {
      received.push({ headers: req.headers, body })
      res.writeHead(200).end()
    })
  })
  await new Promise<void>(resolve => listener.listen(0, '127.0.0.1', resolve))
  const listenerUrl = `http://127.0.0.1:${(listener.address() as { port: number }).port}/paypal/webhook`
  const paypal = new PayPalSandbox({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, webhookId: WEBHOOK_ID, webhookUrl: listenerUrl, ...options })
  await paypal.start()
  const logs: Array<Record<string, any>> = []
  const stream = new Writable({ write (chunk, _e, done) { for (const l of String(chunk).split('\n')) if (l.trim() !== '') logs.push(JSON.parse(l)); done() } })
  const client = new PayPalClient({ baseUrl: paypal.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, timeoutMs: 2000, logger: pino({ level: 'debug' }, stream), ...clientOptions })
  t.teardown(async () => {
    await paypal.close()
    await new Promise(resolve => listener.close(resolve))
  })
  return { paypal, client, received, logs, listenerUrl }
}

let checkoutCounter = 0
function checkout (amounts: number[] = [1250, 425], currency = 'USD'): OrderCheckout {
  checkoutCounter++
  return {
    id: `c0ffee${String(checkoutCounter).padStart(26, '0')}`,
    currency,
    lines: amounts.map((amount, i) => ({ feeId: `fee-${checkoutCounter}-${i + 1}`, amount: amount as Cents, feeTypeDesc: i === 0 ? 'Overdue fine' : 'Lost item replacement fee', title: `Book ${i + 1}` }))
  }
}

const experience = { returnUrl: 'https://pay.library.example.edu/paypal/return', cancelUrl: 'https://pay.library.example.edu/paypal/cancel', brandName: 'Springfield University Library' }

/** The patron on the approval page: a choice, and where PayPal sends the browser. */
async function decide (t: Test, approveUrl: string, action: 'approve' | 'decline' | 'cancel'): Promise<URL> {
  const page = await fetch(approveUrl)
  t.equal(page.status, 200, 'the approval page opens')
  const html = await page.text()
  t.notMatch(html, /<script/i, 'the approval page works without JavaScript')
  const token = /name="token" value="([^"]+)"/.exec(html)?.[1] ?? ''
  const answer = await fetch(new URL('/checkoutnow/decide', approveUrl), { method: 'POST', body: new URLSearchParams({ token, action }), redirect: 'manual' })
  t.equal(answer.status, 303)
  return new URL(answer.headers.get('location') ?? '')
}

async function caught (promise: Promise<unknown>): Promise<PayPalError> {
  try {
    await promise
  } catch (error) {
    if (error instanceof PayPalError) return error
    throw error
  }
  throw new Error('expected a PayPalError')
}

async function approvedOrder (t: Test, s: Setup, amounts?: number[]): Promise<{ orderId: string, checkout: OrderCheckout }> {
  const c = checkout(amounts)
  const order = await s.client.createOrder(c, experience)
  await decide(t, order.approveUrl ?? '', 'approve')
  return { orderId: order.id, checkout: c }
}

t.test('one token serves many calls, concurrent or not', async t => {
  const s = await setup(t)
  const c = checkout()
  const order = await s.client.createOrder(c, experience)
  await Promise.all(Array.from({ length: 8 }, async () => await s.client.getOrder(order.id)))
  await s.client.getOrder(order.id)
  t.equal(s.paypal.tokensIssued, 1)
  t.equal(s.paypal.count('POST', '/v1/oauth2/token'), 1)
  const view = s.client.withLogger(pino({ level: 'silent' }))
  await view.getOrder(order.id)
  t.equal(s.paypal.tokensIssued, 1, 'a view with another logger shares the token')
})

t.test('the token is renewed before it expires, so no call is refused for it', async t => {
  const s = await setup(t, { tokenLifetimeSeconds: 1 })
  const order = await s.client.createOrder(checkout(), experience)
  await new Promise(resolve => setTimeout(resolve, 1000))
  await s.client.getOrder(order.id)
  t.equal(s.paypal.tokensIssued, 2)
  t.equal(s.paypal.calls.filter(c => c.status === 401).length, 0)
})

t.test('a token PayPal refuses early is renewed once and the call made again', async t => {
  const s = await setup(t)
  const order = await s.client.createOrder(checkout(), experience)
  s.paypal.expireTokens()
  const again = await s.client.getOrder(order.id)
  t.equal(again.id, order.id)
  t.equal(s.paypal.tokensIssued, 2)
  t.equal(s.paypal.calls.filter(c => c.status === 401).length, 1)
})

t.test('wrong credentials are UNAUTHORIZED; a token endpoint that is down is UNAVAILABLE', async t => {
  const s = await setup(t)
  const wrong = new PayPalClient({ baseUrl: s.paypal.url, clientId: CLIENT_ID, clientSecret: 'not-the-secret', timeoutMs: 2000 })
  const refused = await caught(wrong.getOrder('ANY'))
  t.equal(refused.kind, 'UNAUTHORIZED')
  t.equal(refused.retryable, false)
  t.equal(refused.issue, 'invalid_client')
  s.paypal.faults.tokenDown = true
  const down = await caught(s.client.getOrder('ANY'))
  t.equal(down.kind, 'UNAVAILABLE')
  t.equal(down.retryable, true)
  t.match(down.debugId, /^[0-9a-f]{13}$/)
})

t.test('an order has one item per fee, the fee id as sku, decimal amounts and the checkout id as key and reference', async t => {
  const s = await setup(t)
  const c = checkout([1250, 425, 1])
  const order = await s.client.createOrder(c, experience)
  t.equal(order.status, 'PAYER_ACTION_REQUIRED')
  t.equal(order.approveUrl, `${s.paypal.url}/checkoutnow?token=${order.id}`)
  t.equal(order.amount, 1676)
  t.equal(order.customId, c.id)
  const stored = s.paypal.orders.get(order.id)
  t.equal(stored?.createRequestId, c.id, 'PayPal-Request-Id is the checkout id')
  t.same(stored?.request, {
    intent: 'CAPTURE',
    purchase_units: [{
      reference_id: c.id,
      custom_id: c.id,
      invoice_id: c.id,
      description: 'Springfield University Library: fines and fees',
      amount: { currency_code: 'USD', value: '16.76', breakdown: { item_total: { currency_code: 'USD', value: '16.76' } } },
      items: [
        { name: 'Overdue fine: Book 1', sku: c.lines[0].feeId, quantity: '1', unit_amount: { currency_code: 'USD', value: '12.50' }, category: 'DIGITAL_GOODS' },
        { name: 'Lost item replacement fee: Book 2', sku: c.lines[1].feeId, quantity: '1', unit_amount: { currency_code: 'USD', value: '4.25' }, category: 'DIGITAL_GOODS' },
        { name: 'Lost item replacement fee: Book 3', sku: c.lines[2].feeId, quantity: '1', unit_amount: { currency_code: 'USD', value: '0.01' }, category: 'DIGITAL_GOODS' }
      ]
    }],
    payment_source: { paypal: { experience_context: { ...{ return_url: experience.returnUrl, cancel_url: experience.cancelUrl, brand_name: experience.brandName }, user_action: 'PAY_NOW', shipping_preference: 'NO_SHIPPING' } } }
  })
  const again = await s.client.createOrder(c, experience)
  t.equal(again.id, order.id, 'creating the same checkout again answers the same order')
  t.equal(s.paypal.orders.size, 1)
})

t.test('an item name longer than PayPal allows is shortened; a checkout without lines or with a zero fee is refused before PayPal', async t => {
  const s = await setup(t)
  const c = checkout([300])
  const order = await s.client.createOrder({ ...c, lines: [{ ...c.lines[0], title: 'x'.repeat(300) }] }, experience)
  const name = (s.paypal.orders.get(order.id)?.request as any).purchase_units[0].items[0].name as string
  t.equal(name.length, 127)
  await t.rejects(s.client.createOrder({ ...checkout(), lines: [] }, experience), RangeError)
  await t.rejects(s.client.createOrder(checkout([500, 0]), experience), RangeError)
  await t.rejects(s.client.createOrder(checkout([500], 'JPY'), experience), /without decimals/)
  t.equal(s.paypal.count('POST', '/v2/checkout/orders'), 1, 'only the valid checkout reached PayPal')
})

t.test('approve, then capture: what was collected, under which capture id, for which checkout', async t => {
  const s = await setup(t)
  const c = checkout()
  const order = await s.client.createOrder(c, experience)
  const back = await decide(t, order.approveUrl ?? '', 'approve')
  t.equal(back.origin + back.pathname, experience.returnUrl)
  t.equal(back.searchParams.get('token'), order.id)
  t.ok(back.searchParams.get('PayerID'))
  const captured = await s.client.captureOrder(order.id, `${c.id}-capture`)
  t.equal(captured.status, 'COMPLETED')
  t.equal(captured.capture.status, 'COMPLETED')
  t.equal(captured.capture.amount, 1675)
  t.equal(captured.capture.currency, 'USD')
  t.equal(captured.capture.customId, c.id)
  t.equal(captured.capture.invoiceId, c.id)
  t.equal(captured.capture.id, s.paypal.captures[0].id)
  t.equal(s.paypal.captures.length, 1)
  const read = await s.client.getOrder(order.id)
  t.equal(read.capture?.id, captured.capture.id)
  t.equal(read.approveUrl, null, 'a captured order has nothing to approve')
})

t.test('cancel on the approval page sends the browser to cancel_url with the order id; capture is refused as not approved', async t => {
  const s = await setup(t)
  const order = await s.client.createOrder(checkout(), experience)
  const back = await decide(t, order.approveUrl ?? '', 'cancel')
  t.equal(back.origin + back.pathname, experience.cancelUrl)
  t.equal(back.searchParams.get('token'), order.id)
  const error = await caught(s.client.captureOrder(order.id, 'k1'))
  t.equal(error.kind, 'REJECTED')
  t.equal(error.issue, 'ORDER_NOT_APPROVED')
  t.equal(s.paypal.captures.length, 0)
})

t.test('the same capture request twice (same PayPal-Request-Id) is one capture', async t => {
  const s = await setup(t)
  const { orderId, checkout: c } = await approvedOrder(t, s)
  const first = await s.client.captureOrder(orderId, `${c.id}-capture`)
  const second = await s.client.captureOrder(orderId, `${c.id}-capture`)
  t.equal(second.capture.id, first.capture.id)
  t.equal(s.paypal.captures.length, 1)
  t.equal(s.paypal.count('POST', /\/capture$/), 2)
})

t.test('a capture whose answer is lost (500) and retried with the same key is one capture', async t => {
  const s = await setup(t)
  const { orderId, checkout: c } = await approvedOrder(t, s)
  s.paypal.faults.loseNextCaptureAnswers = 1
  const lost = await caught(s.client.captureOrder(orderId, `${c.id}-capture`))
  t.equal(lost.kind, 'UNAVAILABLE')
  t.equal(lost.retryable, true)
  t.equal(lost.status, 500)
  t.equal(s.paypal.captures.length, 1, 'PayPal did capture')
  const retried = await s.client.captureOrder(orderId, `${c.id}-capture`)
  t.equal(retried.capture.id, s.paypal.captures[0].id)
  t.equal(s.paypal.captures.length, 1, 'the retry made no second capture')
})

t.test('a capture refused with 503 and retried with the same key captures once', async t => {
  const s = await setup(t)
  const { orderId, checkout: c } = await approvedOrder(t, s)
  s.paypal.faults.failNextCaptures = 2
  for (let i = 0; i < 2; i++) {
    const error = await caught(s.client.captureOrder(orderId, `${c.id}-capture`))
    t.equal(error.kind, 'UNAVAILABLE')
  }
  const captured = await s.client.captureOrder(orderId, `${c.id}-capture`)
  t.equal(captured.capture.status, 'COMPLETED')
  t.equal(s.paypal.captures.length, 1)
  t.same(new Set(s.paypal.calls.filter(call => call.path.endsWith('/capture')).map(call => call.requestId)), new Set([`${c.id}-capture`]))
})

t.test('a second capture with a new key is ORDER_ALREADY_CAPTURED, and reading the order gives the existing capture', async t => {
  const s = await setup(t)
  const { orderId } = await approvedOrder(t, s)
  const first = await s.client.captureOrder(orderId, 'key-1')
  const error = await caught(s.client.captureOrder(orderId, 'key-2'))
  t.equal(error.kind, 'ORDER_ALREADY_CAPTURED')
  t.equal(error.retryable, false)
  t.match(error.debugId, /^[0-9a-f]{13}$/)
  const order = await s.client.getOrder(orderId)
  t.equal(order.status, 'COMPLETED')
  t.equal(order.capture?.id, first.capture.id)
  t.equal(order.capture?.amount, 1675)
  t.equal(s.paypal.captures.length, 1)
})

t.test('a declined instrument is INSTRUMENT_DECLINED; the patron approves again and the capture succeeds', async t => {
  const s = await setup(t)
  const c = checkout()
  const order = await s.client.createOrder(c, experience)
  const back = await decide(t, order.approveUrl ?? '', 'decline')
  t.equal(back.searchParams.get('token'), order.id, 'PayPal still returns the browser to return_url')
  const error = await caught(s.client.captureOrder(order.id, `${c.id}-capture-1`))
  t.equal(error.kind, 'INSTRUMENT_DECLINED')
  t.equal(error.status, 422)
  t.match(error.debugId, /^[0-9a-f]{13}$/)
  t.equal(s.paypal.captures.length, 0)
  const again = await s.client.getOrder(order.id)
  t.equal(again.approveUrl, order.approveUrl, 'the order can be approved again')
  await decide(t, again.approveUrl ?? '', 'approve')
  const captured = await s.client.captureOrder(order.id, `${c.id}-capture-2`)
  t.equal(captured.capture.amount, 1675)
  t.equal(s.paypal.captures.length, 1)
})

t.test('every error carries the debug_id, and the log line says it', async t => {
  const s = await setup(t)
  const error = await caught(s.client.getOrder('NOSUCHORDER123456'))
  t.equal(error.kind, 'NOT_FOUND')
  t.equal(error.issue, 'INVALID_RESOURCE_ID')
  t.match(error.debugId, /^[0-9a-f]{13}$/)
  t.match(error.message, `debug_id ${error.debugId}`)
  const line = s.logs.find(l => l.event === 'paypal.call' && l.level === 40)
  t.equal(line?.paypal.debugId, error.debugId)
  t.equal(line?.paypal.path, '/v2/checkout/orders/NOSUCHORDER123456')
  t.notMatch(JSON.stringify(s.logs), CLIENT_SECRET, 'the secret is never logged')
  t.notMatch(JSON.stringify(s.logs), /A21AA/, 'nor a token')
})

t.test('a slow PayPal is UNAVAILABLE after the timeout, without a retry by the client', async t => {
  const s = await setup(t, {}, { timeoutMs: 300 })
  const { orderId } = await approvedOrder(t, s)
  s.paypal.faults.latencyMs = 1000
  const error = await caught(s.client.captureOrder(orderId, 'slow-key'))
  t.equal(error.kind, 'UNAVAILABLE')
  t.equal(error.issue, 'ETIMEDOUT')
  t.equal(error.debugId, '')
  await new Promise(resolve => setTimeout(resolve, 900))
  t.equal(s.paypal.calls.filter(c => c.path.endsWith('/capture')).length, 1, 'one capture call: callers own retries')
})

t.test('capture answers PayPal must not be believed: malformed amounts are BAD_RESPONSE', async t => {
  for (const value of ['16.755', '1e3', '16,75', '-16.75', ' 16.75', '16.', '']) {
    const s = await setup(t, { faults: { captureAmountValue: value } })
    const { orderId } = await approvedOrder(t, s)
    const error = await caught(s.client.captureOrder(orderId, 'k'))
    t.equal(error.kind, 'BAD_RESPONSE', `capture amount ${JSON.stringify(value)} is refused`)
    t.equal(s.paypal.captures.length, 1)
  }
})

t.test('a capture of another amount or currency is reported as collected, for the rules to refuse', async t => {
  const s = await setup(t, { faults: { captureAmountDeltaCents: -100 } })
  const { orderId } = await approvedOrder(t, s)
  const captured = await s.client.captureOrder(orderId, 'k')
  t.equal(captured.capture.amount, 1575)
  t.equal(captured.amount, 1675, 'the order amount is still what was asked')
  const other = await setup(t, { faults: { captureCurrency: 'EUR' } })
  const second = await approvedOrder(t, other)
  const error = await caught(other.client.captureOrder(second.orderId, 'k'))
  t.equal(error.kind, 'BAD_RESPONSE', 'an order in USD with a capture in EUR is not read as either')
})

t.test('a pending capture is reported as PENDING with its reason', async t => {
  const s = await setup(t, { faults: { captureStatus: 'PENDING' } })
  const { orderId } = await approvedOrder(t, s)
  const captured = await s.client.captureOrder(orderId, 'k')
  t.equal(captured.capture.status, 'PENDING')
  t.equal(captured.capture.statusReason, 'PENDING_REVIEW')
})

t.test('webhook deliveries verify; a tampered body, another webhook id or missing headers do not', async t => {
  const s = await setup(t)
  const { orderId, checkout: c } = await approvedOrder(t, s)
  const captured = await s.client.captureOrder(orderId, 'k')
  t.equal(s.received.length, 2, 'approval and capture were delivered to the listener')
  const [approved, completed] = s.received
  for (const delivery of s.received) {
    t.same(await s.client.verifyWebhookSignature(delivery.headers, delivery.body, WEBHOOK_ID), { verified: true })
  }
  const approvedEvent = parseWebhookEvent(approved.body)
  t.match(approvedEvent, { kind: 'event', event: { type: 'CHECKOUT.ORDER.APPROVED', orderId, checkoutId: c.id, amount: 1675, currency: 'USD' } })
  const completedEvent = parseWebhookEvent(Buffer.from(completed.body))
  t.match(completedEvent, { kind: 'event', event: { type: 'PAYMENT.CAPTURE.COMPLETED', captureId: captured.capture.id, orderId, checkoutId: c.id, amount: 1675, status: 'COMPLETED' } })

  const tampered = completed.body.replace('"16.75"', '"1675.00"')
  t.not(tampered, completed.body)
  t.same(await s.client.verifyWebhookSignature(completed.headers, tampered, WEBHOOK_ID), { verified: false, reason: 'PayPal answered FAILURE' })
  t.same(await s.client.verifyWebhookSignature(completed.headers, completed.body, 'WH-SOMEONE-ELSES-HOOK'), { verified: false, reason: 'PayPal answered FAILURE' })
  const forged = { ...completed.headers, 'paypal-transmission-sig': Buffer.from('forged').toString('base64') }
  t.equal((await s.client.verifyWebhookSignature(forged, completed.body, WEBHOOK_ID)).verified, false)
  const replayedTime = { ...completed.headers, 'paypal-transmission-time': new Date(Date.now() + 1000).toISOString() }
  t.equal((await s.client.verifyWebhookSignature(replayedTime, completed.body, WEBHOOK_ID)).verified, false)

  const verifyCalls = s.paypal.count('POST', '/v1/notifications/verify-webhook-signature')
  for (const name of ['paypal-transmission-sig', 'paypal-transmission-id', 'paypal-transmission-time', 'paypal-auth-algo', 'paypal-cert-url']) {
    const headers = { ...completed.headers }
    delete headers[name]
    t.same(await s.client.verifyWebhookSignature(headers, completed.body, WEBHOOK_ID), { verified: false, reason: `header ${name} missing` })
  }
  t.same(await s.client.verifyWebhookSignature(completed.headers, 'not json', WEBHOOK_ID), { verified: false, reason: 'body is not JSON' })
  t.equal(s.paypal.count('POST', '/v1/notifications/verify-webhook-signature'), verifyCalls, 'incomplete deliveries are refused without asking PayPal')
})

t.test('PayPal unable to verify is UNAVAILABLE, not a verdict either way', async t => {
  const s = await setup(t)
  await approvedOrder(t, s)
  const [delivery] = s.received
  s.paypal.faults.tokenDown = true
  s.paypal.expireTokens()
  const error = await caught(s.client.verifyWebhookSignature(delivery.headers, delivery.body, WEBHOOK_ID))
  t.equal(error.kind, 'UNAVAILABLE')
})

t.test('a refund is delivered as PAYMENT.CAPTURE.REFUNDED naming the capture and the checkout', async t => {
  const s = await setup(t)
  const { orderId, checkout: c } = await approvedOrder(t, s)
  const captured = await s.client.captureOrder(orderId, 'k')
  const page = await fetch(`${s.paypal.url}/sandbox/captures`)
  t.match(await page.text(), `/sandbox/captures/${captured.capture.id}/refund`)
  const refunded = await fetch(`${s.paypal.url}/sandbox/captures/${captured.capture.id}/refund`, { method: 'POST', redirect: 'manual' })
  t.equal(refunded.status, 303)
  const delivery = s.received.at(-1) as Received
  t.same(await s.client.verifyWebhookSignature(delivery.headers, delivery.body, WEBHOOK_ID), { verified: true })
  t.match(parseWebhookEvent(delivery.body), { kind: 'event', event: { type: 'PAYMENT.CAPTURE.REFUNDED', captureId: captured.capture.id, checkoutId: c.id, amount: 1675, currency: 'USD' } })
  t.equal((await s.client.getOrder(orderId)).capture?.status, 'REFUNDED')
})

t.test('Transaction Search reads every page and splits a range longer than 31 days', async t => {
  const s = await setup(t, {}, { searchPageSize: 2 })
  const start = Date.parse('2026-01-01T00:00:00Z')
  const day = 24 * 3600 * 1000
  const days = [0.5, 3, 10, 40, 41, 42, 65, 70]
  const ids: string[] = []
  for (const d of days) {
    s.paypal.now = () => new Date(start + d * day)
    const { orderId } = await approvedOrder(t, s, [1000 + d * 2])
    ids.push((await s.client.captureOrder(orderId, `k-${d}`)).capture.id)
  }
  s.paypal.now = () => new Date(start + 71 * day)
  await s.paypal.refund(ids[0], 500)
  const found = await s.client.searchTransactions(new Date(start), new Date(start + 75 * day))
  t.same(found.filter(f => f.eventCode === 'T0006').map(f => f.transactionId), ids, 'every capture once, in order')
  t.same(found.filter(f => f.eventCode === 'T0006').map(f => f.amount), days.map(d => 1000 + d * 2))
  const refund = found.find(f => f.eventCode === 'T1107')
  t.equal(refund?.amount, -500, 'a refund is negative')
  t.equal(refund?.referenceId, ids[0])
  t.equal(found.length, days.length + 1)
  const searches = s.paypal.calls.filter(c => c.path === '/v1/reporting/transactions')
  t.ok(searches.every(c => c.status === 200), 'no window longer than PayPal allows')
  // windows: days 0-31 (3 captures: 2 pages), 31-62 (3: 2 pages), 62-75 (2 captures and the refund: 2 pages)
  t.equal(searches.length, 6)
})

t.test('Transaction Search refuses a malformed amount rather than count it', async t => {
  const s = await setup(t, { faults: { captureAmountValue: '12.345' } })
  const { orderId } = await approvedOrder(t, s)
  await caught(s.client.captureOrder(orderId, 'k'))
  const error = await caught(s.client.searchTransactions(new Date(Date.now() - 3600_000), new Date(Date.now() + 3600_000)))
  t.equal(error.kind, 'BAD_RESPONSE')
})

t.test('the stand-in holds deliveries until asked, settles pending captures, and sends odd deliveries on request', async t => {
  const s = await setup(t, { webhookMode: 'held', faults: { captureStatus: 'PENDING' } })
  const { orderId } = await approvedOrder(t, s)
  const captured = await s.client.captureOrder(orderId, 'k')
  t.equal(s.received.length, 0, 'nothing delivered while held')
  t.same(s.paypal.held.map(d => d.eventType), ['CHECKOUT.ORDER.APPROVED', 'PAYMENT.CAPTURE.PENDING'])
  await s.paypal.settlePending(captured.capture.id, 'DENIED')
  const sent = await s.paypal.deliverHeld()
  t.same(sent.map(d => d.status), [200, 200, 200])
  t.same(s.received.map(r => JSON.parse(r.body).event_type), ['CHECKOUT.ORDER.APPROVED', 'PAYMENT.CAPTURE.PENDING', 'PAYMENT.CAPTURE.DENIED'])
  t.match(parseWebhookEvent(s.received[2].body), { kind: 'event', event: { type: 'PAYMENT.CAPTURE.DENIED', status: 'DECLINED', captureId: captured.capture.id } })
  await s.paypal.redeliver(sent[0])
  t.equal(s.received[3].body, s.received[0].body, 'a redelivery carries the same event')
  const odd = await s.paypal.deliver('PAYMENT.CAPTURE.COMPLETED', { id: 'X' }, { headers: { 'paypal-transmission-sig': null } })
  t.equal(odd.status, 200)
  t.same(await s.client.verifyWebhookSignature(s.received[4].headers, s.received[4].body, WEBHOOK_ID), { verified: false, reason: 'header paypal-transmission-sig missing' })
})
