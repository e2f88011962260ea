// Paying through PayPal (SPEC 13): the whole flow over real HTTP (service, Alma sandbox, PayPal stand-in with its
// webhooks delivered to the service, EZproxy stand-in), asserting on what Alma and the stand-in recorded.

import t, { type Test } from 'tap'
import { Browser, build, readForm, type TestStack, until } from './helper.ts'
import { decide, startPaying } from './support/paypal-flow.ts'

const PAYPAL = { PAYMENT_PROVIDER: 'paypal' }

async function paypalStack (t: Test, options: Parameters<typeof build>[1] = {}): Promise<TestStack & { pp: NonNullable<TestStack['paypal']> }> {
  const stack = await build(t, { ...options, env: { ...PAYPAL, ...options.env } })
  if (stack.paypal === null) throw new Error('no PayPal stand-in')
  return { ...stack, pp: stack.paypal }
}

/** alice pays fee 100001 (5.00) through PayPal and the payment is POSTED: the start of each refund story. */
async function paidAndPosted (t: Test): Promise<{ stack: Awaited<ReturnType<typeof paypalStack>>, checkoutId: string, capture: string }> {
  const stack = await paypalStack(t)
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId } = await startPaying(alice, ['100001'])
  await alice.request(await decide(alice, approveUrl, 'approve'))
  const checkoutId = stack.pp.orders.get(orderId)?.customId as string
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'posted')
  return { stack, checkoutId, capture: stack.pp.captures[0].id }
}

t.test('a CashNet postback naming a PayPal checkout (the campus behind CashNet\'s allow-list too) is kept as an orphan: nothing paid or posted', async t => {
  const stack = await paypalStack(t)
  const alice = new Browser(stack).login('alice')
  const { orderId } = await startPaying(alice, ['100001'])
  const checkoutId = stack.pp.orders.get(orderId)?.customId as string
  // what a CashNet store whose notification URL points here would send: the checkout's reference and amounts
  const session = { id: 'stray', finished: false, fields: new Map([['itemcnt', '1'], ['itemcode1', 'LIBFINE'], ['amount1', '5.00'], ['qty1', '1'], ['ref1type1', 'ALMACHECKOUT'], ['ref1val1', checkoutId], ['custcode', 'alice']]) }
  const fields = stack.cashnet.resultFields(session, 'pay')
  const first = await stack.cashnet.sendPostback(fields)
  t.equal(first.status, 200, 'answered 200: CashNet need not retry, staff see it', { body: first.body })
  t.equal((await stack.cashnet.sendPostback(fields)).status, 200, 'and again')
  await stack.app.worker.idle()
  const checkout = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(checkout?.state, 'CREATED', 'the PayPal checkout is untouched')
  t.equal(checkout?.tx, null)
  t.same(stack.alma.calls.filter(c => c.method === 'POST'), [], 'nothing paid in Alma')
  const unmatched = await stack.app.ledger.unmatchedPostbacks()
  t.match(unmatched, [{ outcome: 'ORPHAN', tx: fields.tx, reason: new RegExp(`checkout ${checkoutId} is paid through PayPal, not CashNet`) }, { outcome: 'ORPHAN' }], 'on the staff list of unmatched postbacks, each time')
})

t.test('a patron pays two fees through PayPal: one order, one capture, Alma records each fee once with the capture id', async t => {
  const stack = await paypalStack(t)
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId } = await startPaying(alice, ['100001', '100003'])
  t.equal(new URL(approveUrl).origin, stack.pp.url, 'the browser goes to the approval origin')
  const order = stack.pp.orders.get(orderId)
  t.ok(order, 'the order exists at PayPal')
  const checkoutId = order?.customId as string
  t.match(checkoutId, /^[0-9a-f]{32}$/)
  t.equal(order?.invoiceId, checkoutId)
  t.equal(order?.createRequestId, checkoutId, 'PayPal-Request-Id of the order is the checkout id')
  t.same(order?.items.map(i => [i.sku, i.unitCents]), [['100001', 500], ['100003', 1225]], 'one item per fee, sku = fee id')
  const back = await decide(alice, approveUrl, 'approve')
  const receipt = await alice.request(back)
  t.equal(receipt.status, 200)
  t.match(receipt.body, 'Payment received')
  t.match(receipt.body, 'PayPal transaction')
  await stack.app.worker.idle()
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'posted')
  const checkout = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(stack.pp.captures.length, 1, 'one capture')
  const capture = stack.pp.captures[0]
  t.equal(checkout?.tx, capture.id, 'the capture id is the tx')
  t.equal(checkout?.provider, 'paypal', 'the checkout records that PayPal took the money')
  t.same(stack.alma.paymentsFor(capture.id).sort((a, b) => a.feeId.localeCompare(b.feeId)), [
    { feeId: '100001', amountCents: 500 },
    { feeId: '100003', amountCents: 1225 }
  ])
  t.equal(stack.alma.allExternalPayments().length, 2, 'nothing else posted')
  t.equal(stack.alma.fee('100002').balanceCents, 4550, 'the unticked fee is untouched')
  const captureCalls = stack.pp.calls.filter(c => c.method === 'POST' && c.path.endsWith('/capture'))
  t.ok(captureCalls.length >= 1)
  t.ok(captureCalls.every(c => c.requestId === `${checkoutId}-capture`), 'every capture call carries the checkout capture PayPal-Request-Id')
})

for (const order of ['webhook first', 'return first', 'together, twice'] as const) {
  t.test(`return and webhook ${order}: one capture, one posting`, async t => {
    const stack = await paypalStack(t, { paypal: { webhookMode: 'held' } })
    const alice = new Browser(stack).login('alice')
    const { approveUrl } = await startPaying(alice, ['100001'])
    const back = await decide(alice, approveUrl, 'approve')
    if (order === 'webhook first') {
      await stack.pp.deliverHeld()
      await stack.pp.deliverHeld()
      await alice.request(back)
    } else if (order === 'return first') {
      await alice.request(back)
      await stack.pp.deliverHeld()
      await stack.pp.deliverHeld()
    } else {
      const held = [...stack.pp.held]
      await Promise.all([alice.request(back), alice.request(back), stack.pp.deliverHeld(), ...held.map(async d => await stack.pp.redeliver(d))])
      await stack.pp.deliverHeld()
    }
    await stack.app.worker.idle()
    const capture = stack.pp.captures[0]
    t.equal(stack.pp.captures.length, 1, 'one capture at PayPal')
    await until(async () => stack.alma.paymentsFor(capture.id).length === 1, 'posted')
    await stack.app.worker.idle()
    t.same(stack.alma.paymentsFor(capture.id), [{ feeId: '100001', amountCents: 500 }], 'one posting')
    t.equal(stack.alma.allExternalPayments().length, 1)
  })
}

t.test('approve and close the browser: the webhook alone captures and completes the payment', async t => {
  const stack = await paypalStack(t)
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId } = await startPaying(alice, ['100003'])
  await decide(alice, approveUrl, 'approve') // the browser never follows the redirect back
  const checkoutId = stack.pp.orders.get(orderId)?.customId as string
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'posted from the webhook')
  t.equal(stack.pp.captures.length, 1)
  t.same(stack.alma.paymentsFor(stack.pp.captures[0].id), [{ feeId: '100003', amountCents: 1225 }])
})

t.test('a webhook that does not verify, or signed for another webhook id, changes nothing', async t => {
  const stack = await paypalStack(t, { paypal: { webhookMode: 'off' } })
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId } = await startPaying(alice, ['100001'])
  await decide(alice, approveUrl, 'approve')
  const order = stack.pp.orders.get(orderId)
  const checkoutId = order?.customId as string
  const resource = { id: orderId, status: 'APPROVED', purchase_units: [{ custom_id: checkoutId, invoice_id: checkoutId, amount: { currency_code: 'USD', value: '5.00' } }] }
  const forged = await stack.pp.deliver('CHECKOUT.ORDER.APPROVED', resource, { headers: { 'paypal-transmission-sig': 'Zm9yZ2Vk' } })
  t.equal(forged.status, 400, 'a bad signature is refused')
  const body = JSON.stringify({ id: 'WH-OTHER1', event_type: 'CHECKOUT.ORDER.APPROVED', resource })
  const otherId = await stack.pp.deliver('CHECKOUT.ORDER.APPROVED', resource, { body, headers: stack.pp.sign(body, 'WH-SOMEONE-ELSE') })
  t.equal(otherId.status, 400, 'a webhook signed for another webhook id is refused')
  const unsigned = await stack.pp.deliver('CHECKOUT.ORDER.APPROVED', resource, { headers: { 'paypal-transmission-sig': null } })
  t.equal(unsigned.status, 400, 'a webhook without its signature header is refused')
  t.equal(stack.pp.count('POST', /\/capture$/), 0, 'nothing captured')
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'CREATED', 'nothing changed')
  t.equal((await stack.app.ledger.history(checkoutId))?.postbacks.length, 0, 'nothing recorded')
  t.equal(stack.logLines().filter(l => l.event === 'paypal.webhook_refused').length, 3, 'one log line each')
  t.equal(stack.alma.allExternalPayments().length, 0)
})

t.test('a captured amount or currency that differs: nothing posted, NEEDS_ATTENTION (MISMATCH), staff see why', async t => {
  for (const fault of [{ captureAmountDeltaCents: 100 }, { captureCurrency: 'EUR' }]) {
    const stack = await paypalStack(t, { paypal: { faults: fault } })
    const alice = new Browser(stack).login('alice')
    const { approveUrl, orderId } = await startPaying(alice, ['100001'])
    const back = await decide(alice, approveUrl, 'approve')
    const receipt = await alice.request(back)
    t.equal(receipt.status, 200)
    const checkoutId = stack.pp.orders.get(orderId)?.customId as string
    await stack.app.worker.idle()
    const checkout = await stack.app.ledger.getCheckout(checkoutId)
    t.equal(checkout?.state, 'NEEDS_ATTENTION', JSON.stringify(fault))
    t.equal(checkout?.attentionKind, 'MISMATCH')
    t.match(checkout?.attentionReason, fault.captureCurrency !== undefined ? /EUR/ : /6\.00/)
    t.equal(stack.alma.allExternalPayments().length, 0, 'nothing posted')
    const staff = new Browser(stack).login('staff')
    const page = await staff.get(`/admin/payments/${checkoutId}`)
    t.equal(page.status, 200)
    t.match(page.body, fault.captureCurrency !== undefined ? 'EUR' : '6.00', 'staff see why')
  }
})

t.test('a declined instrument sends the patron back to PayPal to choose another way; then it is paid once', async t => {
  const stack = await paypalStack(t)
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId } = await startPaying(alice, ['100001'])
  const back = await decide(alice, approveUrl, 'decline')
  const answer = await alice.request(back)
  t.equal(answer.status, 303, 'back to PayPal')
  t.equal(new URL(String(answer.headers.location)).origin, stack.pp.url)
  t.equal(stack.pp.captures.length, 0, 'nothing captured')
  const checkoutId = stack.pp.orders.get(orderId)?.customId as string
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'CREATED')
  const again = await decide(alice, String(answer.headers.location), 'approve')
  const receipt = await alice.request(again)
  t.equal(receipt.status, 200)
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'posted')
  t.equal(stack.pp.captures.length, 1)
  t.same(stack.alma.paymentsFor(stack.pp.captures[0].id), [{ feeId: '100001', amountCents: 500 }])
})

t.test('a declined attempt\'s capture key is never reused: with PayPal replaying its 422, the second approval is captured under a new PayPal-Request-Id, and a 5xx within it keeps that key', async t => {
  const stack = await paypalStack(t, { paypal: { faults: { replayErrorAnswers: true } } })
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId } = await startPaying(alice, ['100001'])
  const checkoutId = stack.pp.orders.get(orderId)?.customId as string
  const back = await decide(alice, approveUrl, 'decline')
  const answer = await alice.request(back)
  t.equal(answer.status, 303, 'back to PayPal to choose another way')
  t.equal(stack.pp.captures.length, 0, 'nothing captured')
  const firstKeys = new Set(stack.pp.calls.filter(c => c.method === 'POST' && c.path.endsWith('/capture')).map(c => c.requestId))
  t.ok(firstKeys.has(`${checkoutId}-capture`), 'the first attempt used the checkout\'s first capture key')

  stack.pp.faults.failNextCaptures = 1
  const again = await decide(alice, String(answer.headers.location), 'approve')
  const receipt = await alice.request(again)
  t.equal(receipt.status, 200, 'the second approval ends on the receipt, not on a replayed decline')
  t.match(receipt.body, 'Payment received')
  const calls = stack.pp.calls.filter(c => c.method === 'POST' && c.path.endsWith('/capture'))
  const secondCalls = calls.filter(c => !firstKeys.has(c.requestId))
  t.ok(secondCalls.length >= 2, 'the second attempt: a 503, then its retry')
  t.equal(secondCalls[0].status, 503)
  t.equal(secondCalls[1].requestId, secondCalls[0].requestId, 'the retry after 503 kept the attempt\'s key')
  t.match(secondCalls[0].requestId, new RegExp(`^${checkoutId}-capture-\\d+$`))
  t.ok(calls.filter(c => c.status === 422).every(c => !secondCalls.some(s => s.requestId === c.requestId && s.status === 201)), 'no key that got a 422 was used for the capture')
  t.equal(stack.pp.captures.length, 1, 'one capture')
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'posted')
  t.same(stack.alma.paymentsFor(stack.pp.captures[0].id), [{ feeId: '100001', amountCents: 500 }])
  t.equal(stack.alma.allExternalPayments().length, 1)
})

t.test('cancel on PayPal: CANCELLED and the calm page, nothing taken', async t => {
  const stack = await paypalStack(t)
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId } = await startPaying(alice, ['100001'])
  const back = await decide(alice, approveUrl, 'cancel')
  t.match(back, /\/paypal\/cancel\?token=/)
  const page = await alice.request(back)
  t.equal(page.status, 200)
  t.match(page.body, 'You cancelled the payment on PayPal')
  const checkoutId = stack.pp.orders.get(orderId)?.customId as string
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'CANCELLED')
  t.equal(stack.pp.captures.length, 0)
})

t.test('PayPal 5xx during capture: retried with the same PayPal-Request-Id, one capture, one posting', async t => {
  for (const fault of [{ failNextCaptures: 1 }, { loseNextCaptureAnswers: 1 }]) {
    const stack = await paypalStack(t, { paypal: { webhookMode: 'off', faults: fault } })
    const alice = new Browser(stack).login('alice')
    const { approveUrl, orderId } = await startPaying(alice, ['100001'])
    const back = await decide(alice, approveUrl, 'approve')
    const receipt = await alice.request(back)
    t.equal(receipt.status, 200, JSON.stringify(fault))
    const checkoutId = stack.pp.orders.get(orderId)?.customId as string
    const calls = stack.pp.calls.filter(c => c.method === 'POST' && c.path.endsWith('/capture'))
    t.equal(calls.length, 2, 'the capture was tried twice')
    t.same([...new Set(calls.map(c => c.requestId))], [`${checkoutId}-capture`], 'with the same PayPal-Request-Id')
    t.equal(stack.pp.captures.length, 1, 'one capture')
    await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'posted')
    t.same(stack.alma.paymentsFor(stack.pp.captures[0].id), [{ feeId: '100001', amountCents: 500 }])
  }
})

t.test('a refund at PayPal puts the checkout in front of staff with the refund recorded', async t => {
  const { stack, checkoutId, capture } = await paidAndPosted(t)
  await stack.pp.refund(capture)
  const checkout = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(checkout?.state, 'NEEDS_ATTENTION')
  t.equal(checkout?.attentionKind, 'REFUNDED')
  const history = await stack.app.ledger.history(checkoutId)
  t.equal(history?.refunds.length, 1)
  t.equal(history?.refunds[0].amount, 500)
  // the same refund delivered again records nothing more
  await stack.pp.redeliver(stack.pp.webhooks[stack.pp.webhooks.length - 1])
  t.equal((await stack.app.ledger.history(checkoutId))?.refunds.length, 1)
  const page = await new Browser(stack).login('staff').get(`/admin/payments/${checkoutId}`)
  t.match(page.body, 'PayPal refunded 5.00')
})

t.test('a refund whose event carries neither custom_id nor invoice_id is found by the capture it refunds', async t => {
  const { stack, checkoutId, capture } = await paidAndPosted(t)
  const delivery = await stack.pp.deliver('PAYMENT.CAPTURE.REFUNDED', {
    id: '7PW53514VX8283521',
    status: 'COMPLETED',
    amount: { currency_code: 'USD', value: '2.00' },
    links: [{ rel: 'up', method: 'GET', href: `${stack.pp.url}/v2/payments/captures/${capture}` }]
  })
  t.equal(delivery.status, 200)
  const history = await stack.app.ledger.history(checkoutId)
  t.same(history?.refunds.map(r => [r.reference, r.amount, r.tx]), [['7PW53514VX8283521', 200, capture]], 'recorded against the checkout the capture paid')
  t.equal(history?.checkout.state, 'NEEDS_ATTENTION')
  t.equal(history?.checkout.attentionKind, 'REFUNDED', 'and in front of staff')
})

t.test('a refund PayPal reported is not recorded again by staff under its refund id', async t => {
  const { stack, checkoutId, capture } = await paidAndPosted(t)
  const refunded = await stack.pp.refund(capture, 200)
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'NEEDS_ATTENTION', 'the webhook recorded the refund')
  const staff = new Browser(stack).login('staff')
  const page = await staff.get(`/admin/payments/${checkoutId}`)
  const form = readForm(page.body.slice(page.body.indexOf('<form class="refund"')))
  const byHand = await staff.post(`/admin/payments/${checkoutId}/refund`, [...form.fields.filter(([k]) => k !== 'tx'), ['tx', capture], ['amount', '2.00'], ['reference', refunded.id], ['note', 'refunded in PayPal']])
  t.equal(byHand.status, 409, 'the same refund entered by hand is refused')
  t.match(byHand.body, 'already recorded')
  const record = await stack.app.ledger.moneyRecord(checkoutId)
  t.same(record?.refunds.map(r => [r.amount, r.reference, r.by]), [[200, refunded.id, 'paypal']], 'one refund recorded, the webhook\'s')
  t.notOk((await stack.app.ledger.history(checkoutId))?.events.some(e => e.event === 'attention.resolved'), 'and the payment is not settled by it')
})

t.test('PayPal taking a posted payment back (PAYMENT.CAPTURE.REVERSED): recorded once, in front of staff with an alert, nothing changed in Alma', async t => {
  const { stack, checkoutId, capture } = await paidAndPosted(t)
  const almaBefore = stack.alma.allExternalPayments().length
  const reversal = await stack.pp.reverse(capture)
  const delivery = stack.pp.webhooks[stack.pp.webhooks.length - 1]
  t.equal(delivery.eventType, 'PAYMENT.CAPTURE.REVERSED')
  t.equal(delivery.status, 200, 'verified and acknowledged')
  const checkout = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(checkout?.state, 'NEEDS_ATTENTION', 'the posted payment is in front of staff')
  t.equal(checkout?.attentionKind, 'REVERSED')
  t.match(checkout?.attentionReason, 'PayPal took back 5.00 USD')
  t.match(checkout?.attentionReason, 'Nothing was changed in Alma', 'staff are told Alma was left alone')
  t.same((await stack.app.ledger.moneyRecord(checkoutId))?.refunds.map(r => [r.kind, r.tx, r.amount, r.reference, r.by]), [['reversal', capture, 500, reversal.id, 'paypal']], 'recorded against the checkout as money taken back')
  t.ok(stack.logLines().some(l => l.event === 'payment.needs_attention' && l.checkout === checkoutId && String(l.reason).includes('reversal or chargeback')), 'staff are alerted')
  t.equal(stack.alma.allExternalPayments().length, almaBefore, 'nothing reversed or paid in Alma')
  t.same(stack.alma.paymentsFor(capture), [{ feeId: '100001', amountCents: 500 }], 'Alma still shows the fee paid: the library decides')

  const again = await stack.pp.redeliver(delivery)
  t.equal(again.status, 200)
  t.equal((await stack.app.ledger.moneyRecord(checkoutId))?.refunds.length, 1, 'a redelivered event records nothing more')

  const staff = new Browser(stack).login('staff')
  const page = await staff.get(`/admin/payments/${checkoutId}`)
  t.match(page.body, 'Taken back by the payment provider (reversal or chargeback)', 'the payment page names the kind')
  t.match(page.body, `PayPal took back 5.00 of tx ${capture} (a reversal or chargeback`, 'and tells the story')
  t.match(page.body, 'Reversal (chargeback) by PayPal', 'the reversal is listed with the refunds, as what it is')
  t.notMatch(page.body, '<form class="retry"', 'nothing to post again')
  t.notMatch(page.body, '<form class="refund"', 'nothing left to refund: PayPal took it all back')
  const list = await staff.get('/admin?state=NEEDS_ATTENTION')
  t.match(list.body, 'PayPal took back 5.00 USD of capture', 'the staff list says why')
})

/** Staff mark the payment settled from its page, over HTTP, with this note. */
async function settleAsStaff (t: Test, staff: Browser, checkoutId: string, note: string): Promise<void> {
  const page = await staff.get(`/admin/payments/${checkoutId}`)
  const at = page.body.indexOf('<form class="resolve"')
  t.ok(at >= 0, 'the payment page offers to mark it settled')
  const answer = await staff.post(`/admin/payments/${checkoutId}/resolve`, [...readForm(page.body.slice(at)).fields, ['resolution', note]])
  t.equal(answer.status, 303, 'marked settled')
}

t.test('a chargeback after staff settled the case puts it back on their open list once, as REVERSED, booked once', async t => {
  const { stack, checkoutId, capture } = await paidAndPosted(t)
  await stack.pp.refund(capture, 200)
  const staff = new Browser(stack).login('staff')
  await settleAsStaff(t, staff, checkoutId, 'refunded 2.00 in PayPal, the rest stays paid')
  t.notMatch((await staff.get('/admin')).body, 'payment(s) need attention', 'nothing open for staff')

  const reversal = await stack.pp.reverse(capture)
  const delivery = stack.pp.webhooks[stack.pp.webhooks.length - 1]
  t.equal(delivery.status, 200)
  const checkout = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(checkout?.state, 'NEEDS_ATTENTION')
  t.equal(checkout?.resolvedAt, null, 'no longer settled')
  t.equal(checkout?.attentionKind, 'REVERSED', 'now a reversal case')
  t.match(checkout?.attentionReason, 'PayPal took back 3.00 USD')
  const reopened = (await stack.app.ledger.history(checkoutId))?.events.filter(e => e.event === 'attention.reopened') ?? []
  t.equal(reopened.length, 1, 'an audit event says it was reopened')
  t.match(JSON.parse(reopened[0]?.detail ?? '{}'), { kind: 'REVERSED', reason: /PayPal took back 3\.00 USD/, reference: reversal.id, settled: { by: 'staff', resolution: 'refunded 2.00 in PayPal, the rest stays paid', kind: 'REFUNDED' } }, 'saying why, and how it had been settled')
  t.ok(stack.logLines().some(l => l.event === 'paypal.reversed' && l.checkout === checkoutId && l.reopened === true), 'logged as reopened')
  t.ok(stack.logLines().some(l => l.event === 'payment.needs_attention' && l.checkout === checkoutId && String(l.reason).includes('reversal or chargeback')), 'staff are alerted')
  t.match((await staff.get('/admin')).body, '<strong>1</strong> payment(s) need attention', 'back on the open list')
  const page = await staff.get(`/admin/payments/${checkoutId}`)
  t.match(page.body, 'Taken back by the payment provider (reversal or chargeback)')
  t.match(page.body, '<form class="resolve"', 'to be settled again')
  t.match(page.body, 'back in front of staff after it was settled', 'the story tells it')

  await stack.pp.redeliver(delivery)
  t.equal((await stack.app.ledger.history(checkoutId))?.events.filter(e => e.event === 'attention.reopened').length, 1, 'a redelivery reopens nothing more')
  await settleAsStaff(t, staff, checkoutId, 'chargeback accepted, fees reinstated in Alma')
  const again = await stack.pp.redeliver(delivery)
  t.equal(again.status, 200)
  const after = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(after?.resolution, 'chargeback accepted, fees reinstated in Alma', 'a redelivery after settling again leaves it settled')
  t.equal((await stack.app.ledger.history(checkoutId))?.events.filter(e => e.event === 'attention.reopened').length, 1, 'reopened exactly once')
  t.same((await stack.app.ledger.moneyRecord(checkoutId))?.refunds.map(r => [r.kind, r.amount]), [['refund', 200], ['reversal', 300]], 'the reversal booked once')
  t.same(stack.alma.paymentsFor(capture), [{ feeId: '100001', amountCents: 500 }], 'nothing changed in Alma')
})

t.test('a chargeback without an amount after staff settled the case reopens it once, booking nothing', async t => {
  const { stack, checkoutId, capture } = await paidAndPosted(t)
  await stack.pp.refund(capture, 200)
  const staff = new Browser(stack).login('staff')
  await settleAsStaff(t, staff, checkoutId, 'refunded 2.00 in PayPal')
  await stack.pp.reverse(capture, { amountCents: null })
  const delivery = stack.pp.webhooks[stack.pp.webhooks.length - 1]
  const checkout = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(checkout?.resolvedAt, null, 'no longer settled')
  t.equal(checkout?.attentionKind, 'REVERSED')
  t.match(checkout?.attentionReason, 'PayPal did not say how much')
  await settleAsStaff(t, staff, checkoutId, 'found 3.00 in the Resolution Center')
  await stack.pp.redeliver(delivery)
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.resolution, 'found 3.00 in the Resolution Center', 'a redelivery leaves it settled')
  t.equal((await stack.app.ledger.history(checkoutId))?.events.filter(e => e.event === 'attention.reopened').length, 1, 'reopened exactly once')
  t.same((await stack.app.ledger.moneyRecord(checkoutId))?.refunds.map(r => r.kind), ['refund'], 'no amount guessed, nothing booked')
})

t.test('a reversal whose event names no checkout is found by its capture; one without an amount goes to staff without booking a guess', async t => {
  const { stack, checkoutId, capture } = await paidAndPosted(t)
  await stack.pp.reverse(capture, { amountCents: null, ids: false })
  const delivery = stack.pp.webhooks[stack.pp.webhooks.length - 1]
  t.equal(delivery.status, 200)
  t.notMatch(delivery.body, /"amount"|custom_id|invoice_id/, 'PayPal said neither the amount nor the checkout')
  const checkout = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(checkout?.state, 'NEEDS_ATTENTION', 'found by the capture it reverses, and in front of staff')
  t.equal(checkout?.attentionKind, 'REVERSED')
  t.match(checkout?.attentionReason, 'PayPal did not say how much')
  t.same((await stack.app.ledger.moneyRecord(checkoutId))?.refunds, [], 'no amount guessed, nothing booked')
  await stack.pp.redeliver(delivery)
  const events = (await stack.app.ledger.history(checkoutId))?.events.filter(e => e.event === 'paypal.reversal_amount_unknown') ?? []
  t.equal(events.length, 1, 'recorded once, however often PayPal delivers it')
  const page = await new Browser(stack).login('staff').get(`/admin/payments/${checkoutId}`)
  t.match(page.body, 'without saying how much', 'the payment page says the amount is not known')
  t.notMatch(page.body, '<form class="retry"', 'not postable again while staff find out')
})

t.test('a reversal of a capture no checkout knows is kept for staff, nothing else changes', async t => {
  const stack = await paypalStack(t)
  const delivery = await stack.pp.deliver('PAYMENT.CAPTURE.REVERSED', {
    id: '2GG279541U471931P',
    status: 'COMPLETED',
    amount: { currency_code: 'USD', value: '3.00' },
    links: [{ rel: 'up', method: 'GET', href: `${stack.pp.url}/v2/payments/captures/1AB23456CD789012E` }]
  })
  t.equal(delivery.status, 200)
  t.ok(stack.logLines().some(l => l.event === 'paypal.reversal_orphan' && l.tx === '1AB23456CD789012E'), 'logged for staff')
})

t.test('a PayPal payment\'s staff page, its story and the patron\'s receipt name PayPal, never CashNet', async t => {
  // PayPal captures 2.00 of the 5.00 due: a mismatch, so the page shows every staff action's wording
  const stack = await paypalStack(t, { paypal: { faults: { captureAmountDeltaCents: -300 } } })
  const alice = new Browser(stack).login('alice')
  const { approveUrl, orderId } = await startPaying(alice, ['100001'])
  const receipt = await alice.request(await decide(alice, approveUrl, 'approve'))
  const checkoutId = stack.pp.orders.get(orderId)?.customId as string
  const capture = stack.pp.captures[0].id
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.attentionKind, 'MISMATCH')
  t.equal(receipt.status, 200)
  t.notMatch(receipt.body, 'CashNet', 'the receipt on the way back from PayPal')
  t.notMatch((await alice.get(`/cashnet/return?ref=${checkoutId}`)).body, 'CashNet', 'the receipt from the history')
  t.notMatch((await alice.get('/history')).body, 'CashNet', 'the history')

  const staff = new Browser(stack).login('staff')
  const page = await staff.get(`/admin/payments/${checkoutId}`)
  t.notMatch(page.body, 'CashNet', 'the staff page')
  t.match(page.body, 'Kind of problem: PayPal reported other amounts than the checkout')
  t.match(page.body, `<dt>PayPal tx</dt><dd>${capture}</dd>`)
  t.match(page.body, '<th scope="col" class="amount">PayPal confirmed</th>')
  t.match(page.body, 'Post what PayPal confirmed')
  t.match(page.body, `PayPal tx <code>${capture}</code>: PayPal reported $2.00`, 'the refund form')
  t.match(page.body, 'PayPal refund reference (required)')
  t.match(page.body, 'PayPal reported other amounts than the checkout (2.00 confirmed for the 5.00 left)', 'why a retry is not offered')

  const form = readForm(page.body.slice(page.body.indexOf('<form class="refund"')))
  const badRefund = await staff.post(`/admin/payments/${checkoutId}/refund`, [...form.fields, ['amount', 'twelve'], ['reference', 'r'], ['note', 'n']])
  t.match(badRefund.body, /Give the PayPal tx, the amount refunded .* PayPal’s refund reference/, 'a refund form that says too little names PayPal')
  const refunded = await staff.post(`/admin/payments/${checkoutId}/refund`, [...form.fields, ['amount', '2.00'], ['reference', '5TY05013RG002845M'], ['note', 'refunded in PayPal']])
  t.equal(refunded.status, 303)
  const settled = await staff.get(`/admin/payments/${checkoutId}`)
  t.notMatch(settled.body, 'CashNet', 'the page after the refund, its story and its settlement')
  t.match(settled.body, 'Refunds staff made in PayPal and recorded here')
  t.match(settled.body, 'recorded (PayPal refund 5TY05013RG002845M): refunded in PayPal', 'the settlement names PayPal')
  t.match(settled.body, `of PayPal tx ${capture} (PayPal refund 5TY05013RG002845M)`, 'so does the story')

  // the campus's own pages: the payments list, its filters and search, the reports
  const list = await staff.get('/admin')
  t.notMatch(list.body, 'CashNet tx', 'the payments list')
  t.match(list.body, '<th scope="col">PayPal tx</th>')
  t.match(list.body, 'Search: patron username, name or Alma id, PayPal tx, checkout id')
  t.match(list.body, 'Declined by PayPal (0)', 'the state filter')
  const reports = await staff.get('/admin/reports')
  t.notMatch(reports.body, 'CashNet', 'the reports')
  t.match(reports.body, 'is money PayPal took that day')
})

t.test('bad inputs on the PayPal routes', async t => {
  const stack = await paypalStack(t)
  const alice = new Browser(stack).login('alice')
  t.equal((await alice.get('/paypal/return?token=' + 'x'.repeat(65))).status, 400, 'an over-long token')
  t.equal((await alice.get('/paypal/return?token=%3Cscript%3E')).status, 400, 'a token that is not an id')
  t.equal((await alice.get('/paypal/return?token=NOSUCHORDER1')).status, 503, 'an order PayPal does not know: calm page')
  t.equal((await alice.get('/paypal/cancel')).status, 400)
  const bob = new Browser(stack).login('bob')
  const { orderId } = await startPaying(alice, ['100001'])
  t.equal((await bob.get(`/paypal/return?token=${orderId}`)).status, 404, 'another patron\'s order is not theirs to capture')
  t.equal(stack.pp.count('POST', /\/capture$/), 0)
  const raw = await fetch(`${stack.serviceUrl}/paypal/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'not json' })
  t.equal(raw.status, 400)
})

t.test('an approval PayPal could not capture, whose fee the patron then paid in another checkout: neither PayPal\'s redelivered APPROVED nor the reopened return charges again', async t => {
  // 'both': the reopened return and the redelivered webhook at the same moment, each past its own state check
  for (const comesBack of ['webhook', 'return', 'both'] as const) {
    const stack = await paypalStack(t, { paypal: { webhookMode: 'held' } })
    const alice = new Browser(stack).login('alice')
    const first = await startPaying(alice, ['100001'])
    const back = await decide(alice, first.approveUrl, 'approve')
    const c1 = stack.pp.orders.get(first.orderId)?.customId as string
    stack.pp.faults.failNextCaptures = 1000 // PayPal's outage: the return's capture and the APPROVED webhook fail
    t.equal((await alice.request(back)).status, 503, `${comesBack}: the return could not capture`)
    const approved = stack.pp.held.find(d => d.eventType === 'CHECKOUT.ORDER.APPROVED' && d.body.includes(first.orderId))
    if (approved === undefined) throw new Error('no APPROVED webhook held')
    const [delivered] = await stack.pp.deliverHeld()
    t.equal(delivered.status, 503, `${comesBack}: the APPROVED webhook is answered 503`)
    stack.pp.faults.failNextCaptures = 0
    stack.pp.webhookMode = 'immediate'
    t.equal((await stack.app.ledger.getCheckout(c1))?.state, 'CREATED', `${comesBack}: the first checkout holds nothing`)

    // the patron pays the same fee in a second checkout, which is posted
    const second = await startPaying(alice, ['100001'])
    t.equal((await alice.request(await decide(alice, second.approveUrl, 'approve'))).status, 200)
    const c2 = stack.pp.orders.get(second.orderId)?.customId as string
    await until(async () => (await stack.app.ledger.getCheckout(c2))?.state === 'POSTED', 'the second checkout posted')
    t.equal(stack.pp.captures.length, 1, `${comesBack}: one capture, the second checkout's`)

    const page = async (): Promise<void> => {
      const reopened = await alice.request(back)
      calm(reopened)
    }
    const calm = (reopened: { status: number, body: string }): void => {
      t.equal(reopened.status, 200, `${comesBack}: the reopened return link answers a calm page`)
      t.match(reopened.body, 'Nothing was charged', `${comesBack}: which says nothing was charged`)
      t.match(reopened.body, 'paid in another payment', `${comesBack}: and why`)
    }
    if (comesBack === 'both') {
      const [reopened] = await Promise.all([alice.request(back), stack.pp.redeliver(approved)])
      calm(reopened)
    } else {
      if (comesBack === 'return') await page()
      await stack.pp.redeliver(approved)
      if (comesBack === 'webhook') await page()
    }
    await stack.app.worker.idle()

    t.equal(stack.pp.captures.filter(c => c.orderId === first.orderId).length, 0, `${comesBack}: the first order is never captured`)
    t.equal(stack.pp.captures.length, 1, `${comesBack}: the patron was charged once`)
    t.same(stack.alma.allExternalPayments().map(p => [p.feeId, p.amountCents]), [['100001', 500]], `${comesBack}: Alma records the fee paid once`)
    const after = await stack.app.ledger.history(c1)
    t.equal(after?.checkout.state, 'CANCELLED', `${comesBack}: the first checkout ends CANCELLED, nothing taken`)
    t.ok(after?.events.some(e => e.event === 'paypal.capture_superseded' && e.detail.includes(c2)), `${comesBack}: its audit event names the checkout that paid the fee`)
    t.notMatch((await alice.get('/')).body, 'PayPal is reviewing')
  }
})

t.test('an approval captured late while another checkout of the same fee was only started (nothing paid): it is captured as usual', async t => {
  const stack = await paypalStack(t, { paypal: { webhookMode: 'held' } })
  const alice = new Browser(stack).login('alice')
  const first = await startPaying(alice, ['100001'])
  const back = await decide(alice, first.approveUrl, 'approve')
  stack.pp.faults.failNextCaptures = 1000
  t.equal((await alice.request(back)).status, 503)
  stack.pp.faults.failNextCaptures = 0
  await startPaying(alice, ['100001']) // started, never approved
  const receipt = await alice.request(back)
  t.equal(receipt.status, 200)
  t.match(receipt.body, 'Payment received')
  const c1 = stack.pp.orders.get(first.orderId)?.customId as string
  await until(async () => (await stack.app.ledger.getCheckout(c1))?.state === 'POSTED', 'posted')
  t.equal(stack.pp.captures.length, 1)
})
