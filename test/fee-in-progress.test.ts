// A fee whose payment CashNet took but Alma has not yet recorded is never sold again: the fines page marks it,
// and POST /checkout refuses it server-side, so no second checkout and no second trip to CashNet. Fees in a
// checkout that took no money (CREATED, DECLINED, CANCELLED, EXPIRED) stay payable. Over real HTTP.

import t from 'tap'
import { Browser, build, checkoutIdFrom, readForm, until } from './helper.ts'

t.test('while Alma is slow to record a payment, its fees show "being recorded" and cannot be bought again', async t => {
  // Alma holds every pay call until the test releases it: the checkout stays PAID for as long as needed
  const stack = await build(t, { env: { ALMA_TIMEOUT_MS: '30000' } })
  t.teardown(() => { stack.alma.releasePayments() })
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout(['100001', '100003'])
  const id = checkoutIdFrom(fields)
  stack.alma.holdPayments()
  await alice.payOnCashnet(action, fields)
  await until(() => stack.alma.heldPayments > 0, 'the worker to be posting, held at Alma')
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'PAID', 'money taken, not yet recorded')

  const fines = await alice.get('/')
  t.equal(fines.status, 200)
  const pay = readForm(fines.body, 'pay-form')
  t.same(pay.checkboxes, ['100002'], 'only the fee not being paid can be ticked')
  t.equal((fines.body.match(/<span class="badge">Payment received, being recorded<\/span>/g) ?? []).length, 2, 'both paid fees say so')
  t.match(fines.body, /Payment received, being recorded\.<\/strong> We have your payment of \$17\.25/, 'the page says a payment is in progress')
  t.match(fines.body, `href="./cashnet/return?ref=${id}"`, 'with the way to its receipt')
  t.match(fines.body, 'You owe <strong>$45.50</strong>', 'what is being recorded is not owed again')

  const checkoutsBefore = (await stack.app.ledger.listCheckouts({})).total
  const cashnetBefore = stack.cashnet.requested
  for (const chosen of [['100001'], ['100002', '100003']]) {
    const forged = await alice.post('/checkout', [...pay.fields, ...chosen.map((fee): [string, string] => ['fee', fee])])
    t.equal(forged.status, 409, `a forged form with ${chosen.join(' and ')} is refused`)
    t.match(forged.body, 'already received a payment for one of the selected fees')
    t.match(forged.body, 'You do not need to pay it again')
    t.notMatch(forged.body, 'cashnet-form', 'no hand-off to CashNet')
    t.notMatch(forged.body, stack.cashnet.checkoutUrl)
  }
  t.equal((await stack.app.ledger.listCheckouts({})).total, checkoutsBefore, 'no new checkout')
  t.equal(stack.cashnet.requested, cashnetBefore, 'nothing reached the CashNet sandbox')
  t.ok(stack.logLines().some(l => l.event === 'checkout.refused' && l.reason === 'in-progress'), 'the refusal is logged with its reason')

  const other = await alice.post('/checkout', [...pay.fields, ['fee', '100002']])
  t.equal(other.status, 200, 'the other fee can still be paid')
  t.match(other.body, 'cashnet-form')

  stack.alma.releasePayments()
  await until(async () => (await stack.app.ledger.getCheckout(id))?.state === 'POSTED', 'the posting once Alma answers')
  const tx = (await stack.app.ledger.getCheckout(id))?.tx as string
  t.same(stack.alma.paymentsFor(tx).map(p => `${p.feeId}:${p.amountCents}`).sort(), ['100001:500', '100003:1225'], 'Alma: each fee paid once')
  const after = await alice.get('/')
  t.notMatch(after.body, 'being recorded', 'once recorded, nothing is in progress')
  t.same(readForm(after.body, 'pay-form').checkboxes, ['100002'])
})

t.test('a line already posted frees its fee: what Alma still shows open on it can be paid, the line still waiting cannot', async t => {
  const stack = await build(t, { env: { ALMA_TIMEOUT_MS: '30000' } })
  t.teardown(() => { stack.alma.releasePayments() })
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout(['100001', '100003'])
  const id = checkoutIdFrom(fields)
  stack.alma.fee('100001').balanceCents += 100 // the overdue fine grew by $1.00 after the checkout was made
  let pays = 0
  stack.alma.beforeCall = (call) => {
    if (call.method === 'POST' && ++pays === 2) stack.alma.holdPayments() // the first line goes through, the second waits
    return undefined
  }
  await alice.payOnCashnet(action, fields)
  await until(() => stack.alma.heldPayments > 0, 'the second line to be held at Alma')
  const checkout = await stack.app.ledger.getCheckout(id)
  t.equal(checkout?.state, 'PAID')
  t.same(checkout?.lines.map(l => l.postedAt !== null), [true, false], 'line 1 posted, line 2 not yet')

  const fines = await alice.get('/')
  t.same(readForm(fines.body, 'pay-form').checkboxes, ['100001', '100002'], 'the posted fee (its new $1.00) and the untouched fee can be ticked')
  t.match(fines.body, 'data-cents="100"', 'for what Alma still shows open')
  const again = await alice.post('/checkout', [...readForm(fines.body, 'pay-form').fields, ['fee', '100001']])
  t.equal(again.status, 200, 'the rest of the posted fee can be paid')
  const refused = await alice.post('/checkout', [...readForm(fines.body, 'pay-form').fields, ['fee', '100003']])
  t.equal(refused.status, 409, 'the fee still being recorded cannot')

  stack.alma.releasePayments()
  await until(async () => (await stack.app.ledger.getCheckout(id))?.state === 'POSTED', 'the posting to finish')
})

t.test('a payment waiting for staff: its fees say staff are checking, are refused, and are payable again once settled', async t => {
  const stack = await build(t)
  const carol = new Browser(stack).login('carol')
  const { fields, action } = await carol.checkout()
  const id = checkoutIdFrom(fields)
  stack.alma.beforeCall = (call) => {
    if (call.method === 'POST') {
      stack.alma.faults.failNext = 1
      stack.alma.faults.failStatus = 400
    }
    return undefined
  }
  await carol.payOnCashnet(action, fields)
  await until(async () => (await stack.app.ledger.getCheckout(id))?.state === 'NEEDS_ATTENTION', 'the Alma business error to reach staff')
  stack.alma.beforeCall = undefined
  t.same(stack.alma.paymentsFor((await stack.app.ledger.getCheckout(id))?.tx as string), [], 'nothing recorded in Alma')

  const fines = await carol.get('/')
  const pay = readForm(fines.body, 'pay-form')
  t.same(pay.checkboxes, [], 'the fee cannot be ticked')
  t.match(fines.body, 'Library staff are checking the payment for this fee: please contact the library')
  t.match(fines.body, /Library staff are checking a payment\.<\/strong> Your payment of \$2\.50/)
  t.match(fines.body, 'please contact the library')
  t.notMatch(fines.body, 'id="pay-button"', 'no pay button when nothing can be paid')
  t.notMatch(fines.body, 'None of these fees can be paid online', 'the fee is not called unpayable: it is being looked at')
  const cashnetBefore = stack.cashnet.requested
  const forged = await carol.post('/checkout', [...pay.fields, ['fee', '300001']])
  t.equal(forged.status, 409)
  t.match(forged.body, 'Library staff are checking a payment you made for one of the selected fees')
  t.match(forged.body, 'Please contact the library')
  t.notMatch(forged.body, 'cashnet-form')
  t.equal(stack.cashnet.requested, cashnetBefore, 'nothing reached the CashNet sandbox')
  t.equal((await stack.app.ledger.listCheckouts({})).total, 1, 'no new checkout')

  t.ok((await stack.app.ledger.resolveAttention(id, 'staff', 'refunded in CashNet', () => null)).done, 'staff settle it (refund)')
  const settled = await carol.get('/')
  t.same(readForm(settled.body, 'pay-form').checkboxes, ['300001'], 'a settled payment holds the fee no longer')
  t.notMatch(settled.body, 'Library staff are checking')
  const again = await carol.checkout()
  t.equal(again.handoff.status, 200, 'and it can be paid again')
})

t.test('fees in a checkout that took no money stay payable: created, declined, cancelled, expired', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const all = ['100001', '100002', '100003']
  const created = await alice.checkout()
  t.equal(created.handoff.status, 200)
  t.equal((await stack.app.ledger.getCheckout(checkoutIdFrom(created.fields)))?.state, 'CREATED', 'the patron left the CashNet page')
  const fines = await alice.get('/')
  t.same(readForm(fines.body, 'pay-form').checkboxes, all, 'still payable')
  t.notMatch(fines.body, 'being recorded')
  t.match(fines.body, 'You owe <strong>$62.75</strong>')

  const declined = await alice.checkout()
  await alice.payOnCashnet(declined.action, declined.fields, 'decline')
  const cancelled = await alice.checkout()
  await alice.payOnCashnet(cancelled.action, cancelled.fields, 'cancel')
  t.same(await Promise.all([declined, cancelled].map(async c => (await stack.app.ledger.getCheckout(checkoutIdFrom(c.fields)))?.state)), ['DECLINED', 'CANCELLED'])
  t.ok((await stack.app.ledger.expireCreated(new Date(Date.now() + 60_000))).includes(checkoutIdFrom(created.fields)), 'the first one expires')
  const later = await alice.get('/')
  t.same(readForm(later.body, 'pay-form').checkboxes, all, 'still payable after a decline, a cancel and an expiry')
  const last = await alice.checkout()
  t.equal(last.handoff.status, 200, 'and a new checkout goes to CashNet')
  t.match(last.handoff.body, 'cashnet-form')
})
