// npm run reconcile -- --paypal at the start of its range: PayPal lists a capture under its own date, which can be
// before the moment the ledger recorded the payment (a capture just before midnight, recorded just after). The
// job must still find it in PayPal's list, and must not judge what PayPal dates before the range on its own.

import t from 'tap'
import { reconcilePayPal } from '../src/jobs/reconcile-paypal.ts'
import { Browser, build, readForm, until } from './helper.ts'

t.test('a capture PayPal dates before --since, recorded by the ledger after it, is found and not called missing', async t => {
  const stack = await build(t, { env: { PAYMENT_PROVIDER: 'paypal' } })
  const pp = stack.paypal
  if (pp === null) throw new Error('no PayPal stand-in')
  // PayPal's clock stamps the capture an hour before the service records it paid.
  pp.now = () => new Date(Date.now() - 3600_000)
  const alice = new Browser(stack).login('alice')
  const pay = readForm((await alice.get('/')).body, 'pay-form')
  const started = await alice.post('/checkout', [...pay.fields, ['fee', '100001']])
  const approveUrl = String(started.headers.location)
  const approval = readForm((await alice.request(approveUrl)).body)
  const decided = await alice.request(new URL(approval.action, approveUrl).toString(), { method: 'POST', body: new URLSearchParams([...approval.fields, ['action', 'approve']]).toString() })
  await alice.request(String(decided.headers.location))
  const id = pp.orders.get(new URL(approveUrl).searchParams.get('token') ?? '')?.customId as string
  await stack.app.worker.idle()
  await until(async () => (await stack.app.ledger.getCheckout(id))?.state === 'POSTED', 'posted')
  const paidAt = Date.parse((await stack.app.ledger.getCheckout(id))?.paidAt as string)
  t.ok(Date.parse(pp.captures[0].createTime) < paidAt - 1800_000, 'PayPal dates the capture well before the ledger\'s paid time')

  // --since falls between PayPal's date of the capture and the ledger's.
  const since = new Date(paidAt - 1800_000)
  const report = await reconcilePayPal({ ledger: stack.app.ledger, paypal: stack.app.paypal as never, since, now: new Date(Date.now() + 5000), reportingLagMs: 0 })
  t.same(report.findings, [], 'the capture is in PayPal\'s list: nothing missing')
  t.equal(report.checked.ledgerPayments, 1, 'the ledger\'s payment in the range was judged')

  // A range that starts after the payment judges neither side of it.
  const later = await reconcilePayPal({ ledger: stack.app.ledger, paypal: stack.app.paypal as never, since: new Date(paidAt + 1000), now: new Date(Date.now() + 5000), reportingLagMs: 0 })
  t.same(later.findings, [])
  t.same([later.checked.ledgerPayments, later.checked.transactions], [0, 0], 'what PayPal dates before the range is only looked up, not judged')
})
