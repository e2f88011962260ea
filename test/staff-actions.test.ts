// Issue 13, items 1 to 3, over real HTTP with the Alma sandbox's record as the judge: for every kind of payment
// needing attention, after every staff action (the ones offered and forged POSTs of the others), the money Alma
// recorded for a CashNet tx is at most what CashNet reported for it, in total and fee by fee.

import t, { type Test } from 'tap'
import type { Checkout } from '../src/ledger/types.ts'
import type { Cents } from '../src/money.ts'
import { type Answer, Browser, build, checkoutIdFrom, readForm, type TestStack, until } from './helper.ts'

/** What CashNet reported for each tx, as the test sent it: the judge's reference. */
type Reported = Map<string, { total: number, perFee: Map<string, number> }>

let txCounter = 970000

function cents (decimal: string): number {
  const [whole, fraction = ''] = decimal.split('.')
  return Number(whole) * 100 + Number((fraction + '00').slice(0, 2))
}

/** A success postback for a checkout as CashNet would send it, with the amounts given (null: no items at all). */
function postbackFields (checkout: Checkout, tx: string, amounts: string[] | null): Record<string, string> {
  const fields: Record<string, string> = { result: '0', respmessage: 'SUCCESS', tx, custcode: checkout.primaryId }
  if (amounts === null) return { ...fields, ref1type1: 'ALMACHECKOUT', ref1val1: checkout.id }
  fields.itemcnt = String(amounts.length)
  amounts.forEach((amount, index) => {
    const n = index + 1
    fields[`itemcode${n}`] = checkout.lines[index]?.itemCode ?? 'LIB-FINE'
    fields[`amount${n}`] = amount
    fields[`ref1type${n}`] = 'ALMACHECKOUT'
    fields[`ref1val${n}`] = checkout.id
  })
  return fields
}

function note (reported: Reported, checkout: Checkout, tx: string, amounts: string[] | null): void {
  const perFee = new Map<string, number>()
  ;(amounts ?? []).forEach((a, i) => { if (checkout.lines[i] !== undefined) perFee.set(checkout.lines[i].feeId, cents(a)) })
  reported.set(tx, { total: (amounts ?? []).reduce((s, a) => s + cents(a), 0), perFee })
}

/** Sends a success postback from CashNet's address and notes what it reported. */
async function cashnetReports (stack: TestStack, reported: Reported, id: string, tx: string, amounts: string[] | null): Promise<void> {
  const checkout = await stack.app.ledger.getCheckout(id) as Checkout
  const sent = await stack.cashnet.sendPostback(postbackFields(checkout, tx, amounts))
  if (sent.status !== 200) throw new Error(`postback answered ${sent.status}`)
  if (tx !== '') note(reported, checkout, tx, amounts)
}

async function started (stack: TestStack, username: string): Promise<string> {
  const { fields } = await new Browser(stack).login(username).checkout()
  const id = checkoutIdFrom(fields)
  if (id === '') throw new Error(`${username}: no checkout`)
  return id
}

/** A patron pays on the CashNet sandbox; its postback is noted as reported. */
async function paidThroughCashnet (stack: TestStack, reported: Reported, username: string, beforePaying?: () => void): Promise<{ id: string, tx: string }> {
  const patron = new Browser(stack).login(username)
  const { fields, action } = await patron.checkout()
  const id = checkoutIdFrom(fields)
  beforePaying?.()
  await patron.payOnCashnet(action, fields)
  const sent = stack.cashnet.sent.find(s => Object.values(s.fields).includes(id))
  if (sent === undefined) throw new Error('no postback sent')
  const checkout = await stack.app.ledger.getCheckout(id) as Checkout
  const amounts = checkout.lines.map((_l, i) => sent.fields[`amount${i + 1}`])
  note(reported, checkout, sent.fields.tx, amounts)
  return { id, tx: sent.fields.tx }
}

async function state (stack: TestStack, id: string): Promise<Checkout> {
  return await stack.app.ledger.getCheckout(id) as Checkout
}

/** Waits until the checkout is in the given state. */
async function reaches (stack: TestStack, id: string, wanted: Checkout['state']): Promise<void> {
  await until(async () => (await state(stack, id)).state === wanted, `${id} ${wanted}`)
}

/** The form of one staff action on the payment page (the page from that form on). */
function actionForm (page: string, action: Action): ReturnType<typeof readForm> {
  return readForm(page.slice(page.indexOf(`<form class="${action}"`)))
}

/** The judge: Alma never holds more under a tx than CashNet reported for it, in total and per fee. */
function assertWithinCashnet (t: Test, stack: TestStack, reported: Reported, when: string): void {
  for (const [tx, r] of reported) {
    const paid = stack.alma.paymentsFor(tx)
    const total = paid.reduce((s, p) => s + p.amountCents, 0)
    t.ok(total <= r.total, `${when}: Alma recorded ${total} for tx ${tx}, CashNet reported ${r.total}`)
    const perFee = new Map<string, number>()
    for (const p of paid) perFee.set(p.feeId, (perFee.get(p.feeId) ?? 0) + p.amountCents)
    for (const [feeId, amount] of perFee) t.ok(amount <= (r.perFee.get(feeId) ?? 0), `${when}: fee ${feeId} got ${amount} under tx ${tx}, CashNet reported ${r.perFee.get(feeId) ?? 0}`)
  }
}

const ACTIONS = ['retry', 'post-confirmed', 'refund', 'resolve'] as const
type Action = typeof ACTIONS[number]

/** The staff actions the payment page offers, as forms. */
function offered (page: string): Set<Action> {
  const found = new Set<Action>()
  if (page.includes('<form class="retry"')) found.add('retry')
  if (page.includes('<form class="post-confirmed"')) found.add('post-confirmed')
  if (page.includes('<form class="refund"')) found.add('refund')
  if (page.includes('<form class="resolve"')) found.add('resolve')
  return found
}

/** A CSRF token from the page, or the last one seen (any token issued for the staff browser's secret is valid). */
let lastToken = ''
function csrfOf (page: string): string {
  lastToken = /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? lastToken
  return lastToken
}

/** Posts one staff action: from its form when offered, forged (a valid token, made-up fields) when not. */
async function act (stack: TestStack, staff: Browser, id: string, action: Action): Promise<{ offered: boolean, answer: Answer }> {
  const page = (await staff.get(`/admin/payments/${id}`)).body
  csrfOf(page)
  const isOffered = offered(page).has(action)
  const checkout = await state(stack, id)
  let fields: Array<[string, string]>
  if (isOffered) {
    const form = actionForm(page, action)
    fields = [...form.fields]
    if (action === 'refund') {
      const tx = form.fields.find(([k]) => k === 'tx')?.[1] ?? /<option value="([^"]+)"/.exec(page)?.[1] ?? ''
      const amount = /id="refund-amount" name="amount" inputmode="decimal" value="([^"]+)"/.exec(page)?.[1] ?? ''
      fields = [...fields.filter(([k]) => k !== 'tx'), ['tx', tx], ['amount', amount], ['reference', 'RF-1'], ['note', 'refunded in CashNet']]
    }
    if (action === 'resolve') fields.push(['resolution', 'dealt with'])
  } else {
    fields = [['_csrf', csrfOf(page)], ['tx', checkout.tx ?? '1'], ['amount', '1.00'], ['reference', 'RF-F'], ['note', 'forged'], ['resolution', 'forged']]
  }
  const answer = await staff.post(`/admin/payments/${id}/${action}`, fields)
  await stack.app.worker.idle()
  return { offered: isOffered, answer }
}

interface Case {
  name: string
  kind: string
  env?: Record<string, string>
  make: (stack: TestStack, reported: Reported) => Promise<string>
  expectOffered: Action[]
}

/** alice starts a checkout; CashNet reports a success for it with these amounts, under a new tx unless told. */
function aliceReported (amounts: string[] | null, options: { withTx?: boolean } = {}): Case['make'] {
  return async (stack, reported) => {
    const id = await started(stack, 'alice')
    await cashnetReports(stack, reported, id, options.withTx === false ? '' : String(txCounter++), amounts)
    return id
  }
}

/** alice pays on the CashNet sandbox while Alma answers every call with this status, until the payment needs attention. */
function alicePaysWhileAlmaAnswers (status: number): Case['make'] {
  return async (stack, reported) => {
    const { id } = await paidThroughCashnet(stack, reported, 'alice', () => {
      stack.alma.faults.failStatus = status
      stack.alma.faults.failNext = 1000
    })
    await reaches(stack, id, 'NEEDS_ATTENTION')
    stack.alma.faults.failNext = 0
    return id
  }
}

const CASES: Case[] = [
  {
    name: 'amounts lower than the checkout (CashNet collected 0.03 of 62.75)',
    kind: 'MISMATCH',
    expectOffered: ['post-confirmed', 'refund', 'resolve'],
    make: aliceReported(['0.01', '0.01', '0.01'])
  },
  {
    name: 'amounts of 0.00',
    kind: 'MISMATCH',
    expectOffered: ['resolve'],
    make: aliceReported(['0.00', '0.00', '0.00'])
  },
  {
    name: 'no amounts at all',
    kind: 'MISMATCH',
    expectOffered: ['resolve'],
    make: aliceReported(null)
  },
  {
    name: 'one line lower, one missing, one higher',
    kind: 'MISMATCH',
    expectOffered: ['post-confirmed', 'refund', 'resolve'],
    make: aliceReported(['6.00', '1.00'])
  },
  {
    name: 'success without a tx',
    kind: 'MISMATCH',
    expectOffered: ['resolve'],
    make: aliceReported(['5.00', '45.50', '12.25'], { withTx: false })
  },
  {
    name: 'a double charge on a posted payment',
    kind: 'DOUBLE_CHARGE',
    expectOffered: ['refund'],
    make: async (stack, reported) => {
      const { id } = await paidThroughCashnet(stack, reported, 'alice')
      await reaches(stack, id, 'POSTED')
      await cashnetReports(stack, reported, id, String(txCounter++), ['5.00', '45.50', '12.25'])
      return id
    }
  },
  {
    name: 'money Alma could not take (the fee was closed meanwhile)',
    kind: 'UNAPPLIED',
    expectOffered: ['refund', 'resolve'],
    make: async (stack, reported) => {
      const carol = new Browser(stack).login('carol')
      const { fields, action } = await carol.checkout()
      const id = checkoutIdFrom(fields)
      stack.alma.closeFee('300001')
      await carol.payOnCashnet(action, fields)
      const sent = stack.cashnet.sent.find(s => Object.values(s.fields).includes(id))
      note(reported, await state(stack, id), sent?.fields.tx ?? '', ['2.50'])
      await reaches(stack, id, 'NEEDS_ATTENTION')
      return id
    }
  },
  {
    name: 'an Alma business error',
    kind: 'ALMA_ERROR',
    expectOffered: ['retry', 'refund', 'resolve'],
    make: alicePaysWhileAlmaAnswers(400)
  },
  {
    name: 'attempts exhausted',
    kind: 'ATTEMPTS_EXHAUSTED',
    env: { POSTING_MAX_ATTEMPTS: '1' },
    expectOffered: ['retry', 'refund', 'resolve'],
    make: alicePaysWhileAlmaAnswers(503)
  }
]

for (const c of CASES) {
  t.test(`${c.kind}, ${c.name}: only the safe actions, and Alma never gets more than CashNet reported`, async t => {
    const stack = await build(t, { env: c.env })
    const reported: Reported = new Map()
    const id = await c.make(stack, reported)
    await stack.app.worker.idle()
    const before = await state(stack, id)
    t.equal(before.state, 'NEEDS_ATTENTION')
    t.equal(before.attentionKind, c.kind, 'the kind is recorded as data')
    assertWithinCashnet(t, stack, reported, 'before any action')
    const staff = new Browser(stack).login('staff')
    lastToken = ''
    const page = await staff.get(`/admin/payments/${id}`)
    csrfOf(page.body)
    t.same([...offered(page.body)].sort(), [...c.expectOffered].sort(), 'the page offers exactly the safe actions')
    t.match(page.body, `data-kind="${c.kind}"`)

    // Every action, forged when not offered; then the posting ones again, after whatever the others did.
    for (const action of [...ACTIONS, 'retry', 'post-confirmed'] as const) {
      const beforeAction = await state(stack, id)
      const paidBefore = JSON.stringify(stack.alma.allExternalPayments())
      const { offered: wasOffered, answer } = await act(stack, staff, id, action)
      if (wasOffered) {
        t.equal(answer.status, 303, `${action} offered and done`)
      } else {
        t.equal(answer.status, 409, `${action} not offered: a forged POST is refused`)
        t.match(answer.body, /<p>[^<]{20,}/, 'with the reason')
        t.equal(JSON.stringify(stack.alma.allExternalPayments()), paidBefore, `${action} refused: nothing sent to Alma`)
        const after = await state(stack, id)
        t.same({ state: after.state, kind: after.attentionKind, resolved: after.resolvedAt }, { state: beforeAction.state, kind: beforeAction.attentionKind, resolved: beforeAction.resolvedAt }, `${action} refused: the payment is unchanged`)
      }
      assertWithinCashnet(t, stack, reported, `after ${action}${wasOffered ? '' : ' (forged)'}`)
    }
  })
}

t.test('item 1: after a mismatch, "post what CashNet confirmed" posts 0.01 a fee; retry is refused, before and after settling', async t => {
  const stack = await build(t)
  const reported: Reported = new Map()
  const id = await started(stack, 'alice')
  const tx = String(txCounter++)
  await cashnetReports(stack, reported, id, tx, ['0.01', '0.01', '0.01'])
  const staff = new Browser(stack).login('staff')
  const page = await staff.get(`/admin/payments/${id}`)
  t.notMatch(page.body, '<form class="retry"', 'retry is not offered')
  t.match(page.body, /data-action="retry"><strong>Retry posting<\/strong>: <span class="why-not">CashNet reported other amounts/)
  const retry = await staff.post(`/admin/payments/${id}/retry`, [['_csrf', csrfOf(page.body)]])
  t.equal(retry.status, 409, 'a forged retry is refused')
  await stack.app.worker.idle()
  t.same(stack.alma.paymentsFor(tx), [], 'Alma recorded nothing')
  t.equal((await state(stack, id)).state, 'NEEDS_ATTENTION')

  const form = actionForm(page.body, 'post-confirmed')
  const done = await staff.post(`/admin/payments/${id}/post-confirmed`, form.fields)
  t.equal(done.status, 303)
  await reaches(stack, id, 'POSTED')
  t.same(stack.alma.paymentsFor(tx).map(p => p.amountCents), [1, 1, 1], 'each fee got the 0.01 CashNet collected for it, no more')
  t.equal(stack.alma.fee('100002').balanceCents, 4549, 'the rest stays owed in Alma')

  // A second mismatch, settled by staff: posting stays refused and the note stays.
  const second = await started(stack, 'carol')
  const tx2 = String(txCounter++)
  await cashnetReports(stack, reported, second, tx2, ['0.03'])
  const secondPage = await staff.get(`/admin/payments/${second}`)
  const settle = actionForm(secondPage.body, 'resolve')
  t.equal((await staff.post(`/admin/payments/${second}/resolve`, [...settle.fields, ['resolution', 'refunded 0.03']])).status, 303)
  const settled = await staff.get(`/admin/payments/${second}`)
  t.notMatch(settled.body, '<form class="retry"')
  t.notMatch(settled.body, '<form class="post-confirmed"')
  for (const action of ['retry', 'post-confirmed']) {
    const forged = await staff.post(`/admin/payments/${second}/${action}`, [['_csrf', csrfOf(settled.body)]])
    t.equal(forged.status, 409, `${action} after settling is refused`)
    t.match(forged.body, 'marked this payment settled')
  }
  await stack.app.worker.idle()
  t.same(stack.alma.paymentsFor(tx2), [], 'nothing posted for the settled mismatch')
  t.equal((await state(stack, second)).resolution, 'refunded 0.03', 'the note is kept')
  assertWithinCashnet(t, stack, reported, 'at the end')
})

t.test('item 2: a double charge stays counted until its refund is recorded, then the payment is POSTED again', async t => {
  const stack = await build(t)
  const reported: Reported = new Map()
  const { id, tx } = await paidThroughCashnet(stack, reported, 'alice')
  await reaches(stack, id, 'POSTED')
  const second = String(txCounter++)
  await cashnetReports(stack, reported, id, second, ['5.00', '45.50', '12.25'])
  const staff = new Browser(stack).login('staff')
  const page = await staff.get(`/admin/payments/${id}`)
  t.match(page.body, 'Kind of problem: Double charge')
  t.same([...offered(page.body)], ['refund'], 'only the refund is offered')

  for (const action of ['retry', 'post-confirmed', 'resolve']) {
    const forged = await staff.post(`/admin/payments/${id}/${action}`, [['_csrf', csrfOf(page.body)], ['resolution', 'x']])
    t.equal(forged.status, 409, `${action} is refused for a double charge`)
  }
  await stack.app.worker.idle()
  t.equal((await state(stack, id)).state, 'NEEDS_ATTENTION', 'still needs attention')
  t.match((await staff.get('/admin')).body, /<strong>1<\/strong> payment\(s\) need attention/, 'still counted')
  const { reconcile: reconcileOpen } = await import('../src/jobs/reconcile.ts')
  const open = await reconcileOpen({ ledger: stack.app.ledger, alma: stack.app.alma, since: new Date(Date.now() - 3600_000) })
  t.ok(open.findings.some(f => f.kind === 'double-charge' && f.tx === second), 'reconciliation reports it while its refund is not recorded')
  t.same(stack.alma.paymentsFor(second), [], 'the second charge was never posted')

  const form = actionForm(page.body, 'refund')
  t.same(form.fields.find(([k]) => k === 'tx'), ['tx', second], 'the refund is of the second tx')
  const refund = async (amount: string, reference: string, note = 'n'): Promise<Answer> =>
    await staff.post(`/admin/payments/${id}/refund`, [...form.fields, ['amount', amount], ['reference', reference], ['note', note]])
  const tooMuch = await refund('62.76', 'R1')
  t.equal(tooMuch.status, 409, 'more than CashNet collected for that tx is refused')
  t.match(tooMuch.body, 'more than is left of tx')
  const bad = await refund('abc', 'R1')
  t.equal(bad.status, 400, 'an unreadable amount is refused')
  const noRef = await refund('62.75', ' ')
  t.equal(noRef.status, 400, 'the CashNet refund reference is required')
  const otherTx = await staff.post(`/admin/payments/${id}/refund`, [['_csrf', csrfOf(page.body)], ['tx', tx], ['amount', '1.00'], ['reference', 'R1'], ['note', 'n']])
  t.equal(otherTx.status, 409, 'the posted tx is not the one to refund here')
  t.equal((await stack.app.ledger.moneyRecord(id))?.refunds.length, 0, 'no refund recorded by the refused attempts')

  const part = await refund('60.00', 'RF-100', 'first part')
  t.equal(part.status, 303)
  t.equal((await state(stack, id)).state, 'NEEDS_ATTENTION', 'a partial refund keeps it open')
  const rest = await refund('2.75', 'RF-101', 'the rest <b>')
  t.equal(rest.status, 303)
  await stack.app.worker.idle()
  const closed = await state(stack, id)
  t.equal(closed.state, 'POSTED', 'back to the state the original payment had')
  t.equal(closed.tx, tx)
  t.notMatch((await staff.get('/admin')).body, 'payment(s) need attention', 'no longer counted')
  const after = await staff.get(`/admin/payments/${id}`)
  t.match(after.body, 'RF-101')
  t.match(after.body, 'the rest &lt;b&gt;', 'the note is shown escaped')
  t.match(after.body, 'double_charge.refunded')
  t.match(after.body, 'refund.recorded')
  t.ok(stack.logLines().some(l => l.event === 'admin.refund_recorded' && l.checkout === id && l.by === 'staff' && l.effect === 'restore'))
  t.same(stack.alma.paymentsFor(tx).length, 3, 'the original payment stays posted once')
  const { reconcile } = await import('../src/jobs/reconcile.ts')
  const report = await reconcile({ ledger: stack.app.ledger, alma: stack.app.alma, since: new Date(Date.now() - 3600_000) })
  t.notOk(report.findings.some(f => f.kind === 'double-charge'), 'reconciliation no longer reports the refunded double charge')
  t.same(report.findings, [], 'reconciliation is silent about it altogether')
  // CashNet's settlement lists both charges and the refund of the second (a negative row): nothing to report
  const day = new Date().toISOString().slice(0, 10)
  const settled = await reconcile({
    ledger: stack.app.ledger,
    alma: stack.app.alma,
    since: new Date(Date.now() - 3600_000),
    settlement: [{ tx, amount: 6275 as Cents, date: day, line: 2 }, { tx: second, amount: 6275 as Cents, date: day, line: 3 }, { tx: second, amount: -6000 as Cents, date: day, line: 4 }, { tx: second, amount: -275 as Cents, date: day, line: 5 }]
  })
  t.same(settled.findings, [], 'with the settlement file too')
  assertWithinCashnet(t, stack, reported, 'at the end')
})

t.test('a refund is recorded once: the same form sent twice, or its reference again with another amount, is refused and changes nothing', async t => {
  const stack = await build(t)
  const reported: Reported = new Map()
  const { id } = await paidThroughCashnet(stack, reported, 'alice')
  await reaches(stack, id, 'POSTED')
  const second = String(txCounter++)
  await cashnetReports(stack, reported, id, second, ['5.00', '45.50', '12.25'])
  const staff = new Browser(stack).login('staff')
  const form = actionForm((await staff.get(`/admin/payments/${id}`)).body, 'refund')
  const refund = async (amount: string, reference: string): Promise<Answer> =>
    await staff.post(`/admin/payments/${id}/refund`, [...form.fields, ['amount', amount], ['reference', reference], ['note', 'refunded in CashNet']])

  t.equal((await refund('30.00', 'RF-200')).status, 303, 'the refund of 30.00 made in CashNet is recorded')
  const again = await refund('30.00', 'RF-200')
  t.equal(again.status, 409, 'the same form sent again (a double click, a resend) is refused')
  t.match(again.body, 'already recorded', 'calmly: it is already recorded')
  t.match(again.body, 'nothing more was recorded')
  const otherAmount = await refund('25.00', 'RF-200')
  t.equal(otherAmount.status, 409, 'the same reference with another amount is refused')
  t.match(otherAmount.body, /RF-200 is already recorded for 30\.00, not 25\.00/, 'and says so')
  const record = await stack.app.ledger.moneyRecord(id)
  t.same(record?.refunds.map(r => [r.tx, r.amount, r.reference]), [[second, 3000, 'RF-200']], 'one refund recorded')
  t.ok(stack.logLines().some(l => l.event === 'admin.action_refused' && l.checkout === id && /already recorded/.test(String(l.reason))), 'the repeat is logged as refused')

  // what staff then record as "the rest" does not close a double charge of which 30.00 is still owed to the patron
  t.equal((await refund('2.75', 'RF-201')).status, 303)
  const after = await state(stack, id)
  t.equal(after.state, 'NEEDS_ATTENTION', 'the double charge stays open: 32.75 of 62.75 refunded')
  t.equal(after.attentionKind, 'DOUBLE_CHARGE')
  t.equal(after.resolvedAt, null, 'not settled')
  const { reconcile } = await import('../src/jobs/reconcile.ts')
  const report = await reconcile({ ledger: stack.app.ledger, alma: stack.app.alma, since: new Date(Date.now() - 3600_000) })
  t.ok(report.findings.some(f => f.kind === 'double-charge' && f.tx === second), 'reconciliation still reports the double charge')
  assertWithinCashnet(t, stack, reported, 'at the end')
})

t.test('item 3: a tx already recorded for one checkout is not accepted for another', async t => {
  const stack = await build(t)
  const reported: Reported = new Map()
  const { id: first, tx } = await paidThroughCashnet(stack, reported, 'carol')
  await reaches(stack, first, 'POSTED')
  const other = await started(stack, 'alice')
  const checkout = await state(stack, other)
  const answer = await stack.cashnet.sendPostback(postbackFields(checkout, tx, ['5.00', '45.50', '12.25']))
  t.equal(answer.status, 200, 'acknowledged, so CashNet does not retry it')
  await stack.app.worker.idle()
  t.equal((await state(stack, other)).state, 'CREATED', 'the second checkout is not made PAID')
  t.equal((await state(stack, other)).tx, null)
  t.same(stack.alma.paymentsFor(tx), [{ feeId: '300001', amountCents: 250 }], 'only the first checkout’s fee is paid under the tx')
  const again = await stack.cashnet.sendPostback(postbackFields(checkout, tx, ['5.00', '45.50', '12.25']))
  t.equal(again.status, 200)
  t.equal((await state(stack, other)).state, 'CREATED', 'nor by the same postback again')

  const staff = new Browser(stack).login('staff')
  t.match((await staff.get('/admin')).body, /<strong>2<\/strong> CashNet postback\(s\) matched no checkout/, 'counted for staff')
  const list = await staff.get('/admin/postbacks')
  t.match(list.body, /Postback \d+: TX_REUSED/)
  t.match(list.body, `already recorded for checkout ${first}`)
  t.match(list.body, `href="payments/${other}"`)
  const history = await staff.get(`/admin/payments/${other}`)
  t.match(history.body, /Postback \d+: TX_REUSED/, 'on the second checkout’s history')
  t.ok(stack.logLines().some(l => l.event === 'postback.received' && l.outcome === 'TX_REUSED' && l.level === 40), 'a warning for the operator')
  assertWithinCashnet(t, stack, reported, 'at the end')
})
