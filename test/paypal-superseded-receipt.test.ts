// The receipt of a PayPal checkout that was not captured because its fees were paid in a newer checkout: over real
// HTTP (service, Alma sandbox, PayPal stand-in, EZproxy stand-in). The page tells what happened: the patron did not
// cancel it, nothing was taken in it, and which checkout replaced it and whether that one was paid.

import t, { type Test } from 'tap'
import { Browser, build, type TestStack, until } from './helper.ts'
import { approve, startPaying } from './support/paypal-flow.ts'

/** Alice approves fee 100001 on PayPal during its outage: the approval is not captured, its return answers 503. */
async function approvedDuringOutage (t: Test): Promise<{ stack: TestStack, pp: NonNullable<TestStack['paypal']>, alice: Browser, first: Awaited<ReturnType<typeof startPaying>>, back: string }> {
  const stack = await build(t, { env: { PAYMENT_PROVIDER: 'paypal' }, paypal: { webhookMode: 'held' } })
  const pp = stack.paypal
  if (pp === null) throw new Error('no PayPal stand-in')
  const alice = new Browser(stack).login('alice')
  const first = await startPaying(alice, ['100001'])
  const back = await approve(alice, first.approveUrl)
  pp.faults.failNextCaptures = 1000 // PayPal's outage: the first approval is not captured
  t.equal((await alice.request(back)).status, 503)
  return { stack, pp, alice, first, back }
}

t.test('a superseded PayPal checkout\'s receipt names the checkout that paid its fees, says it was paid, and never that the patron cancelled', async t => {
  const { stack, pp, alice, first, back } = await approvedDuringOutage(t)
  const c1 = pp.orders.get(first.orderId)?.customId as string
  pp.faults.failNextCaptures = 0
  pp.webhookMode = 'immediate'

  const second = await startPaying(alice, ['100001'])
  await alice.request(await approve(alice, second.approveUrl))
  const c2 = pp.orders.get(second.orderId)?.customId as string
  await until(async () => (await stack.app.ledger.getCheckout(c2))?.state === 'POSTED', 'the second checkout posted')

  const reopened = await alice.request(back) // the first approval's return link: superseded now, not captured
  t.equal(reopened.status, 200)
  t.match(reopened.body, c2, 'the return page names the checkout that replaced this one')
  t.match(reopened.body, 'paid and recorded', 'and says that one was paid and recorded')
  t.match(reopened.body, 'Nothing was charged')

  const receipt = await alice.get(`/paypal/return?ref=${c1}`) // the receipt's own link, and the history's
  t.equal(receipt.status, 200)
  t.notMatch(receipt.body, 'You cancelled', 'the patron did not cancel it')
  t.match(receipt.body, c2, 'the receipt names the checkout that replaced it')
  t.match(receipt.body, 'paid and recorded', 'and that it was paid and recorded')
  t.match(receipt.body, 'Nothing was charged', 'and that nothing was taken in this one')
  t.equal(pp.captures.filter(c => c.orderId === first.orderId).length, 0, 'the first order is never captured')
  t.same(stack.alma.allExternalPayments().map(p => [p.feeId, p.amountCents]), [['100001', 500]], 'Alma records the fee paid once')
})

t.test('a superseded PayPal checkout whose replacement PayPal is still reviewing: its page never says the fees are paid', async t => {
  const { stack, pp, alice, first, back } = await approvedDuringOutage(t)
  pp.faults.failNextCaptures = 0
  pp.faults.captureStatus = 'PENDING' // the second payment is held by PayPal for review
  const second = await startPaying(alice, ['100001'])
  await alice.request(await approve(alice, second.approveUrl))
  const c2 = pp.orders.get(second.orderId)?.customId as string
  t.not((await stack.app.ledger.getCheckout(c2))?.reviewTx ?? null, null, 'the second checkout is under PayPal\'s review')

  const reopened = await alice.request(back)
  t.equal(reopened.status, 200)
  t.notMatch(reopened.body, /already paid|were paid in another payment/, 'not told the fees are paid')
  t.match(reopened.body, c2, 'the page names the checkout that replaced this one')
  t.match(reopened.body, 'PayPal is still reviewing', 'and says PayPal is still reviewing it')
  t.match(reopened.body, 'Nothing was charged')
  t.equal(pp.captures.filter(c => c.orderId === first.orderId).length, 0, 'the first order is never captured')
  t.same(stack.alma.allExternalPayments(), [], 'nothing recorded in Alma yet')
})
