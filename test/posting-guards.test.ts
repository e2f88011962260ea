// Issue 13, items 6, 7 and 16, and the poster's own cap: over real HTTP against the sandboxes, with the Alma
// sandbox's record as the judge.

import t from 'tap'
import type { Checkout } from '../src/ledger/types.ts'
import { cents } from '../src/money.ts'
import { Browser, build, checkoutIdFrom, readForm, type TestStack, until } from './helper.ts'

async function state (stack: TestStack, id: string): Promise<Checkout> {
  return await stack.app.ledger.getCheckout(id) as Checkout
}

function successFields (checkout: Checkout, tx: string, amounts: string[]): Record<string, string> {
  const fields: Record<string, string> = { result: '0', tx, custcode: checkout.primaryId, itemcnt: String(amounts.length) }
  amounts.forEach((amount, index) => {
    fields[`itemcode${index + 1}`] = checkout.lines[index].itemCode
    fields[`amount${index + 1}`] = amount
    fields[`ref1type${index + 1}`] = 'ALMACHECKOUT'
    fields[`ref1val${index + 1}`] = checkout.id
  })
  return fields
}

t.test('item 6: a refund carrying our tx on the fee is not taken for an earlier payment', async t => {
  const stack = await build(t, { env: { POSTING_RETRY_BASE_MS: '20', POSTING_RETRY_MAX_MS: '50' } })
  const carol = new Browser(stack).login('carol')
  const { fields, action } = await carol.checkout()
  const id = checkoutIdFrom(fields)
  let first = true
  // The first payment never reaches Alma (after "pay started" was recorded); meanwhile the fee shows a REFUND
  // transaction carrying our tx. Only a PAYMENT with our tx means an earlier attempt succeeded.
  stack.alma.beforeCall = (call) => {
    if (call.method === 'POST' && first) {
      first = false
      stack.alma.refundOnFee('300001', 250, call.query.external_transaction_id)
      return 'drop'
    }
    return undefined
  }
  await carol.payOnCashnet(action, fields)
  await until(async () => (await state(stack, id)).state === 'POSTED' || (await state(stack, id)).state === 'NEEDS_ATTENTION', 'posting to finish')
  await stack.app.worker.idle()
  const tx = (await state(stack, id)).tx ?? ''
  t.equal((await state(stack, id)).state, 'POSTED')
  t.same(stack.alma.paymentsFor(tx), [{ feeId: '300001', amountCents: 250 }], 'the fee is really paid, once')
  t.equal(stack.alma.fee('300001').balanceCents, 0)
})

t.test('item 6: Alma showing more under our tx than CashNet reported for the line goes to staff', async t => {
  const stack = await build(t, { env: { POSTING_RETRY_BASE_MS: '20', POSTING_RETRY_MAX_MS: '50' } })
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout()
  const id = checkoutIdFrom(fields)
  // The first payment is applied but its answer is lost; meanwhile someone paid 1.00 more on that fee under our tx.
  let first = true
  stack.alma.onPayment = (payment) => {
    if (!first) return
    first = false
    const fee = stack.alma.fee(payment.feeId)
    fee.transactions.push({ type: 'PAYMENT', amountCents: 100, externalTransactionId: payment.externalTransactionId, method: 'ONLINE', comment: 'x', time: new Date().toISOString() })
  }
  stack.alma.faults.loseNextPayAnswers = 1
  await alice.payOnCashnet(action, fields)
  await until(async () => (await state(stack, id)).state === 'NEEDS_ATTENTION' || (await state(stack, id)).state === 'POSTED', 'posting to finish', 30000)
  t.equal((await state(stack, id)).state, 'NEEDS_ATTENTION')
  t.equal((await state(stack, id)).attentionKind, 'ALMA_ERROR')
  t.match((await state(stack, id)).attentionReason, /Alma shows 6\.00 paid with tx \d+ on fee 100001, more than the 5\.00 CashNet reported/)
})

t.test('item 7: a double charge during posting: DOUBLE_CHARGE with refund as the action, no retry that only flips', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout()
  const id = checkoutIdFrom(fields)
  let sent = false
  stack.alma.beforeCall = async (call) => {
    if (call.method === 'POST' && !sent) {
      sent = true
      await stack.cashnet.sendPostback(successFields(await state(stack, id), '555001', ['5.00', '45.50', '12.25']))
    }
    return undefined
  }
  await alice.payOnCashnet(action, fields)
  await until(() => sent, 'the double charge')
  await stack.app.worker.idle()
  const tx = (await state(stack, id)).tx ?? ''
  const checkout = await state(stack, id)
  t.equal(checkout.state, 'NEEDS_ATTENTION')
  t.equal(checkout.attentionKind, 'DOUBLE_CHARGE')
  t.ok(checkout.lines.every(l => l.postedAt !== null), 'the original payment’s lines were all posted')
  t.equal(stack.alma.paymentsFor(tx).length, 3)
  t.same(stack.alma.paymentsFor('555001'), [])

  const staff = new Browser(stack).login('staff')
  const page = await staff.get(`/admin/payments/${id}`)
  t.notMatch(page.body, '<form class="retry"', 'no retry')
  t.match(page.body, '<form class="refund"', 'refund is the action')
  const token = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? ''
  const forged = await staff.post(`/admin/payments/${id}/retry`, [['_csrf', token]])
  t.equal(forged.status, 409)
  t.equal((await state(stack, id)).state, 'NEEDS_ATTENTION', 'a retry cannot flip it')

  const form = readForm(page.body.slice(page.body.indexOf('<form class="refund"')))
  const refunded = await staff.post(`/admin/payments/${id}/refund`, [...form.fields, ['amount', '62.75'], ['reference', 'RF-9'], ['note', 'second charge refunded']])
  t.equal(refunded.status, 303)
  await until(async () => (await state(stack, id)).state === 'POSTED', 'posted once the refund is recorded')
  t.equal(stack.alma.paymentsFor(tx).length, 3, 'nothing paid twice')
  const alerts = stack.logLines().filter(l => l.event === 'payment.needs_attention' && l.checkout === id)
  t.equal(alerts.length, 1, 'one alert: the double charge')
})

t.test('item 7: no alert when the state change to NEEDS_ATTENTION lost its race', async t => {
  const stack = await build(t)
  const carol = new Browser(stack).login('carol')
  const { fields, action } = await carol.checkout()
  const id = checkoutIdFrom(fields)
  stack.alma.closeFee('300001')
  let sent = false
  stack.alma.beforeCall = async (call) => {
    if (call.method === 'GET' && call.path.endsWith('/fees/300001') && !sent) {
      sent = true
      await stack.cashnet.sendPostback(successFields(await state(stack, id), '555002', ['2.50']))
    }
    return undefined
  }
  await carol.payOnCashnet(action, fields)
  await until(() => sent, 'the double charge')
  await stack.app.worker.idle()
  t.equal((await state(stack, id)).attentionKind, 'DOUBLE_CHARGE', 'the double charge won')
  const alerts = stack.logLines().filter(l => l.event === 'payment.needs_attention' && l.checkout === id)
  t.equal(alerts.length, 1, 'only the double charge was alerted')
  t.match(alerts[0].reason, 'second CashNet transaction 555002')
  t.notOk(alerts.some(a => /could not be applied/.test(String(a.reason))), 'no alert for a change that did not happen')
})

t.test('the poster itself never sends more than CashNet reported, even if the ledger is requeued behind the rule', async t => {
  const stack = await build(t)
  const { fields } = await new Browser(stack).login('alice').checkout()
  const id = checkoutIdFrom(fields)
  await stack.cashnet.sendPostback(successFields(await state(stack, id), '555003', ['0.01', '0.00', '0.02']))
  t.equal((await state(stack, id)).attentionKind, 'MISMATCH')
  // What a forged or buggy path could do: put the mismatch back to PAID without asking the rule.
  t.ok((await stack.app.ledger.requeue(id, 'test', 'retry', () => null)).done)
  stack.app.worker.schedule(id)
  await stack.app.worker.idle()
  const paid = stack.alma.paymentsFor('555003')
  t.same(paid.map(p => `${p.feeId}:${p.amountCents}`).sort(), ['100001:1', '100003:2'], 'each line at most what CashNet reported for it')
  t.equal((await state(stack, id)).state, 'POSTED')
})

t.test('item 16: /admin counts unmatched postbacks in SQL; the CSV streams page by page without per-row queries', async t => {
  const stack = await build(t)
  for (let i = 0; i < 3; i++) await stack.cashnet.sendPostback({ result: '0', tx: `99900${i}`, itemcnt: '1', amount1: '1.00', ref1type1: 'ALMACHECKOUT', ref1val1: 'f'.repeat(32) })
  const ledger = stack.app.ledger as unknown as Record<string, unknown>
  const staff = new Browser(stack).login('staff')
  ledger.unmatchedPostbacks = () => { throw new Error('every unmatched postback was loaded to count them') }
  const admin = await staff.get('/admin')
  t.equal(admin.status, 200)
  t.match(admin.body, /<strong>3<\/strong> CashNet postback\(s\) matched no checkout/)
  delete ledger.unmatchedPostbacks
  const list = await staff.get('/admin/postbacks')
  t.equal((list.body.match(/Postback \d+: ORPHAN/g) ?? []).length, 3)

  const created: string[] = []
  for (let i = 0; i < 1201; i++) {
    const id = `bulk${String(i).padStart(5, '0')}`
    created.push(id)
    await stack.app.ledger.createCheckout({ id, userId: 'bulk', primaryId: 'bulk', patronName: 'Bulk Patron', email: '', currency: 'USD', lines: [{ lineNo: 1, feeId: 'f', feeType: 'OVERDUEFINE', feeTypeDesc: 'Overdue fine', owner: 'MAIN', ownerDesc: 'Main', title: '', itemCode: 'LIB-FINE', amount: cents(100) }] })
  }
  ledger.getCheckout = () => { throw new Error('a query per row') }
  ledger.listCheckouts = () => { throw new Error('the whole list loaded') }
  const csv = await staff.get('/admin/payments.csv')
  delete ledger.getCheckout
  delete ledger.listCheckouts
  t.equal(csv.status, 200)
  t.equal(csv.headers['transfer-encoding'], 'chunked', 'streamed')
  const ids = csv.body.trim().split('\r\n').slice(1).map(line => line.split(',')[0])
  t.equal(ids.length, 1201, 'every row, across three pages')
  t.same(ids, [...created].reverse(), 'newest first, none twice')
  t.ok(stack.logLines().some(l => l.event === 'admin.export' && l.rows === 1201))
})
