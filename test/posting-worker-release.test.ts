// A posting lease this process left held while the ledger was out of reach (a PostgreSQL restart in CI showed both
// ways: a release that failed, and a claim committed whose answer was lost with the connection) used to be waited
// out whole (POSTING_LEASE_SECONDS) before anyone posted the payment: the worker took its own lease for another
// process's. It now releases such a lease at its next poll that reaches the ledger, and the payment is posted at once.

import t from 'tap'
import { Browser, build, checkoutIdFrom, type TestStack, until } from './helper.ts'

/** alice pays fee 100001; the first posting of it fails at Alma (a 503: retried later). Answers the checkout id. */
async function paidFirstPostingFails (stack: TestStack): Promise<string> {
  const browser = new Browser(stack).login('alice')
  const { fields, action } = await browser.checkout(['100001'])
  stack.alma.faults.failNext = 1
  stack.alma.faults.failStatus = 503
  await browser.payOnCashnet(action, fields)
  return checkoutIdFrom(fields)
}

t.test('a lease left held by a failed release is released at the next poll: posted long before the lease would expire', async t => {
  // a lease of ten minutes: only the release can make the payment due within the wait below
  const stack = await build(t, { env: { POSTING_LEASE_SECONDS: '600' } })
  const ledger = stack.app.ledger
  // the posting's own release fails, and so does the first poll's release of what it left
  const release = ledger.releasePosting.bind(ledger)
  const releaseHeldBy = ledger.releaseHeldBy.bind(ledger)
  const refused: string[] = []
  let released = 0
  const outOfReach = (what: string): never => {
    refused.push(what)
    throw new Error('the ledger cannot take writes just now (PostgreSQL: Connection terminated unexpectedly); nothing was written')
  }
  ledger.releasePosting = async lease => {
    if (refused.length === 0) outOfReach('releasePosting')
    await release(lease)
  }
  ledger.releaseHeldBy = async (checkoutId, holder) => {
    if (refused.length === 1) outOfReach('releaseHeldBy')
    const done = await releaseHeldBy(checkoutId, holder)
    if (done) released++
    return done
  }
  // the first posting fails at Alma (retried later); its lease cannot be released, nor at the first poll after
  const id = await paidFirstPostingFails(stack)

  await until(async () => (await ledger.getCheckout(id))?.state === 'POSTED', 'the payment posted after its lease was released', 20_000)
  const tx = (await ledger.getCheckout(id))?.tx as string
  t.same(stack.alma.paymentsFor(tx), [{ feeId: '100001', amountCents: 500 }], 'Alma shows the fee paid once')
  t.same(refused, ['releasePosting', 'releaseHeldBy'], 'the release failed when the posting stopped, and at the first poll after')
  t.equal(released, 1, 'then the lease left held was released')

  const events = stack.logLines().filter(l => l.checkout === id).map(l => l.event as string)
  const failedAt = events.indexOf('posting.release_failed')
  const releasedAt = events.indexOf('posting.lease_released')
  t.ok(failedAt >= 0, 'the failed release is logged')
  t.ok(releasedAt > failedAt, 'then the release at a later poll')
  t.ok(events.indexOf('payment.posted') > releasedAt, 'then the payment posted')
  t.equal(events.filter(e => e === 'posting.lease_released').length, 1, 'released once')
  t.match(stack.logLines().find(l => l.event === 'worker.error' && l.err?.message?.includes('Connection terminated'))?.msg ?? '', /could not read the ledger/, 'the poll that could not release it said so')
})

t.test('a claim committed whose answer was lost: the lease this process does not know of is released at the next poll', async t => {
  const stack = await build(t, { env: { POSTING_LEASE_SECONDS: '600' } })
  const ledger = stack.app.ledger
  const claim = ledger.claimPosting.bind(ledger)
  let lost = 0
  ledger.claimPosting = async (checkoutId, holder, leaseMs) => {
    const lease = await claim(checkoutId, holder, leaseMs)
    if (lost === 0 && lease !== null) {
      lost++
      throw new Error('the ledger cannot take writes just now (PostgreSQL: Connection terminated unexpectedly); nothing was written')
    }
    return lease
  }
  const browser = new Browser(stack).login('alice')
  const { fields, action } = await browser.checkout(['100001', '100003'])
  await browser.payOnCashnet(action, fields)
  const id = checkoutIdFrom(fields)

  await until(async () => (await ledger.getCheckout(id))?.state === 'POSTED', 'the payment posted after the unknown lease was released', 20_000)
  t.equal(lost, 1, 'the first claim was committed and its answer lost')
  const tx = (await ledger.getCheckout(id))?.tx as string
  t.same(stack.alma.paymentsFor(tx).map(p => p.feeId).sort(), ['100001', '100003'], 'Alma shows each fee paid once')
  const events = stack.logLines().filter(l => l.checkout === id).map(l => l.event as string)
  t.ok(events.indexOf('worker.error') >= 0, 'the failed claim is logged')
  t.ok(events.indexOf('posting.lease_released') > events.indexOf('worker.error'), 'then its lease released')
  t.ok(events.indexOf('payment.posted') > events.indexOf('posting.lease_released'), 'then the payment posted')
})

t.test('while a lease left held is being released, no posting of that checkout starts in this process', async t => {
  const stack = await build(t, { env: { POSTING_LEASE_SECONDS: '600' } })
  const ledger = stack.app.ledger
  const worker = stack.app.worker
  const claim = ledger.claimPosting.bind(ledger)
  let claims = 0
  ledger.claimPosting = async (checkoutId, holder, leaseMs) => {
    claims++
    const lease = await claim(checkoutId, holder, leaseMs)
    if (claims === 1) throw new Error('Connection terminated unexpectedly')
    return lease
  }
  // the release of the left lease answers only when let go, so that the test can look at what happens meanwhile
  const releaseHeldBy = ledger.releaseHeldBy.bind(ledger)
  let letGo: () => void = () => {}
  const asked: string[] = []
  ledger.releaseHeldBy = async (checkoutId, holder) => {
    asked.push(holder)
    await new Promise<void>(resolve => { letGo = resolve })
    return await releaseHeldBy(checkoutId, holder)
  }
  const browser = new Browser(stack).login('alice')
  const { fields, action } = await browser.checkout(['100001'])
  await browser.payOnCashnet(action, fields)
  const id = checkoutIdFrom(fields)
  await until(() => asked.length === 1, 'the release of the left lease asked for')
  t.same(asked, [worker.holder], 'only this process\'s own lease is released')
  // a postback for the same checkout meanwhile: no claim starts while the release is in flight
  const claimsBefore = claims
  worker.schedule(id)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(claims, claimsBefore, 'no claim while the release is in flight (polls and a postback asked meanwhile)')
  t.equal((await ledger.getCheckout(id))?.state, 'PAID', 'not posted meanwhile')
  letGo()
  await until(async () => (await ledger.getCheckout(id))?.state === 'POSTED', 'posted once released', 20_000)
  t.same(stack.alma.paymentsFor((await ledger.getCheckout(id))?.tx as string).map(p => p.feeId), ['100001'], 'paid once')
})

t.test('at shutdown a lease left held is released if the ledger answers by then, so the next start need not wait it out', async t => {
  const stack = await build(t, { env: { POSTING_LEASE_SECONDS: '600' } })
  const ledger = stack.app.ledger
  // the ledger out of reach for releases until the test says it is back
  let down = true
  let refusedAtPolls = 0
  const release = ledger.releasePosting.bind(ledger)
  const releaseHeldBy = ledger.releaseHeldBy.bind(ledger)
  ledger.releasePosting = async lease => {
    if (down) throw new Error('the ledger cannot take writes just now (PostgreSQL: connect ECONNREFUSED); nothing was written')
    await release(lease)
  }
  ledger.releaseHeldBy = async (checkoutId, holder) => {
    if (down) {
      refusedAtPolls++
      throw new Error('the ledger cannot take writes just now (PostgreSQL: connect ECONNREFUSED); nothing was written')
    }
    return await releaseHeldBy(checkoutId, holder)
  }
  const id = await paidFirstPostingFails(stack)
  await until(() => refusedAtPolls >= 2, 'the polls failing to release the lease left held')
  t.ok(stack.logLines().some(l => l.event === 'posting.release_failed' && l.checkout === id), 'the posting could not release its lease')

  down = false
  t.same(await stack.app.worker.stop(), [], 'nothing abandoned')
  const later = new Date(Date.now() + 60_000)
  t.same(await ledger.duePostings(later), [id], 'the lease is free: the next start posts it at once')
  t.equal((await ledger.getCheckout(id))?.state, 'PAID', 'still PAID: the stopped worker posted nothing more')
  t.ok(stack.logLines().some(l => l.event === 'posting.lease_released' && l.checkout === id && /at shutdown/.test(l.msg)), 'the release at shutdown is logged')
  t.same(stack.alma.paymentsFor((await ledger.getCheckout(id))?.tx as string), [], 'Alma took nothing (its first answer was a 503)')
})
