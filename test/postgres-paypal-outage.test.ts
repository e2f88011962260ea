// PayPal payments while PostgreSQL (DATABASE_URL) is down or restarting, over real HTTP with the Alma sandbox and
// the PayPal stand-in as judges (SPEC 11, SPEC 13). Each test owns a private PostgreSQL server and stops it at one
// step of a PayPal payment:
// - the patron comes back from PayPal while it is down: nothing is captured, a calm 503 says not to pay again, and
//   the patron's retry (or the APPROVED webhook PayPal sends again) captures and posts it once after the restart;
// - it goes down after PayPal captured the order and before the ledger recorded it (on the patron's return, or while
//   the APPROVED webhook captured): the money is not lost (the COMPLETED webhook PayPal sends again, or the patron's
//   retry, records it, and it is posted once) and the operator gets paypal.capture_unrecorded. The patron's page was
//   wrong: it said "Nothing was charged by this page" of money PayPal had taken, on a checkout that holds no fees
//   until its capture is recorded, so a patron who believed it paid the same fees again and was charged twice. It
//   now says PayPal took the money, how much, and not to pay again. One who starts paying the same fees again anyway
//   (before PayPal's webhook comes again) is not charged twice: PayPal is asked about the open order first, and its
//   capture is recorded and posted once (paypal.capture_recovered), the new checkout refused;
// - a webhook while it is down (APPROVED, COMPLETED, REFUNDED) is answered 503, never 2xx, and recorded once when
//   PayPal sends it again;
// - killed in the middle of a burst of returns: /readyz 503 while down; after the restart every captured payment is
//   POSTED, each fee paid exactly once in Alma, one capture per order at PayPal.

import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { PostgresLedger } from '../src/ledger/postgres/index.ts'
import type { WebhookDelivery } from '../src/sandbox/paypal.ts'
import type { SeedUser } from '../src/sandbox/seed.ts'
import { Browser, build, readForm, send, type TestStack, until } from './helper.ts'
import { approve, startPaying } from './support/paypal-flow.ts'
import { freshDatabaseOn } from './support/postgres.ts'
import { ownedServer, type PostgresServer, startServer, stopServerSoon } from './support/postgres-server.ts'

type PayPalStack = TestStack & { pp: NonNullable<TestStack['paypal']> }

/** A private PostgreSQL server this test may stop, and the PayPal stack on a fresh database of it; null when skipped. */
async function outageStack (t: Test, paypal: NonNullable<Parameters<typeof build>[1]>['paypal'] = {}): Promise<{ stack: PayPalStack, server: PostgresServer, url: string } | null> {
  const server = await ownedServer(t)
  if (server === undefined) return null
  const url = await freshDatabaseOn(t, server.url)
  const stack = await build(t, { env: { PAYMENT_PROVIDER: 'paypal', DATABASE_URL: url, POSTING_LEASE_SECONDS: '600' }, paypal })
  if (stack.paypal === null) throw new Error('no PayPal stand-in')
  return { stack: { ...stack, pp: stack.paypal }, server, url }
}

/** What the patron's page says, without markup. */
function text (body: string): string {
  return body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ')
}

const paidInAlma = (stack: PayPalStack): number => stack.alma.calls.filter(c => c.method === 'POST').length

/** After PayPal's webhooks came again: the checkout still POSTED with its capture, one capture at PayPal, each of alice's two fees paid once. */
async function stillPostedOnce (t: Test, stack: PayPalStack, checkoutId: string, tx: string, captured: string): Promise<void> {
  await stack.app.worker.idle()
  const checkout = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(checkout?.state, 'POSTED', 'still POSTED: nothing for staff')
  t.equal(checkout?.tx, tx)
  t.equal(stack.pp.captures.length, 1, captured)
  t.same(stack.alma.paymentsFor(tx).map(p => p.feeId).sort(), ['100001', '100003'], 'each fee paid once in Alma, with that capture')
  t.equal(paidInAlma(stack), 2, 'two pay calls in all')
}

t.test('the patron comes back from PayPal while PostgreSQL is down: nothing captured, a calm 503; the retry after the restart captures and posts once', async t => {
  const setup = await outageStack(t, { webhookMode: 'held' })
  if (setup === null) return
  const { stack, server } = setup
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId } = await startPaying(alice, ['100001', '100003'])
  const back = await approve(alice, approveUrl)
  const checkoutId = stack.pp.orders.get(orderId)?.customId as string

  await stopServerSoon(server, 'immediate')
  const down = await alice.request(back)
  t.equal(down.status, 503, 'the return is answered 503 while the ledger is out of reach')
  t.notMatch(down.body, /at .*\.ts:\d+|Error:/, 'no stack trace')
  t.match(text(down.body), /do not need to pay again/i, 'the patron is told not to pay again')
  t.equal(stack.pp.captures.length, 0, 'nothing was captured at PayPal: the order waits, approved')
  t.equal(stack.pp.orders.get(orderId)?.status, 'APPROVED')
  // the APPROVED webhook PayPal sends meanwhile is not taken either
  const approved = await stack.pp.deliverHeld()
  t.same(approved.map(d => [d.eventType, d.status]), [['CHECKOUT.ORDER.APPROVED', 503]], 'the APPROVED webhook is answered 503 (PayPal sends it again)')
  t.equal(stack.pp.captures.length, 0, 'still nothing captured')

  startServer(server)
  await until(async () => (await send(`${stack.serviceUrl}/readyz`)).status === 200, '/readyz after the restart', 30_000)
  // the patron reloads the page: the order is captured once and posted; PayPal's APPROVED webhook again finds it done
  const retried = await alice.request(back)
  t.equal(retried.status, 200, 'the retry shows the receipt')
  t.equal((await stack.pp.redeliver(approved[0])).status, 200, 'the APPROVED webhook sent again is taken')
  t.equal((await stack.pp.deliverHeld()).every(d => d.status === 200), true, 'the COMPLETED webhook of the capture is taken')
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'POSTED', 30_000)
  await stack.app.worker.idle()
  t.equal(stack.pp.captures.length, 1, 'one capture at PayPal')
  const tx = stack.pp.captures[0].id
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.tx, tx, 'the checkout is paid with that capture')
  t.same(stack.alma.paymentsFor(tx).sort((a, b) => a.feeId.localeCompare(b.feeId)), [{ feeId: '100001', amountCents: 500 }, { feeId: '100003', amountCents: 1225 }], 'each fee paid once, with the capture id')
  t.equal(paidInAlma(stack), 2, 'two pay calls in all')
})

/**
 * A listener standing in front of the service's webhook: a PAYMENT.CAPTURE.COMPLETED stops PostgreSQL (PayPal has
 * just captured, the service has not yet read the capture's answer) and is then passed on (once: a later one is
 * passed on as it is); anything else is passed on as it is, or held back (answered 503, not passed on) while
 * `holdApproved`.
 */
async function stopOnCapture (t: Test, stack: PayPalStack, server: PostgresServer): Promise<{ holdApproved: boolean, stopped: boolean }> {
  const state = { holdApproved: true, stopped: false }
  const target = `${stack.serviceUrl}/paypal/webhook`
  const body = async (request: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = []
    for await (const chunk of request) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString()
  }
  const listener: Server = createServer((request, response) => {
    void (async () => {
      const raw = await body(request)
      const type = (JSON.parse(raw) as { event_type: string }).event_type
      if (type === 'CHECKOUT.ORDER.APPROVED' && state.holdApproved) {
        response.writeHead(503).end()
        return
      }
      if (type === 'PAYMENT.CAPTURE.COMPLETED' && !state.stopped) {
        state.stopped = true
        await stopServerSoon(server, 'immediate')
      }
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(request.headers)) if (typeof value === 'string' && name.startsWith('paypal-')) headers[name] = value
      const answer = await send(target, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: raw })
      response.writeHead(answer.status).end(answer.body)
    })()
  })
  await new Promise<void>(resolve => listener.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise(resolve => listener.close(resolve)) })
  stack.pp.setWebhookUrl(`http://127.0.0.1:${(listener.address() as { port: number }).port}/`)
  return state
}

async function capturedThenDown (t: Test): Promise<{ stack: PayPalStack, server: PostgresServer, alice: Browser, back: string, checkoutId: string, page: { status: number, body: string }, completed: WebhookDelivery } | null> {
  const setup = await outageStack(t)
  if (setup === null) return null
  const { stack, server } = setup
  await stopOnCapture(t, stack, server)
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId } = await startPaying(alice, ['100001', '100003'])
  const back = await approve(alice, approveUrl)
  const checkoutId = stack.pp.orders.get(orderId)?.customId as string
  t.equal(stack.pp.captures.length, 0, 'approved, not captured yet (the APPROVED webhook held back)')
  const page = await alice.request(back)
  const completed = stack.pp.webhooks.find(d => d.eventType === 'PAYMENT.CAPTURE.COMPLETED') as WebhookDelivery
  return { stack, server, alice, back, checkoutId, page, completed }
}

t.test('PostgreSQL stops after PayPal captured, before the ledger recorded it: the patron is told not to pay again; the COMPLETED webhook sent again records it, posted once', async t => {
  const setup = await capturedThenDown(t)
  if (setup === null) return
  const { stack, server, checkoutId, page, completed } = setup
  t.equal(stack.pp.captures.length, 1, 'PayPal captured the order: the money is taken')
  const tx = stack.pp.captures[0].id
  t.equal(page.status, 503, 'the patron\'s return is answered 503')
  t.notMatch(page.body, /at .*\.ts:\d+|Error:/, 'no stack trace')
  t.notMatch(text(page.body), /nothing was charged/i, 'the page does not say nothing was charged (PayPal took the money)')
  t.match(text(page.body), /PayPal has taken your payment of 17\.25 USD/, 'it says PayPal took the money, and how much')
  t.match(text(page.body), /do not need to pay again/i, 'it tells the patron not to pay again')
  t.equal(completed?.status, 503, 'the COMPLETED webhook that arrived while PostgreSQL was down was answered 503, not 200')
  t.ok(stack.logLines().some(l => l.event === 'paypal.capture_unrecorded' && l.tx === tx && l.checkout === checkoutId), 'the operator is told of money taken and not yet recorded')

  startServer(server)
  await until(async () => (await send(`${stack.serviceUrl}/readyz`)).status === 200, '/readyz after the restart', 30_000)
  stack.pp.setWebhookUrl(`${stack.serviceUrl}/paypal/webhook`) // PayPal's deliveries straight to the service from now on
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'CREATED', 'nothing was recorded while PostgreSQL was down')
  // PayPal sends the COMPLETED webhook again (twice: one delivery may cross another)
  const again = await Promise.all([stack.pp.redeliver(completed), stack.pp.redeliver(completed)])
  t.same(again.map(d => d.status), [200, 200], 'the webhook sent again is taken')
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'POSTED', 30_000)
  await stack.app.worker.idle()
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.tx, tx, 'paid with the capture PayPal made')
  t.same(stack.alma.paymentsFor(tx).sort((a, b) => a.feeId.localeCompare(b.feeId)), [{ feeId: '100001', amountCents: 500 }, { feeId: '100003', amountCents: 1225 }], 'each fee paid once in Alma')
  t.equal(paidInAlma(stack), 2, 'two pay calls in all')
  t.equal(stack.pp.captures.length, 1, 'captured once')
})

t.test('PostgreSQL stops after PayPal captured, before the ledger recorded it: the patron\'s retry after the restart records it, once, whatever PayPal sends later', async t => {
  const setup = await capturedThenDown(t)
  if (setup === null) return
  const { stack, server, alice, back, checkoutId, completed } = setup
  const tx = stack.pp.captures[0].id
  startServer(server)
  await until(async () => (await send(`${stack.serviceUrl}/readyz`)).status === 200, '/readyz after the restart', 30_000)
  stack.pp.setWebhookUrl(`${stack.serviceUrl}/paypal/webhook`) // PayPal's deliveries straight to the service from now on
  const retried = await alice.request(back)
  t.equal(retried.status, 200, 'the reloaded return shows the receipt')
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'POSTED', 30_000)
  // PayPal's webhooks arrive after all: recorded once already
  t.equal((await stack.pp.redeliver(completed)).status, 200, 'the COMPLETED webhook sent again is taken')
  const approvedDelivery = stack.pp.webhooks.find(d => d.eventType === 'CHECKOUT.ORDER.APPROVED') as WebhookDelivery
  t.equal((await stack.pp.redeliver(approvedDelivery)).status, 200, 'the APPROVED webhook sent again is taken')
  await stillPostedOnce(t, stack, checkoutId, tx, 'captured once: the retry found the capture PayPal had made')
})

t.test('PostgreSQL stops while the APPROVED webhook captures (the patron never comes back): both webhooks answered 503; sent again, recorded and posted once', async t => {
  const setup = await outageStack(t)
  if (setup === null) return
  const { stack, server } = setup
  const listener = await stopOnCapture(t, stack, server)
  listener.holdApproved = false
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId } = await startPaying(alice, ['100001'])
  await approve(alice, approveUrl) // and the patron closes the browser: the return never comes
  const checkoutId = stack.pp.orders.get(orderId)?.customId as string
  t.equal(stack.pp.captures.length, 1, 'the APPROVED webhook captured the order: the money is taken')
  const tx = stack.pp.captures[0].id
  const deliveries = stack.pp.webhooks.map(d => [d.eventType, d.status])
  t.same(deliveries, [['CHECKOUT.ORDER.APPROVED', 503], ['PAYMENT.CAPTURE.COMPLETED', 503]], 'both webhooks answered 503 (PayPal sends them again), neither 200')
  t.ok(stack.logLines().some(l => l.event === 'paypal.capture_unrecorded' && l.source === 'webhook' && l.tx === tx), 'the operator is told of money taken and not yet recorded')

  startServer(server)
  await until(async () => (await send(`${stack.serviceUrl}/readyz`)).status === 200, '/readyz after the restart', 30_000)
  stack.pp.setWebhookUrl(`${stack.serviceUrl}/paypal/webhook`)
  const again = await Promise.all(stack.pp.webhooks.slice(0, 2).map(async d => await stack.pp.redeliver(d)))
  t.same(again.map(d => d.status), [200, 200], 'sent again (at once), both are taken')
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'POSTED', 30_000)
  await stack.app.worker.idle()
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.tx, tx, 'paid with the capture PayPal made')
  t.equal(stack.pp.captures.length, 1, 'captured once: the APPROVED webhook sent again found the capture')
  t.same(stack.alma.paymentsFor(tx), [{ feeId: '100001', amountCents: 500 }], 'the fee paid once in Alma')
  t.equal(paidInAlma(stack), 1, 'one pay call in all')
})

t.test('PostgreSQL stops after PayPal captured; after the restart, before PayPal sends its webhook again, the patron starts paying the same fees again: the first capture is found and recorded first, the patron is not charged twice, Alma is paid once', async t => {
  const setup = await capturedThenDown(t)
  if (setup === null) return
  const { stack, server, alice, checkoutId, completed } = setup
  const first = stack.pp.captures[0].id
  const orderId = stack.pp.captures[0].orderId
  startServer(server)
  await until(async () => (await send(`${stack.serviceUrl}/readyz`)).status === 200, '/readyz after the restart', 30_000)
  stack.pp.setWebhookUrl(`${stack.serviceUrl}/paypal/webhook`)
  // the open checkout holds no fees (the ledger never learnt of its capture): the fines page offers them again
  const fines = await alice.get('/')
  const pay = readForm(fines.body, 'pay-form')
  t.same(pay.checkboxes, ['100001', '100002', '100003'], 'the fees look unpaid')
  const asked = stack.pp.count('GET', `/v2/checkout/orders/${orderId}`)
  const orders = stack.pp.orders.size
  const again = await alice.post('/checkout', [...pay.fields, ['fee', '100001'], ['fee', '100003']])
  t.equal(again.status, 409, 'the new checkout is refused: the first payment is found first')
  t.match(again.body, 'We have already received a payment for one of the selected fees')
  t.equal(stack.pp.count('GET', `/v2/checkout/orders/${orderId}`), asked + 1, 'PayPal was asked about the first order once')
  t.equal(stack.pp.orders.size, orders, 'no second order')
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'the first payment POSTED', 30_000)
  t.ok(stack.logLines().some(l => l.event === 'paypal.capture_recovered' && l.checkout === checkoutId && l.tx === first && l.found === 'new-checkout'), 'the operator is told how it was found')
  // PayPal sends the first capture's COMPLETED webhook again: recorded once already
  t.equal((await stack.pp.redeliver(completed)).status, 200, 'the first capture\'s webhook is taken')
  await stillPostedOnce(t, stack, checkoutId, first, 'one capture at PayPal: the patron was charged once')
})

t.test('PayPal\'s refund webhook while PostgreSQL is down: answered 503, never 200; sent again after the restart (twice at once), the refund is recorded once', async t => {
  const setup = await outageStack(t)
  if (setup === null) return
  const { stack, server } = setup
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId } = await startPaying(alice, ['100001'])
  await alice.request(await approve(alice, approveUrl))
  const checkoutId = stack.pp.orders.get(orderId)?.customId as string
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'POSTED', 30_000)
  const capture = stack.pp.captures[0].id
  t.same(stack.alma.paymentsFor(capture), [{ feeId: '100001', amountCents: 500 }], 'paid in Alma once')

  await stopServerSoon(server, 'immediate')
  const refund = await stack.pp.refund(capture, 200)
  const delivery = stack.pp.webhooks.find(d => d.eventType === 'PAYMENT.CAPTURE.REFUNDED') as WebhookDelivery
  t.equal(delivery.status, 503, 'the refund webhook is answered 503 while PostgreSQL is down (PayPal sends it again)')

  startServer(server)
  await until(async () => (await send(`${stack.serviceUrl}/readyz`)).status === 200, '/readyz after the restart', 30_000)
  t.equal((await stack.app.ledger.moneyRecord(checkoutId))?.refunds.length, 0, 'nothing was recorded while it was down')
  const again = await Promise.all([stack.pp.redeliver(delivery), stack.pp.redeliver(delivery)])
  t.same(again.map(d => d.status), [200, 200], 'the webhook sent again is taken')
  t.same((await stack.app.ledger.moneyRecord(checkoutId))?.refunds.map(r => [r.reference, r.amount, r.tx, r.by]), [[refund.id, 200, capture, 'paypal']], 'the refund recorded once')
  const checkout = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(checkout?.state, 'NEEDS_ATTENTION', 'staff decide what Alma owes again')
  t.equal(checkout?.attentionKind, 'REFUNDED')
  t.equal(stack.alma.calls.filter(c => c.method === 'POST').length, 1, 'nothing more paid in Alma')
})

const patron = (n: number): SeedUser => ({
  primaryId: `PPOUT${n}`,
  firstName: 'Outage',
  lastName: `PayPal ${n}`,
  email: `ppout${n}@example.edu`,
  userGroup: 'UNDERGRAD',
  identifiers: [],
  blocks: [],
  fees: [{ id: String(7_800_000 + n), type: 'OVERDUEFINE', typeDesc: 'Overdue fine', balance: `${n + 1}.50`, owner: 'MAIN', ownerDesc: 'Main Library', title: `Title ${n}`, barcode: `3910${n}`, created: '2026-10-01T14:30:00Z' }],
  story: ''
})

t.test('PostgreSQL killed during a burst of PayPal returns: never 200 without a record, /readyz 503 while down; after the restart every payment POSTED, each fee paid once', async t => {
  const setup = await outageStack(t, { webhookMode: 'held' })
  if (setup === null) return
  const { stack, server, url } = setup
  const COUNT = 10
  const patrons: Array<{ browser: Browser, back: string, checkoutId: string, fee: string, cents: number }> = []
  for (let n = 0; n < COUNT; n++) {
    const seed = patron(n)
    stack.alma.addUser(seed)
    const browser = new Browser(stack).login(seed.primaryId)
    const { approveUrl, orderId } = await startPaying(browser)
    const back = await approve(browser, approveUrl)
    patrons.push({ browser, back, checkoutId: stack.pp.orders.get(orderId)?.customId as string, fee: seed.fees[0].id, cents: (n + 1) * 100 + 50 })
  }
  const approvals = stack.pp.held.splice(0)
  t.equal(approvals.length, COUNT, 'one APPROVED webhook per order, held back by PayPal for now')

  // the burst: every patron comes back at once, and PostgreSQL is killed as soon as the first is answered
  let stopping: Promise<void> | undefined
  const answers = await Promise.all(patrons.map(async ({ browser, back }) => {
    const answer = await browser.request(back)
    stopping ??= stopServerSoon(server, 'immediate')
    return answer
  }))
  await stopping
  t.ok(answers.every(a => a.status === 200 || a.status === 503), `each return answered 200 or 503 (${answers.map(a => a.status).join(' ')})`)
  t.ok(answers.every(a => !/at .*\.ts:\d+/.test(a.body)), 'no stack trace on any page')
  const refused = answers.filter(a => a.status === 503).map(a => text(a.body))
  t.ok(refused.every(page => !/nothing was charged/i.test(page) && /do not need to pay again/i.test(page)), 'every 503 page tells the patron not to pay again, none that nothing was charged')

  // down: readiness says so, and every webhook PayPal sends now (the APPROVED ones, the COMPLETED ones of the
  // captures made in the burst) is answered non-2xx: PayPal sends it again
  t.equal((await send(`${stack.serviceUrl}/readyz`)).status, 503, '/readyz fails while PostgreSQL is down')
  const whileDown = [...await Promise.all(approvals.map(async d => await stack.pp.redeliver(d))), ...await stack.pp.deliverHeld()]
  t.ok(whileDown.length >= COUNT && whileDown.every(d => d.status === 503), `every webhook while down answered 503 (${whileDown.map(d => d.status).join(' ')})`)
  const capturedWhileUp = stack.pp.captures.length

  startServer(server)
  await until(async () => (await send(`${stack.serviceUrl}/readyz`)).status === 200, '/readyz after the restart', 30_000)
  // every return answered 200 showed what the ledger durably holds: it survived the crash
  const reader = await PostgresLedger.open({ url, readOnly: true })
  t.teardown(async () => { await reader.close() })
  for (const [i, { checkoutId }] of patrons.entries()) {
    if (answers[i].status !== 200) continue
    const state = (await reader.getCheckout(checkoutId))?.state
    t.ok(state === 'PAID' || state === 'POSTED', `return ${i}, answered 200, is PAID or POSTED after the crash (${state ?? 'none'})`)
  }
  // PayPal sends each webhook again (all at once); the patrons answered 503 reload their page
  const again = await Promise.all(whileDown.map(async d => await stack.pp.redeliver(d)))
  t.ok(again.every(d => d.status === 200), `every webhook sent again is taken (${again.map(d => d.status).join(' ')})`)
  for (const [i, { browser, back }] of patrons.entries()) {
    if (answers[i].status !== 200) t.equal((await browser.request(back)).status, 200, `patron ${i} reloads the return: the receipt`)
  }
  t.equal((await Promise.all(stack.pp.held.splice(0).map(async d => await stack.pp.redeliver(d)))).every(d => d.status === 200), true, 'the webhooks of captures made after the restart are taken')

  await until(async () => {
    for (const { checkoutId } of patrons) if ((await reader.getCheckout(checkoutId))?.state !== 'POSTED') return false
    return true
  }, 'every payment POSTED after the restart', 60_000)
  await stack.app.worker.idle()
  t.ok(capturedWhileUp <= COUNT, 'no order captured twice in the burst')
  t.equal(stack.pp.captures.length, COUNT, 'one capture per order at PayPal')
  for (const { checkoutId, fee, cents } of patrons) {
    const order = [...stack.pp.orders.values()].find(o => o.customId === checkoutId)
    t.equal(order?.captures.length, 1, `order of ${checkoutId} captured once`)
    const tx = order?.captures[0].id as string
    t.equal((await reader.getCheckout(checkoutId))?.tx, tx, 'the checkout is paid with its capture')
    t.same(stack.alma.paymentsFor(tx), [{ feeId: fee, amountCents: cents }], `fee ${fee} paid exactly once, with its capture id`)
  }
  t.equal(paidInAlma(stack), COUNT, 'one pay call per fee in all')
})
