// A PayPal capture held for review (status PENDING: an eCheck, a payment PayPal reviews): PayPal has the money but
// has not decided. Until its COMPLETED or DENIED webhook, the checkout stays CREATED but counts as a payment in
// progress: its fees are not sold again (fines page and POST /checkout), the expiry job leaves it alone, and the
// return page tells the patron that PayPal is reviewing it. Over real HTTP with the PayPal and Alma stand-ins.

import Database from 'better-sqlite3'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Browser, build, readForm, type TestStack, until } from './helper.ts'
import { tempDir } from './jobs/cli.ts'

async function pendingStack (t: Test, env: Record<string, string> = {}): Promise<TestStack & { pp: NonNullable<TestStack['paypal']> }> {
  const stack = await build(t, { env: { PAYMENT_PROVIDER: 'paypal', ...env }, paypal: { faults: { captureStatus: 'PENDING' } } })
  if (stack.paypal === null) throw new Error('no PayPal stand-in')
  return { ...stack, pp: stack.paypal }
}

/** The patron pays the fees on PayPal and comes back: the capture is held for review. */
async function payPending (stack: TestStack & { pp: NonNullable<TestStack['paypal']> }, browser: Browser, feeIds: string[]): Promise<{ checkoutId: string, captureId: string, returned: Awaited<ReturnType<Browser['request']>> }> {
  const fines = await browser.get('/')
  const pay = readForm(fines.body, 'pay-form')
  const answer = await browser.post('/checkout', [...pay.fields, ...feeIds.map((id): [string, string] => ['fee', id])])
  if (answer.status !== 303) throw new Error(`checkout answered ${answer.status}: ${answer.body.slice(0, 300)}`)
  const approveUrl = String(answer.headers.location)
  const orderId = new URL(approveUrl).searchParams.get('token') ?? ''
  const page = await browser.request(approveUrl)
  const form = readForm(page.body)
  const decided = await browser.request(new URL(form.action, approveUrl).toString(), { method: 'POST', body: new URLSearchParams([...form.fields, ['action', 'approve']]).toString() })
  const returned = await browser.request(String(decided.headers.location))
  const checkoutId = stack.pp.orders.get(orderId)?.customId as string
  const capture = stack.pp.captures.find(c => c.orderId === orderId)
  if (capture === undefined) throw new Error('no capture at PayPal')
  return { checkoutId, captureId: capture.id, returned }
}

/** PayPal's review completes (with its webhook): the checkout is posted, fees 100001 and 100003 once each. */
async function completedAndPostedOnce (t: Test, stack: TestStack & { pp: NonNullable<TestStack['paypal']> }, checkoutId: string, captureId: string, message: string): Promise<void> {
  await stack.pp.settlePending(captureId, 'COMPLETED')
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'posted after COMPLETED')
  await stack.app.worker.idle()
  t.same(stack.alma.paymentsFor(captureId).sort((a, b) => a.feeId.localeCompare(b.feeId)), [
    { feeId: '100001', amountCents: 500 },
    { feeId: '100003', amountCents: 1225 }
  ], message)
}

t.test('a capture PayPal holds for review: the return page says so, the fees are not payable again, expiry leaves it, COMPLETED then posts it once', async t => {
  const stack = await pendingStack(t)
  const alice = new Browser(stack).login('alice')
  const { checkoutId, captureId, returned } = await payPending(stack, alice, ['100001', '100003'])
  t.equal(stack.pp.captures[0].status, 'PENDING', 'PayPal holds the capture')
  t.equal(returned.status, 200)
  t.match(returned.body, 'PayPal is reviewing this payment', 'the return page says PayPal is reviewing it')
  t.match(returned.body, 'Do not pay these fees again', 'and not to pay again')
  t.notMatch(returned.body, 'If you left PayPal without paying, nothing was charged', 'not the "waiting" wording')
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'CREATED', 'no new state: still CREATED')

  const fines = await alice.get('/')
  const pay = readForm(fines.body, 'pay-form')
  t.same(pay.checkboxes, ['100002'], 'only the fee not under review can be ticked')
  t.equal((fines.body.match(/<span class="badge">PayPal is reviewing the payment<\/span>/g) ?? []).length, 2, 'both fees say PayPal is reviewing their payment')
  t.match(fines.body, /PayPal is reviewing a payment\.<\/strong> Your payment of \$17\.25/, 'the page says calmly that PayPal is reviewing it')
  t.match(fines.body, 'You owe <strong>$45.50</strong>', 'the fees under review are not owed again')
  t.match(fines.body, `href="./cashnet/return?ref=${checkoutId}"`, 'with the way to its receipt')
  const linked = await alice.get(`/cashnet/return?ref=${checkoutId}`)
  t.match(linked.body, 'PayPal is reviewing this payment', 'which names PayPal and says it is reviewing the payment')

  const checkoutsBefore = (await stack.app.ledger.listCheckouts({})).total
  const ordersBefore = stack.pp.orders.size
  for (const chosen of [['100001'], ['100002', '100003']]) {
    const forged = await alice.post('/checkout', [...pay.fields, ...chosen.map((fee): [string, string] => ['fee', fee])])
    t.equal(forged.status, 409, `a form naming ${chosen.join(' and ')} is refused`)
    t.match(forged.body, 'PayPal is reviewing a payment you made for one of the selected fees')
  }
  t.equal((await stack.app.ledger.listCheckouts({})).total, checkoutsBefore, 'no new checkout')
  t.equal(stack.pp.orders.size, ordersBefore, 'no new PayPal order')
  t.ok(stack.logLines().some(l => l.event === 'checkout.refused' && l.reason === 'in-progress'), 'refused as in progress')

  const expired = await stack.app.ledger.expireCreated(new Date(Date.now() + 48 * 3600_000))
  t.notOk(expired.includes(checkoutId), 'the expiry job leaves a checkout under review alone')
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'CREATED')

  await completedAndPostedOnce(t, stack, checkoutId, captureId, 'Alma records each fee once with the capture id')
  await stack.pp.redeliver(stack.pp.webhooks[stack.pp.webhooks.length - 1])
  await stack.app.worker.idle()
  t.equal(stack.alma.allExternalPayments().length, 2, 'the COMPLETED webhook again posts nothing more')
  const after = await alice.get('/')
  t.notMatch(after.body, 'PayPal is reviewing', 'nothing under review any more')
})

t.test('a capture PayPal holds for review and then denies: declined, the fees can be paid again', async t => {
  const stack = await pendingStack(t)
  const alice = new Browser(stack).login('alice')
  const { checkoutId, captureId } = await payPending(stack, alice, ['100001'])
  t.same(readForm((await alice.get('/')).body, 'pay-form').checkboxes, ['100002', '100003'], 'under review: not payable')
  await stack.pp.settlePending(captureId, 'DENIED')
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'DECLINED', 'DENIED declines it')
  const fines = await alice.get('/')
  t.notMatch(fines.body, 'PayPal is reviewing')
  t.same(readForm(fines.body, 'pay-form').checkboxes, ['100001', '100002', '100003'], 'the fee can be paid again')
  const receipt = await alice.get(`/paypal/return?ref=${checkoutId}`)
  t.match(receipt.body, 'Your payment was declined')
  t.equal(stack.alma.allExternalPayments().length, 0, 'nothing posted')
})

t.test('a PENDING webhook that arrives after the capture completed changes nothing', async t => {
  const stack = await pendingStack(t)
  const alice = new Browser(stack).login('alice')
  const { checkoutId, captureId } = await payPending(stack, alice, ['100001'])
  const pending = stack.pp.webhooks.find(w => w.eventType === 'PAYMENT.CAPTURE.PENDING')
  await stack.pp.settlePending(captureId, 'COMPLETED')
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'posted')
  if (pending !== undefined) await stack.pp.redeliver(pending)
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'POSTED', 'still POSTED')
  t.same(stack.alma.paymentsFor(captureId), [{ feeId: '100001', amountCents: 500 }])
})

t.test('a review whose COMPLETED webhook never arrives: after an hour the worker asks PayPal for the capture, and posts it once', async t => {
  const stack = await pendingStack(t)
  const alice = new Browser(stack).login('alice')
  const { checkoutId, captureId } = await payPending(stack, alice, ['100001'])
  await stack.pp.settlePending(captureId, 'COMPLETED', { webhook: false })
  await stack.app.worker.sweep(new Date())
  t.equal(stack.pp.count('GET', `/v2/payments/captures/${captureId}`), 0, 'a fresh review is left to its webhook')
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'CREATED')

  await stack.app.worker.sweep(new Date(Date.now() + 2 * 3600_000))
  t.equal(stack.pp.count('GET', `/v2/payments/captures/${captureId}`), 1, 'PayPal is asked for the capture')
  await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'posted after PayPal said COMPLETED')
  await stack.app.worker.idle()
  t.same(stack.alma.paymentsFor(captureId), [{ feeId: '100001', amountCents: 500 }], 'Alma records the fee once with the capture id')
  t.ok(stack.logLines().some(l => l.event === 'paypal.review_recovered' && l.checkout === checkoutId && l.status === 'COMPLETED'))

  await stack.app.worker.sweep(new Date(Date.now() + 4 * 3600_000))
  t.equal(stack.pp.count('GET', `/v2/payments/captures/${captureId}`), 1, 'a settled review is not asked about again')
  t.notMatch((await alice.get('/')).body, 'PayPal is reviewing')
})

t.test('a review completed and then refunded in PayPal, with both webhooks lost: the sweep sends it to staff and posts nothing', async t => {
  for (const [status, refundCents] of [['REFUNDED', undefined], ['PARTIALLY_REFUNDED', 200]] as const) {
    const stack = await pendingStack(t)
    const alice = new Browser(stack).login('alice')
    const { checkoutId, captureId } = await payPending(stack, alice, ['100001'])
    await stack.pp.settlePending(captureId, 'COMPLETED', { webhook: false })
    stack.pp.webhookMode = 'off'
    await stack.pp.refund(captureId, refundCents)
    await stack.app.worker.sweep(new Date(Date.now() + 2 * 3600_000))
    t.equal(stack.pp.count('GET', `/v2/payments/captures/${captureId}`), 1, `${status}: PayPal is asked for the capture`)
    await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'NEEDS_ATTENTION', `${status}: handed to staff`)
    await stack.app.worker.idle()
    const after = await stack.app.ledger.getCheckout(checkoutId) as NonNullable<Awaited<ReturnType<typeof stack.app.ledger.getCheckout>>>
    t.equal(after.attentionKind, 'MISMATCH')
    t.match(after.attentionReason, `is now ${status}`, 'the reason says PayPal gave money back')
    t.equal(after.tx, captureId, 'the money taken is recorded against the checkout')
    t.same(stack.alma.paymentsFor(captureId), [], `${status}: nothing is posted to Alma for money PayPal gave back`)

    // staff look at it: "post what the provider confirmed" must not post money PayPal gave back
    const staff = new Browser(stack).login('staff')
    const page = await staff.get(`/admin/payments/${checkoutId}`)
    t.equal(page.status, 200)
    t.notMatch(page.body, '<form class="post-confirmed"', `${status}: posting what PayPal confirmed is not offered`)
    t.match(page.body, /data-action="post-confirmed"><strong>[^<]+<\/strong>: <span class="why-not">PayPal confirmed nothing[^<]*PayPal refunded it/, `${status}: the page says why: PayPal refunded the capture`)
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? ''
    const forged = await staff.post(`/admin/payments/${checkoutId}/post-confirmed`, [['_csrf', csrf]])
    t.equal(forged.status, 409, `${status}: a forged post-confirmed is refused`)
    await stack.app.worker.idle()
    t.same(stack.alma.paymentsFor(captureId), [], `${status}: Alma records no payment after the staff action`)
    t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'NEEDS_ATTENTION', `${status}: still for staff`)
  }
})

t.test('a review whose DENIED webhook never arrives: the worker asks PayPal, declines it, and the fees can be paid again', async t => {
  const stack = await pendingStack(t)
  const alice = new Browser(stack).login('alice')
  const { checkoutId, captureId } = await payPending(stack, alice, ['100001'])
  const later = new Date(Date.now() + 2 * 3600_000)
  await stack.app.worker.sweep(later)
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'CREATED', 'PayPal still reviews it: the fees stay held')
  t.ok(stack.logLines().some(l => l.event === 'paypal.review_still_pending' && l.checkout === checkoutId))
  await stack.app.worker.sweep(new Date(later.getTime() + 60_000))
  t.equal(stack.pp.count('GET', `/v2/payments/captures/${captureId}`), 1, 'not asked again within a quarter of an hour')

  await stack.pp.settlePending(captureId, 'DENIED', { webhook: false })
  await stack.app.worker.sweep(new Date(later.getTime() + 20 * 60_000))
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.state, 'DECLINED', 'declined as the DENIED webhook would have')
  t.same(readForm((await alice.get('/')).body, 'pay-form').checkboxes, ['100001', '100002', '100003'], 'the fee can be paid again')
  t.equal(stack.alma.allExternalPayments().length, 0, 'nothing posted')
})

t.test('a review an instance of an older version recorded (its audit event only, no mark): the fees stay unpayable, it never expires, the sweep marks it, COMPLETED posts it once', async t => {
  // During a rolling upgrade across the review mark (SQLite migration 12, PostgreSQL 8), the instance that got the
  // PENDING may still run the code from before: it writes the audit event paypal.capture_pending and nothing else.
  const path = join(tempDir(t), 'ledger.sqlite')
  const stack = await pendingStack(t, { DATABASE_PATH: path })
  const alice = new Browser(stack).login('alice')
  const { checkoutId, captureId } = await payPending(stack, alice, ['100001', '100003'])
  const db = new Database(path)
  t.teardown(() => { db.close() })
  db.prepare('UPDATE checkouts SET review_tx = NULL WHERE id = ?').run(checkoutId) // what the older instance leaves
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.reviewTx, null, 'only the audit event says PayPal reviews it')

  const fines = await alice.get('/')
  const pay = readForm(fines.body, 'pay-form')
  t.same(pay.checkboxes, ['100002'], 'at once, before any sweep: the fees under review cannot be ticked')
  t.equal((fines.body.match(/<span class="badge">PayPal is reviewing the payment<\/span>/g) ?? []).length, 2, 'both say PayPal is reviewing their payment')
  const forged = await alice.post('/checkout', [...pay.fields, ['fee', '100001']])
  t.equal(forged.status, 409, 'a form naming one of them is refused')
  t.equal((await stack.app.ledger.getCheckout(checkoutId))?.reviewTx, null, 'the page held them by the event, not by a mark')

  const later = new Date(Date.now() + 48 * 3600_000)
  t.notOk((await stack.app.ledger.expireCreated(later)).includes(checkoutId), 'the expiry leaves it alone, unmarked')
  await stack.app.worker.sweep(later)
  const swept = await stack.app.ledger.getCheckout(checkoutId)
  t.equal(swept?.state, 'CREATED', 'two days on, the sweep has not expired it')
  t.equal(swept?.reviewTx, captureId, 'it marked it with the capture PayPal reviews')
  t.ok(stack.logLines().some(l => l.event === 'checkout.review_marked' && l.checkout === checkoutId), 'and said so')
  t.ok(stack.logLines().some(l => l.event === 'paypal.review_still_pending' && l.checkout === checkoutId), 'then asked PayPal about it as about any review')
  t.same(readForm((await alice.get('/')).body, 'pay-form').checkboxes, ['100002'], 'still not payable')

  await completedAndPostedOnce(t, stack, checkoutId, captureId, 'Alma records each fee once')
  t.equal(stack.pp.captures.length, 1, 'the patron was charged once')
})
