// The Ledger contract (src/ledger/ledger.ts) as black-box tests, for every implementation: SQLite runs it in
// test/ledger/sqlite.test.ts, a server database runs the same suite. Only the interface is used: no SQL, no
// driver, no file. Each test gets a fresh, empty ledger from the factory and a clock it moves itself.

import type { Test } from 'tap'
import type { DecidePostback, Ledger, PageCursor } from '../../src/ledger/ledger.ts'
import type { Checkout, ComposeMessages, IncomingPostback, NewCheckout, NewOutboxMessage, PostbackDecision, UserIdKind } from '../../src/ledger/types.ts'
import { type Cents, cents } from '../../src/money.ts'

/**
 * Makes a fresh, empty ledger whose clock is `now`; the suite closes it when the test ends. With `sameAs`, a
 * second ledger on the same store as that one (another process on the same file or database).
 */
export type MakeLedger = (options: { now: () => Date, sameAs?: Ledger }) => Promise<Ledger>

interface Fixture {
  ledger: Ledger
  /** sets the ledger's clock */
  at: (iso: string) => void
}

const START = '2026-03-02T10:00:00.000Z'

function newCheckout (id: string, amounts: number[], who: { userId?: string, userIdKind?: UserIdKind, primaryId?: string, patronName?: string } = {}): NewCheckout {
  return {
    id,
    userId: who.userId ?? 'alice',
    ...(who.userIdKind !== undefined ? { userIdKind: who.userIdKind } : {}),
    primaryId: who.primaryId ?? 'P-alice',
    patronName: who.patronName ?? 'Alice Able',
    email: 'alice@example.edu',
    currency: 'USD',
    lines: amounts.map((amount, index) => ({
      lineNo: index + 1,
      feeId: `${id}-fee${index + 1}`,
      feeType: 'OVERDUEFINE',
      feeTypeDesc: 'Overdue fine',
      owner: 'MAIN',
      ownerDesc: 'Main library',
      title: `Book ${index + 1}`,
      itemCode: 'LIB-FINE',
      amount: amount as Cents
    }))
  }
}

function incoming (checkoutId: string | null, tx: string, amounts: number[] | null = null, result = '0'): IncomingPostback {
  return {
    checkoutId,
    peer: '127.0.0.9',
    result,
    tx,
    rawBody: `result=${result}&tx=${tx}`,
    ...(amounts === null ? {} : { items: amounts.map(amount => ({ itemCode: 'LIB-FINE', amount: amount as Cents, qty: 1 })) })
  }
}

const paid = (tx: string): PostbackDecision => ({ outcome: 'PAID', reason: 'paid', to: 'PAID', payment: { tx, batchno: 'B1', effdate: '2026-03-02', pmtcode: 'VISA' } })
const always = (decision: PostbackDecision): DecidePostback => () => decision

/** A checkout paid by CashNet with tx, every line reported in full. */
async function paidCheckout (ledger: Ledger, id: string, tx: string, amounts: number[], who: Parameters<typeof newCheckout>[2] = {}): Promise<Checkout> {
  await ledger.createCheckout(newCheckout(id, amounts, who))
  const recorded = await ledger.recordPostback(incoming(id, tx, amounts), always(paid(tx)))
  return recorded.checkout as Checkout
}

/** What the suite does to a store behind the Ledger interface's back (an operator's SQL, an older version's writes). */
export interface StoreAccess {
  /** deletes the key's Alma reservations without touching the count kept beside them */
  forgetAlmaReservations: (ledger: Ledger, key: string) => Promise<void>
}

export function specifyLedger (t: Test, makeLedger: MakeLedger, store: StoreAccess): void {
  const { forgetAlmaReservations } = store
  const setup = async (t: Test): Promise<Fixture> => {
    let clock = new Date(START)
    const ledger = await makeLedger({ now: () => clock })
    t.teardown(async () => { await ledger.close() })
    return { ledger, at: (iso) => { clock = new Date(iso) } }
  }

  t.test('a checkout is created in CREATED with its lines and total, and read back by id and by patron', async t => {
    const { ledger, at } = await setup(t)
    const created = await ledger.createCheckout(newCheckout('c1', [500, 250]))
    t.equal(created.state, 'CREATED')
    t.equal(created.total, cents(750), 'the total is the sum of the lines')
    t.same(created.lines.map(l => [l.lineNo, l.feeId, l.amount, l.postedAmount, l.postedAt]), [[1, 'c1-fee1', 500, null, null], [2, 'c1-fee2', 250, null, null]])
    t.same(await ledger.getCheckout('c1'), created)
    t.equal(await ledger.getCheckout('nope'), undefined)
    t.equal(created.createdAt, START, 'times come from the ledger\'s clock')
    t.equal(created.attempts, 0)
    t.equal(created.unapplied, 0)
    t.equal(created.attentionKind, null)
    at('2026-03-02T10:05:00.000Z')
    await ledger.createCheckout(newCheckout('c2', [100]))
    await ledger.createCheckout(newCheckout('b1', [100], { userId: 'bob', primaryId: 'P-bob' }))
    t.equal((await ledger.latestCheckoutForUser('alice'))?.id, 'c2', 'the newest for the patron')
    t.equal(await ledger.latestCheckoutForUser('nobody'), undefined)
    const history = await ledger.history('c1')
    t.same(history?.events.map(e => [e.event, e.fromState, e.toState]), [['checkout.created', null, 'CREATED']])
    await t.rejects(ledger.createCheckout(newCheckout('c1', [100])), 'an id is used once')
  })

  t.test('a checkout records which provider takes its money: cashnet unless said, kept through payment and posting', async t => {
    const { ledger, at } = await setup(t)
    const plain = await ledger.createCheckout(newCheckout('c1', [500]))
    t.equal(plain.provider, 'cashnet', 'a checkout that names no provider is CashNet\'s')
    const viaPayPal = await ledger.createCheckout({ ...newCheckout('p1', [300, 200]), provider: 'paypal' })
    t.equal(viaPayPal.provider, 'paypal')
    t.equal((await ledger.getCheckout('p1'))?.provider, 'paypal', 'read back by id')
    t.same((await ledger.listCheckouts({})).checkouts.map(c => [c.id, c.provider]).sort(), [['c1', 'cashnet'], ['p1', 'paypal']], 'and in lists')
    await ledger.recordPostback(incoming('p1', 'CAPTURE1', [300, 200]), always(paid('CAPTURE1')))
    at('2026-03-02T11:00:00.000Z')
    await ledger.markLinePosted('p1', 1, cents(300), {})
    await ledger.markLinePosted('p1', 2, cents(200), {})
    const posted = await ledger.postedLines(new Date('2026-03-02T00:00:00.000Z'), new Date('2026-03-03T00:00:00.000Z'))
    t.same(posted.map(p => [p.checkout.id, p.checkout.provider, p.lineNo]), [['p1', 'paypal', 1], ['p1', 'paypal', 2]], 'the GL journal sees the provider of each posted line')
  })

  t.test('a PAID decision records the postback, CashNet\'s report and the payment in one step', async t => {
    const { ledger } = await setup(t)
    await ledger.createCheckout(newCheckout('c1', [500, 250]))
    let seen: Parameters<DecidePostback> | undefined
    const recorded = await ledger.recordPostback(incoming('c1', '7001', [500, 250]), (...args) => { seen = args; return paid('7001') })
    t.equal(seen?.[0]?.id, 'c1', 'the rules see the checkout')
    t.equal(seen?.[0]?.state, 'CREATED', 'as it was before this postback')
    t.same(seen?.[1], [], 'no earlier postbacks')
    t.same(seen?.[2], [], 'the tx is recorded for no other checkout')
    t.equal(recorded.decision.outcome, 'PAID')
    t.equal(recorded.checkout?.state, 'PAID', 'the checkout returned is the one after the decision')
    const checkout = await ledger.getCheckout('c1') as Checkout
    t.equal(checkout.state, 'PAID')
    t.equal(checkout.tx, '7001')
    t.equal(checkout.batchno, 'B1')
    t.equal(checkout.pmtcode, 'VISA')
    t.equal(checkout.paidAt, START)
    t.equal(checkout.nextAttemptAt, START, 'due for posting at once')
    const history = await ledger.history('c1')
    t.same(history?.postbacks.map(p => [p.id, p.tx, p.outcome, p.total, p.peer, p.rawBody]), [[recorded.id, '7001', 'PAID', 750, '127.0.0.9', 'result=0&tx=7001']])
    t.same(history?.reports, [{ postbackId: recorded.id, tx: '7001', outcome: 'PAID', total: 750, items: [{ itemNo: 1, itemCode: 'LIB-FINE', amount: 500, qty: 1 }, { itemNo: 2, itemCode: 'LIB-FINE', amount: 250, qty: 1 }] }])
    t.same((await ledger.moneyRecord('c1'))?.reports, history?.reports, 'the money record carries the same report')
    t.same(history?.events.at(-1)?.event, 'postback.paid')
    t.same([history?.events.at(-1)?.fromState, history?.events.at(-1)?.toState], ['CREATED', 'PAID'])
    t.equal(await ledger.moneyRecord('nope'), undefined)
  })

  t.test('a decision without a change records the postback and leaves the checkout; earlier postbacks are passed to the rules', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500])
    let earlier: string[] = []
    const again = await ledger.recordPostback(incoming('c1', '7001', [500]), (checkout, before) => {
      earlier = before.map(p => `${p.tx}:${p.outcome}`)
      return { outcome: 'DUPLICATE', reason: 'same tx again' }
    })
    t.same(earlier, ['7001:PAID'])
    t.equal(again.checkout?.state, 'PAID')
    const history = await ledger.history('c1')
    t.same(history?.postbacks.map(p => p.outcome), ['PAID', 'DUPLICATE'])
    t.equal(history?.reports.length, 1, 'a duplicate is not a second report of money')
    t.equal(history?.events.at(-1)?.event, 'postback.duplicate')
  })

  t.test('declined and cancelled postbacks move a CREATED checkout and report no money', async t => {
    const { ledger } = await setup(t)
    await ledger.createCheckout(newCheckout('d1', [500]))
    await ledger.createCheckout(newCheckout('x1', [500]))
    await ledger.recordPostback(incoming('d1', '', null, '5'), always({ outcome: 'DECLINED', reason: 'card declined', to: 'DECLINED' }))
    await ledger.recordPostback(incoming('x1', '', null, '902'), always({ outcome: 'CANCELLED', reason: 'cancelled', to: 'CANCELLED' }))
    t.equal((await ledger.getCheckout('d1'))?.state, 'DECLINED')
    t.equal((await ledger.getCheckout('x1'))?.state, 'CANCELLED')
    t.same((await ledger.moneyRecord('d1'))?.reports, [])
    t.equal((await ledger.getCheckout('d1'))?.paidAt, null)
  })

  t.test('postbacks for no checkout, unreadable ones and a reused tx are kept as unmatched, newest first', async t => {
    const { ledger, at } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500])
    await ledger.createCheckout(newCheckout('c2', [500]))
    let sawCheckout: Checkout | undefined | null = null
    at('2026-03-02T11:00:00.000Z')
    const orphan = await ledger.recordPostback(incoming('ghost', '7100', [500]), (checkout) => { sawCheckout = checkout; return { outcome: 'ORPHAN', reason: 'no such checkout' } })
    t.equal(sawCheckout, undefined, 'the rules see no checkout')
    t.equal(orphan.checkout, undefined)
    at('2026-03-02T12:00:00.000Z')
    await ledger.recordPostback({ checkoutId: null, peer: '127.0.0.9', result: '', tx: '', rawBody: 'garbage' }, always({ outcome: 'REJECTED', reason: 'no result field' }))
    at('2026-03-02T13:00:00.000Z')
    let elsewhere: string[] = []
    await ledger.recordPostback(incoming('c2', '7001', [500]), (_checkout, _earlier, others) => { elsewhere = others; return { outcome: 'TX_REUSED', reason: 'tx 7001 belongs to c1' } })
    t.same(elsewhere, ['c1'], 'the rules are told which other checkout holds the tx')
    t.equal((await ledger.getCheckout('c2'))?.state, 'CREATED', 'never paid by a reused tx')
    const unmatched = await ledger.unmatchedPostbacks()
    t.same(unmatched.map(p => [p.outcome, p.checkoutId]), [['TX_REUSED', 'c2'], ['REJECTED', null], ['ORPHAN', 'ghost']])
    t.equal(unmatched[1].total, null, 'an unreadable postback reports no total')
    t.equal(await ledger.countUnmatchedPostbacks(), 3)
    t.same((await ledger.unmatchedPostbacks(new Date('2026-03-02T11:30:00.000Z'))).map(p => p.outcome), ['TX_REUSED', 'REJECTED'], 'since a time')
    t.same((await ledger.unmatchedPostbacks(undefined, 1)).map(p => p.outcome), ['TX_REUSED'], 'at most a limit')
    t.same((await ledger.postbacksWithTx('7001')).map(p => [p.checkoutId, p.outcome]), [['c1', 'PAID'], ['c2', 'TX_REUSED']], 'every postback with a tx, oldest first')
  })

  t.test('a mismatch needs attention with its kind and reason; a double charge keeps the earlier state and a full refund restores it', async t => {
    const { ledger } = await setup(t)
    await ledger.createCheckout(newCheckout('m1', [500]))
    await ledger.recordPostback(incoming('m1', '7001', [400]), always({ outcome: 'MISMATCH', reason: 'paid amounts differ', to: 'NEEDS_ATTENTION', attentionKind: 'MISMATCH', payment: { tx: '7001', batchno: 'B', effdate: 'E', pmtcode: 'P' } }))
    const mismatch = await ledger.getCheckout('m1') as Checkout
    t.equal(mismatch.state, 'NEEDS_ATTENTION')
    t.equal(mismatch.attentionKind, 'MISMATCH')
    t.equal(mismatch.attentionReason, 'paid amounts differ')
    t.equal(mismatch.tx, '7001')
    t.same((await ledger.moneyRecord('m1'))?.reports.map(r => r.total), [400], 'what CashNet reported is kept')

    await paidCheckout(ledger, 'c1', '7002', [500])
    await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'POSTED', event: 'payment.posted' })
    await ledger.recordPostback(incoming('c1', '7003', [500]), always({ outcome: 'DOUBLE_CHARGE', reason: 'second CashNet transaction 7003', to: 'NEEDS_ATTENTION', attentionKind: 'DOUBLE_CHARGE' }))
    const doubled = await ledger.getCheckout('c1') as Checkout
    t.equal(doubled.state, 'NEEDS_ATTENTION')
    t.equal(doubled.attentionKind, 'DOUBLE_CHARGE')
    t.equal(doubled.tx, '7002', 'the checkout keeps its own tx')
    const partial = await ledger.recordRefund({ checkoutId: 'c1', tx: '7003', amount: cents(200), reference: 'R1', note: 'part', by: 'staff' }, { refuse: () => null, effect: () => 'none' })
    t.ok(partial.recorded)
    t.equal((await ledger.getCheckout('c1'))?.state, 'NEEDS_ATTENTION', 'still open after a partial refund')
    let effectSaw = 0
    const full = await ledger.recordRefund({ checkoutId: 'c1', tx: '7003', amount: cents(300), reference: 'R2', note: 'rest', by: 'staff' }, {
      refuse: (record) => record.refunds.length === 1 ? null : 'the earlier refund is not visible',
      effect: (record) => { effectSaw = record.refunds.length; return 'restore' }
    })
    t.ok(full.recorded)
    t.equal(effectSaw, 2, 'the effect sees the record with this refund')
    t.equal(full.recorded && full.checkout.state, 'POSTED', 'back to the state the original payment had')
    t.same((await ledger.moneyRecord('c1'))?.refunds.map(r => [r.tx, r.amount, r.reference, r.by]), [['7003', 200, 'R1', 'staff'], ['7003', 300, 'R2', 'staff']])
    const events = (await ledger.history('c1'))?.events.map(e => e.event)
    t.same(events?.slice(-3), ['refund.recorded', 'refund.recorded', 'double_charge.refunded'])
  })

  t.test('refundsRecorded reads the refunds recorded in a time range with their checkout\'s money record; paidBetween the checkouts paid in one', async t => {
    const { ledger, at } = await setup(t)
    at('2026-03-02T10:00:00.000Z')
    await paidCheckout(ledger, 'c1', '7001', [500, 300])
    at('2026-03-02T11:00:00.000Z')
    await paidCheckout(ledger, 'c2', '7002', [400])
    await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'x', attentionKind: 'ALMA_ERROR' })
    at('2026-03-02T12:00:00.000Z')
    await ledger.recordRefund({ checkoutId: 'c1', tx: '7001', amount: cents(200), reference: 'R1', note: 'part', by: 'staff' }, { refuse: () => null, effect: () => 'none' })
    at('2026-03-02T13:00:00.000Z')
    await ledger.recordRefund({ checkoutId: 'c1', tx: '7001', amount: cents(100), reference: 'R2', note: 'more', by: 'staff' }, { refuse: () => null, effect: () => 'none' })
    const refunds = async (from: string, to: string): Promise<string[]> =>
      (await ledger.refundsRecorded(new Date(from), new Date(to))).map(r => `${r.checkout.id}:${r.refund.reference}:${r.refund.amount}:${r.checkout.lines.length}`)
    t.same(await refunds('2026-03-02T00:00:00.000Z', '2026-03-03T00:00:00.000Z'), ['c1:R1:200:2', 'c1:R2:100:2'], 'oldest first, each with its checkout and lines')
    t.same(await refunds('2026-03-02T12:00:00.000Z', '2026-03-02T13:00:00.000Z'), ['c1:R1:200:2'], 'from is inclusive, to exclusive')
    t.same(await refunds('2026-03-02T13:00:00.001Z', '2026-03-03T00:00:00.000Z'), [])
    const [first] = await ledger.refundsRecorded(new Date('2026-03-02T12:00:00.000Z'), new Date('2026-03-02T13:00:00.000Z'))
    t.same([first.reports.map(r => [r.tx, r.total]), first.refunds.map(r => r.reference)], [[['7001', 800]], ['R1', 'R2']],
      'with the money record of its checkout: what was collected under each tx, and every refund of the checkout (which money a refund returns)')
    const paidIn = async (from: string, to: string): Promise<string[]> => (await ledger.paidBetween(new Date(from), new Date(to))).map(c => `${c.id}:${c.state}`)
    t.same(await paidIn('2026-03-02T00:00:00.000Z', '2026-03-03T00:00:00.000Z'), ['c1:NEEDS_ATTENTION', 'c2:PAID'], 'whatever the state now, oldest first')
    t.same(await paidIn('2026-03-02T10:00:00.000Z', '2026-03-02T11:00:00.000Z'), ['c1:NEEDS_ATTENTION'], 'from is inclusive, to exclusive')
    await ledger.createCheckout(newCheckout('unpaid', [100]))
    t.same(await paidIn('2026-03-01T00:00:00.000Z', '2026-03-04T00:00:00.000Z'), ['c1:NEEDS_ATTENTION', 'c2:PAID'], 'a checkout never paid is not listed')
  })

  t.test('a double charge of a PAID checkout is restored to PAID, due for posting again', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '7002', [500])
    await ledger.recordAttempt('c1', new Date('2026-03-02T11:00:00.000Z'), 'Alma down')
    await ledger.recordPostback(incoming('c1', '7003', [500]), always({ outcome: 'DOUBLE_CHARGE', reason: 'second', to: 'NEEDS_ATTENTION', attentionKind: 'DOUBLE_CHARGE' }))
    const result = await ledger.recordRefund({ checkoutId: 'c1', tx: '7003', amount: cents(500), reference: 'R', note: 'n', by: 'staff' }, { refuse: () => null, effect: () => 'restore' })
    t.equal(result.recorded && result.checkout.state, 'PAID')
    t.equal(result.recorded && result.checkout.attempts, 0, 'a fresh attempt budget')
    t.same(await ledger.duePostings(new Date(START)), ['c1'])
  })

  t.test('a refund the rule refuses changes nothing; a settling effect marks the case settled', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500])
    await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'payment.needs_attention', attentionKind: 'ALMA_ERROR', attentionReason: 'Alma refused' })
    const refused = await ledger.recordRefund({ checkoutId: 'c1', tx: '7001', amount: cents(500), reference: 'R', note: 'n', by: 'staff' }, { refuse: () => 'not this one', effect: () => 'settle' })
    t.same(refused, { recorded: false, reason: 'not this one' })
    t.same((await ledger.moneyRecord('c1'))?.refunds, [])
    t.same(await ledger.recordRefund({ checkoutId: 'nope', tx: '1', amount: cents(1), reference: 'R', note: 'n', by: 's' }, { refuse: () => null, effect: () => 'none' }), { recorded: false, reason: 'no such checkout' })
    const settled = await ledger.recordRefund({ checkoutId: 'c1', tx: '7001', amount: cents(500), reference: 'R9', note: 'refunded', by: 'staff' }, { refuse: () => null, effect: () => 'settle' })
    t.ok(settled.recorded)
    const checkout = await ledger.getCheckout('c1') as Checkout
    t.equal(checkout.state, 'NEEDS_ATTENTION')
    t.equal(checkout.resolvedBy, 'staff')
    t.match(checkout.resolution, /R9/)
    t.equal(checkout.resolvedAt, START)
  })

  t.test('a refund reference is recorded once per checkout and tx, even by two ledgers at once whose rule lets both through', async t => {
    const now = (): Date => new Date(START)
    const first = await makeLedger({ now })
    const second = await makeLedger({ now, sameAs: first })
    t.teardown(async () => { await second.close(); await first.close() })
    await paidCheckout(first, 'c1', '7001', [5000])
    await first.transition({ checkoutId: 'c1', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'x', attentionKind: 'UNAPPLIED' })
    const lenient = { refuse: () => null, effect: () => 'none' as const }
    const refund = (amount: number, reference = 'RF-1', tx = '7001'): Parameters<Ledger['recordRefund']>[0] => ({ checkoutId: 'c1', tx, amount: cents(amount), reference, note: 'n', by: 'staff' })
    const results = await Promise.all([first.recordRefund(refund(3000), lenient), second.recordRefund(refund(3000), lenient)])
    t.equal(results.filter(r => r.recorded).length, 1, 'one wins')
    t.match(results.find(r => !r.recorded), { recorded: false, reason: /RF-1 is already recorded/ }, 'the other is refused as already recorded')
    t.same((await first.moneyRecord('c1'))?.refunds.map(r => [r.tx, r.amount, r.reference]), [['7001', 3000, 'RF-1']], 'one refund recorded')
    t.match(await second.recordRefund(refund(2500), lenient), { recorded: false, reason: /already recorded/ }, 'the same reference with another amount too')
    t.ok((await first.recordRefund(refund(100, 'RF-2'), lenient)).recorded, 'another reference is another refund')
    t.same((await first.history('c1'))?.events.filter(e => e.event === 'refund.recorded').length, 2, 'an audit event for each refund recorded, none for the refused')
  })

  t.test('money the provider took back (a reversal) is kept beside the refunds with its kind, read back by every reader', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [5000])
    const none = { refuse: () => null, effect: () => 'none' as const }
    t.ok((await ledger.recordRefund({ checkoutId: 'c1', tx: '7001', amount: cents(1000), reference: 'RF-1', note: 'n', by: 'staff' }, none)).recorded)
    t.ok((await ledger.recordRefund({ checkoutId: 'c1', tx: '7001', amount: cents(4000), reference: 'RV-1', note: 'chargeback', by: 'paypal', kind: 'reversal' }, none)).recorded)
    t.match(await ledger.recordRefund({ checkoutId: 'c1', tx: '7001', amount: cents(4000), reference: 'RV-1', note: 'again', by: 'paypal', kind: 'reversal' }, none), { recorded: false }, 'a reversal is recorded once by its reference')
    t.same((await ledger.moneyRecord('c1'))?.refunds.map(r => [r.kind, r.amount, r.reference]), [['refund', 1000, 'RF-1'], ['reversal', 4000, 'RV-1']])
    t.same((await ledger.refundsRecorded(new Date(0), new Date('2100-01-01T00:00:00Z'))).map(r => r.refund.kind), ['refund', 'reversal'], 'the GL journal and the reports read the kind')
    t.same((await ledger.history('c1'))?.events.filter(e => e.event.endsWith('.recorded')).map(e => e.event), ['refund.recorded', 'reversal.recorded'], 'each with its own audit event')
    t.equal((await ledger.getCheckout('c1'))?.state, 'PAID', 'recording it changes no state by itself')
  })

  t.test('a settled case is reopened once, by a refund\'s effect or on its own, with its audit event; an open one is not', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500])
    await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'x', attentionKind: 'REFUNDED', attentionReason: 'refunded 2.00' })
    const reopen = { reopen: 'REVERSED' as const, reason: 'taken back' }
    const open = await ledger.recordRefund({ checkoutId: 'c1', tx: '7001', amount: cents(100), reference: 'RV-0', note: 'n', by: 'paypal', kind: 'reversal' }, { refuse: () => null, effect: () => reopen })
    t.equal(open.recorded && open.effect, 'none', 'an open case is not reopened')
    t.equal((await ledger.getCheckout('c1'))?.attentionKind, 'REFUNDED', 'and keeps its kind')
    await ledger.resolveAttention('c1', 'staff', 'refunded in PayPal', () => null)
    const reopened = await ledger.recordRefund({ checkoutId: 'c1', tx: '7001', amount: cents(300), reference: 'RV-1', note: 'n', by: 'paypal', kind: 'reversal' }, { refuse: () => null, effect: () => reopen })
    t.equal(reopened.recorded && reopened.effect, 'reopen')
    const checkout = await ledger.getCheckout('c1') as Checkout
    t.same([checkout.state, checkout.attentionKind, checkout.attentionReason, checkout.resolvedAt, checkout.resolvedBy, checkout.resolution], ['NEEDS_ATTENTION', 'REVERSED', 'taken back', null, null, null])
    t.same((await ledger.listCheckouts({ unresolved: true, states: ['NEEDS_ATTENTION'] })).checkouts.map(c => c.id), ['c1'], 'on the open list again')
    t.equal((await ledger.countCheckouts('')).openAttention, 1)
    const events = (await ledger.history('c1'))?.events.filter(e => e.event === 'attention.reopened') ?? []
    t.equal(events.length, 1)
    t.match(JSON.parse(events[0].detail), { kind: 'REVERSED', reason: 'taken back', reference: 'RV-1', settled: { by: 'staff', resolution: 'refunded in PayPal', kind: 'REFUNDED' } })
    t.equal(await ledger.reopenAttention('c1', reopen, {}), false, 'an open case is not reopened on its own either')
    await ledger.resolveAttention('c1', 'staff', 'chargeback accepted', () => null)
    t.equal(await ledger.reopenAttention('c1', { reopen: 'REVERSED', reason: 'again' }, { reversal: 'RV-2' }), true, 'a settled one is')
    t.equal(await ledger.reopenAttention('c1', { reopen: 'REVERSED', reason: 'again' }, { reversal: 'RV-2' }), false, 'once')
    t.equal((await ledger.history('c1'))?.events.filter(e => e.event === 'attention.reopened').length, 2)
    await paidCheckout(ledger, 'c2', '7002', [500])
    t.equal(await ledger.reopenAttention('c2', reopen, {}), false, 'a PAID checkout is no case to reopen')
    t.equal(await ledger.reopenAttention('nope', reopen, {}), false)
  })

  t.test('reportsOf reads the reports of several checkouts in one go, each as its money record has them', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500, 250])
    await paidCheckout(ledger, 'c2', '7002', [300])
    await ledger.recordPostback(incoming('c2', '7003', [300]), always({ outcome: 'DOUBLE_CHARGE', reason: 'second', to: 'NEEDS_ATTENTION', attentionKind: 'DOUBLE_CHARGE' }))
    await ledger.createCheckout(newCheckout('c3', [100]))
    await ledger.recordPostback(incoming('c3', '', null, '5'), always({ outcome: 'DECLINED', reason: 'declined', to: 'DECLINED' }))
    const found = await ledger.reportsOf(['c1', 'c2', 'c3', 'nope'])
    t.same([...found.keys()].sort(), ['c1', 'c2'], 'only checkouts with a report')
    for (const id of ['c1', 'c2']) t.same(found.get(id), (await ledger.moneyRecord(id))?.reports, `${id}: the same reports, in the same order`)
    t.same(found.get('c2')?.map(r => [r.tx, r.outcome, r.total]), [['7002', 'PAID', 300], ['7003', 'DOUBLE_CHARGE', 300]])
    t.same(found.get('c1')?.[0].items.map(i => [i.itemNo, i.amount]), [[1, 500], [2, 250]])
    t.equal((await ledger.reportsOf([])).size, 0)
  })

  t.test('a rule that throws records nothing', async t => {
    const { ledger } = await setup(t)
    await ledger.createCheckout(newCheckout('c1', [500]))
    await t.rejects(ledger.recordPostback(incoming('c1', '7001', [500]), () => { throw new Error('rule bug') }), { message: 'rule bug' })
    t.equal((await ledger.getCheckout('c1'))?.state, 'CREATED')
    t.same((await ledger.history('c1'))?.postbacks, [])
    t.equal(await ledger.countUnmatchedPostbacks(), 0)
  })

  t.test('postbacks for one checkout arriving together are decided one after another, each on the other\'s result', async t => {
    const { ledger } = await setup(t)
    await ledger.createCheckout(newCheckout('c1', [500]))
    // the rule a real service applies in spirit: the first success pays, any later different tx is a double charge
    const decide = (tx: string): DecidePostback => (checkout, earlier) => {
      if (checkout?.state === 'CREATED' && earlier.length === 0) return paid(tx)
      return { outcome: 'DOUBLE_CHARGE', reason: `second CashNet transaction ${tx}`, to: 'NEEDS_ATTENTION', attentionKind: 'DOUBLE_CHARGE' }
    }
    const results = await Promise.all(['8001', '8002', '8003'].map(async tx => await ledger.recordPostback(incoming('c1', tx, [500]), decide(tx))))
    t.same(results.map(r => r.decision.outcome).sort(), ['DOUBLE_CHARGE', 'DOUBLE_CHARGE', 'PAID'], 'exactly one is taken as the payment')
    t.equal(new Set(results.map(r => r.id)).size, 3, 'each has its own record')
    const history = await ledger.history('c1')
    t.equal(history?.postbacks.length, 3)
    t.equal((await ledger.getCheckout('c1'))?.attentionKind, 'DOUBLE_CHARGE')
  })

  t.test('a transition is compare-and-set, with its audit event', async t => {
    const { ledger, at } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500])
    t.equal(await ledger.transition({ checkoutId: 'c1', from: ['CREATED'], to: 'EXPIRED', event: 'checkout.expired' }), false, 'not in a from state: refused')
    t.equal(await ledger.transition({ checkoutId: 'nope', from: ['PAID'], to: 'POSTED', event: 'payment.posted' }), false, 'no such checkout')
    t.equal((await ledger.history('c1'))?.events.some(e => e.event === 'checkout.expired'), false, 'a refused change writes no event')
    at('2026-03-02T10:30:00.000Z')
    t.equal(await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'payment.needs_attention', attentionReason: 'why', unapplied: cents(120), detail: { reason: 'why' } }), true)
    const attention = await ledger.getCheckout('c1') as Checkout
    t.equal(attention.attentionKind, 'UNKNOWN', 'a kind is always recorded')
    t.equal(attention.unapplied, 120)
    t.equal(attention.nextAttemptAt, null, 'no longer due')
    t.equal(attention.updatedAt, '2026-03-02T10:30:00.000Z')
    const event = (await ledger.history('c1'))?.events.at(-1)
    t.same([event?.event, event?.fromState, event?.toState, JSON.parse(event?.detail ?? '{}')], ['payment.needs_attention', 'PAID', 'NEEDS_ATTENTION', { kind: 'UNKNOWN', reason: 'why' }])
    await ledger.resolveAttention('c1', 'staff', 'checked', () => null)
    t.equal(await ledger.transition({ checkoutId: 'c1', from: ['NEEDS_ATTENTION'], to: 'POSTED', event: 'payment.posted', unapplied: cents(0) }), true)
    const posted = await ledger.getCheckout('c1') as Checkout
    t.equal(posted.postedAt, '2026-03-02T10:30:00.000Z')
    t.equal(posted.resolvedAt, null, 'a state change clears a resolution')
    t.equal(posted.unapplied, 0)
  })

  t.test('a line is marked posted once, with what Alma took; postedLines reads a time range', async t => {
    const { ledger, at } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500, 250, 100])
    at('2026-03-02T11:00:00.000Z')
    await ledger.markLinePosted('c1', 1, cents(500), { feeId: 'c1-fee1' })
    await ledger.markLinePosted('c1', 1, cents(1), { feeId: 'c1-fee1', again: true })
    at('2026-03-02T12:00:00.000Z')
    await ledger.markLinePosted('c1', 2, cents(200), { feeId: 'c1-fee2' })
    await ledger.markLinePosted('c1', 3, cents(0), { feeId: 'c1-fee3', why: 'fee closed' })
    const checkout = await ledger.getCheckout('c1') as Checkout
    t.same(checkout.lines.map(l => [l.postedAmount, l.postedAt]), [[500, '2026-03-02T11:00:00.000Z'], [200, '2026-03-02T12:00:00.000Z'], [0, '2026-03-02T12:00:00.000Z']], 'the first mark stands')
    const events = (await ledger.history('c1'))?.events.filter(e => e.event === 'line.posted').map(e => JSON.parse(e.detail))
    t.same(events?.map(d => [d.line, d.posted]), [[1, 500], [2, 200], [3, 0]], 'one event per line')
    const lines = async (from: string, to: string): Promise<string[]> => (await ledger.postedLines(new Date(from), new Date(to))).map(l => `${l.checkout.id}:${l.lineNo}`)
    t.same(await lines('2026-03-02T00:00:00.000Z', '2026-03-03T00:00:00.000Z'), ['c1:1', 'c1:2'], 'lines with money only, in posting order')
    t.same(await lines('2026-03-02T11:00:00.000Z', '2026-03-02T12:00:00.000Z'), ['c1:1'], 'from is inclusive, to exclusive')
    t.same(await lines('2026-03-02T12:00:00.001Z', '2026-03-03T00:00:00.000Z'), [])
  })

  t.test('failed attempts are counted and delay the next; due postings are the PAID ones whose time has come', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500])
    await paidCheckout(ledger, 'c2', '7002', [500])
    await ledger.createCheckout(newCheckout('c3', [500]))
    t.same((await ledger.duePostings(new Date(START))).sort(), ['c1', 'c2'])
    t.equal(await ledger.recordAttempt('c1', new Date('2026-03-02T10:10:00.000Z'), 'Alma 503'), 1)
    t.equal(await ledger.recordAttempt('c1', new Date('2026-03-02T10:20:00.000Z'), 'Alma 503 again'), 2)
    const checkout = await ledger.getCheckout('c1') as Checkout
    t.equal(checkout.attempts, 2)
    t.equal(checkout.lastError, 'Alma 503 again')
    t.equal(checkout.nextAttemptAt, '2026-03-02T10:20:00.000Z')
    t.same(await ledger.duePostings(new Date('2026-03-02T10:15:00.000Z')), ['c2'], 'not before its time')
    t.same((await ledger.duePostings(new Date('2026-03-02T10:20:00.000Z'))).sort(), ['c1', 'c2'])
    const attempt = (await ledger.history('c1'))?.events.filter(e => e.event === 'posting.attempt_failed').map(e => JSON.parse(e.detail).attempt)
    t.same(attempt, [1, 2])
  })

  t.test('a requeue asks the staff rule inside the ledger, on the payment as it is then', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500])
    await ledger.recordAttempt('c1', null, 'gave up')
    await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'payment.needs_attention', attentionKind: 'ATTEMPTS_EXHAUSTED', attentionReason: 'gave up' })
    // what a staff page read, then a second charge arrives before the click
    await ledger.recordPostback(incoming('c1', '7009', [500]), always({ outcome: 'DOUBLE_CHARGE', reason: 'second', to: 'NEEDS_ATTENTION', attentionKind: 'DOUBLE_CHARGE' }))
    let seenKind: string | null = null
    const refused = await ledger.requeue('c1', 'staff', 'retry', (record) => { seenKind = record.checkout.attentionKind; return record.checkout.attentionKind === 'DOUBLE_CHARGE' ? 'double charge: record the refund' : null })
    t.equal(seenKind, 'DOUBLE_CHARGE', 'the rule saw the postback that arrived after the page was read')
    t.same(refused, { done: false, reason: 'double charge: record the refund' })
    t.equal((await ledger.getCheckout('c1'))?.state, 'NEEDS_ATTENTION', 'nothing changed')
    await ledger.recordRefund({ checkoutId: 'c1', tx: '7009', amount: cents(500), reference: 'R', note: 'n', by: 'staff' }, { refuse: () => null, effect: () => 'restore' })
    t.equal((await ledger.getCheckout('c1'))?.attentionKind, 'ATTEMPTS_EXHAUSTED', 'the earlier case is back')
    const requeued = await ledger.requeue('c1', 'staff', 'post-confirmed', () => null)
    t.equal(requeued.done && requeued.checkout.state, 'PAID')
    t.equal(requeued.done && requeued.checkout.attempts, 0, 'a fresh attempt budget')
    t.same(await ledger.duePostings(new Date(START)), ['c1'])
    const event = (await ledger.history('c1'))?.events.at(-1)
    t.same([event?.event, event?.fromState, event?.toState, JSON.parse(event?.detail ?? '{}')], ['posting.retry_requested', 'NEEDS_ATTENTION', 'PAID', { by: 'staff', action: 'post-confirmed' }])

    await ledger.createCheckout(newCheckout('c2', [500]))
    t.equal((await ledger.requeue('c2', 'staff', 'retry', () => null)).done, false, 'never a checkout CashNet did not pay')
    t.equal((await ledger.getCheckout('c2'))?.state, 'CREATED')
    t.equal((await ledger.requeue('nope', 'staff', 'retry', () => null)).done, false)
  })

  t.test('settling a case asks the staff rule inside the ledger and happens once', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500])
    t.equal((await ledger.resolveAttention('c1', 'staff', 'done', () => null)).done, false, 'a PAID payment has no case to settle')
    await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'payment.needs_attention', attentionKind: 'UNAPPLIED', attentionReason: 'fee closed' })
    t.same(await ledger.resolveAttention('c1', 'staff', 'done', () => 'not allowed'), { done: false, reason: 'not allowed' })
    t.equal((await ledger.getCheckout('c1'))?.resolvedAt, null)
    const settled = await ledger.resolveAttention('c1', 'staff', 'refunded 5.00 in CashNet', () => null)
    t.equal(settled.done && settled.checkout.resolution, 'refunded 5.00 in CashNet')
    t.equal(settled.done && settled.checkout.state, 'NEEDS_ATTENTION', 'the state stays as SPEC names it')
    t.equal((await ledger.resolveAttention('c1', 'other', 'again', () => null)).done, false, 'once')
    t.equal((await ledger.getCheckout('c1'))?.resolvedBy, 'staff')
    t.equal((await ledger.history('c1'))?.events.filter(e => e.event === 'attention.resolved').length, 1)
    await ledger.recordPostback(incoming('c1', '7002', [500]), always({ outcome: 'DOUBLE_CHARGE', reason: 'second', to: 'NEEDS_ATTENTION', attentionKind: 'DOUBLE_CHARGE' }))
    t.equal((await ledger.getCheckout('c1'))?.resolvedAt, null, 'a new reason for attention reopens it')
  })

  t.test('CREATED checkouts expire after the cut-off; PAID ones past a time are found for the alert', async t => {
    const { ledger, at } = await setup(t)
    await ledger.createCheckout(newCheckout('old', [500]))
    await paidCheckout(ledger, 'paid-old', '7001', [500])
    at('2026-03-03T10:00:00.000Z')
    await ledger.createCheckout(newCheckout('new', [500]))
    await paidCheckout(ledger, 'paid-new', '7002', [500])
    t.same(await ledger.expireCreated(new Date('2026-03-03T00:00:00.000Z')), ['old'])
    t.equal((await ledger.getCheckout('old'))?.state, 'EXPIRED')
    t.equal((await ledger.getCheckout('new'))?.state, 'CREATED')
    t.same(await ledger.expireCreated(new Date('2026-03-03T00:00:00.000Z')), [], 'once')
    t.same((await ledger.history('old'))?.events.at(-1)?.event, 'checkout.expired')
    t.same((await ledger.paidBefore(new Date('2026-03-03T00:00:00.000Z'))).map(c => c.id), ['paid-old'])
  })

  t.test('payments in progress: money taken, a line not yet in Alma, not settled; by username or primary id', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'paid', '7001', [500, 200])
    await paidCheckout(ledger, 'by-primary', '7002', [500], { userId: 'alice-old-name', primaryId: 'P-alice' })
    await paidCheckout(ledger, 'done', '7003', [500])
    await ledger.markLinePosted('done', 1, cents(500), {})
    await ledger.transition({ checkoutId: 'done', from: ['PAID'], to: 'POSTED', event: 'payment.posted' })
    await paidCheckout(ledger, 'settled', '7004', [500])
    await ledger.transition({ checkoutId: 'settled', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'x', attentionKind: 'ALMA_ERROR' })
    await ledger.resolveAttention('settled', 'staff', 'refunded', () => null)
    await paidCheckout(ledger, 'open', '7005', [500])
    await ledger.transition({ checkoutId: 'open', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'x', attentionKind: 'ALMA_ERROR' })
    await ledger.createCheckout(newCheckout('unpaid', [500]))
    await paidCheckout(ledger, 'bob', '7006', [500], { userId: 'bob', primaryId: 'P-bob' })
    await ledger.markLinePosted('paid', 1, cents(500), {})
    t.same((await ledger.paymentsInProgress('alice', 'P-alice')).map(c => c.id), ['paid', 'by-primary', 'open'])
  })

  t.test('a checkout whose money the provider holds for review is a payment in progress until the outcome, and does not expire', async t => {
    const { ledger, at } = await setup(t)
    await paidCheckout(ledger, 'paid', '7001', [500])
    await ledger.createCheckout(newCheckout('review', [500, 200]))
    await ledger.createCheckout(newCheckout('review-late', [300]))
    await ledger.createCheckout(newCheckout('unpaid', [500]))
    await ledger.createCheckout(newCheckout('denied', [400]))
    await ledger.createCheckout(newCheckout('bob-review', [500], { userId: 'bob', primaryId: 'P-bob' }))
    t.equal(await ledger.markUnderReview('review', 'CAP-1', 'paypal.capture_pending', { amount: 700 }), true, 'a CREATED checkout is marked')
    t.equal(await ledger.markUnderReview('denied', 'CAP-2', 'paypal.capture_pending', {}), true)
    t.equal(await ledger.markUnderReview('bob-review', 'CAP-3', 'paypal.capture_pending', {}), true)
    t.equal(await ledger.markUnderReview('paid', 'CAP-4', 'paypal.capture_pending', {}), false, 'a paid one is not')
    t.equal(await ledger.markUnderReview('nobody', 'CAP-5', 'paypal.capture_pending', {}), false, 'nor an unknown one')
    const review = await ledger.getCheckout('review')
    t.equal(review?.state, 'CREATED', 'no state changes')
    t.equal(review?.reviewTx, 'CAP-1')
    t.equal((await ledger.getCheckout('paid'))?.reviewTx, null)
    const pending = (await ledger.history('review'))?.events.at(-1)
    t.equal(pending?.event, 'paypal.capture_pending', 'with its audit event')
    t.match(JSON.parse(pending?.detail ?? '{}'), { tx: 'CAP-1', amount: 700, underReview: true })
    const late = (await ledger.history('paid'))?.events.at(-1)
    t.equal(late?.event, 'paypal.capture_pending', 'the event is kept even when nothing is marked')
    t.match(JSON.parse(late?.detail ?? '{}'), { tx: 'CAP-4', underReview: false })

    at('2026-03-04T10:00:00.000Z')
    t.same(await ledger.expireCreated(new Date('2026-03-04T00:00:00.000Z')), ['review-late', 'unpaid'], 'those under review do not expire')
    t.equal((await ledger.getCheckout('review'))?.state, 'CREATED')
    t.equal(await ledger.markUnderReview('review-late', 'CAP-6', 'paypal.capture_pending', {}), true, 'an EXPIRED checkout (a late approval) is marked')
    await ledger.recordPostback(incoming('denied', 'CAP-2', null, 'DECLINED'), always({ outcome: 'DECLINED', reason: 'denied', to: 'DECLINED' }))
    t.same((await ledger.paymentsInProgress('alice', 'P-alice')).map(c => c.id), ['paid', 'review', 'review-late'], 'under review, CREATED or EXPIRED, counts; declined after review does not')
    t.same((await ledger.paymentsInProgress('bob', 'P-bob')).map(c => c.id), ['bob-review'])
    // a review whose outcome never came, for the posting worker to ask the provider about: unchanged since before
    // the cut-off, CREATED or EXPIRED, oldest first; a declined one is over
    t.same((await ledger.underReviewBefore(new Date('2026-03-04T09:00:00.000Z'))).map(c => c.id), ['review', 'bob-review'])
    t.same((await ledger.underReviewBefore(new Date('2026-03-04T11:00:00.000Z'))).map(c => c.id), ['review', 'bob-review', 'review-late'])
    t.same(await ledger.underReviewBefore(new Date('2026-03-01T00:00:00.000Z')), [], 'none changed before then')

    await ledger.recordPostback(incoming('review', 'CAP-1', [500, 200]), always(paid('CAP-1')))
    t.equal((await ledger.getCheckout('review'))?.state, 'PAID', 'the outcome changes the state as for any checkout')
    t.equal((await ledger.getCheckout('review'))?.reviewTx, 'CAP-1', 'the mark is kept')
    t.equal(await ledger.markUnderReview('review', 'CAP-1', 'paypal.capture_pending', {}), false, 'a PENDING reported after the outcome marks nothing')
    t.same((await ledger.paymentsInProgress('alice', 'P-alice')).map(c => c.id), ['paid', 'review', 'review-late'], 'now in progress as a PAID one')
    t.same((await ledger.underReviewBefore(new Date('2026-03-04T11:00:00.000Z'))).map(c => c.id), ['bob-review', 'review-late'], 'a paid one is no longer asked about')
  })

  t.test('a review an instance of an older version recorded as its audit event only is held all the same: in progress, never expired, marked by the sweep once', async t => {
    // Beside this version during a rolling upgrade, an instance from before the review mark (SQLite migration 12,
    // PostgreSQL 8) writes a PENDING capture as the audit event alone, never reviewTx (as ledger.audit writes it).
    const now = (): Date => clock
    let clock = new Date(START)
    const ledger = await makeLedger({ now })
    const other = await makeLedger({ now, sameAs: ledger })
    t.teardown(async () => { await other.close(); await ledger.close() })
    const oldPending = async (id: string, tx?: string): Promise<void> => {
      await ledger.audit(id, 'paypal.capture_pending', { ...(tx === undefined ? {} : { tx }), amount: 500, currency: 'USD', reason: 'ECHECK' })
    }
    await ledger.createCheckout(newCheckout('held', [500]))
    await ledger.createCheckout(newCheckout('held-expired', [300]))
    await ledger.createCheckout(newCheckout('no-tx', [200]))
    await ledger.createCheckout(newCheckout('declined', [400]))
    await ledger.createCheckout(newCheckout('abandoned', [100]))
    await ledger.createCheckout(newCheckout('bob-held', [500], { userId: 'bob', primaryId: 'P-bob' }))
    await paidCheckout(ledger, 'paid', '7001', [600])
    clock = new Date('2026-03-02T10:30:00.000Z')
    await oldPending('held', 'CAP-1')
    await oldPending('held', 'CAP-1b') // reported again (another capture of the order): the latest counts
    await oldPending('no-tx')
    await oldPending('declined', 'CAP-3')
    await oldPending('bob-held', 'CAP-4')
    await oldPending('paid', 'CAP-5') // a late report for a checkout already paid
    // the older instance's own expiry knows nothing of reviews, and the outcome of one is recorded by it as ever
    await ledger.createCheckout(newCheckout('late', [300]))
    await oldPending('held-expired', 'CAP-2')
    t.equal(await ledger.transition({ checkoutId: 'held-expired', from: ['CREATED'], to: 'EXPIRED', event: 'checkout.expired' }), true)
    await ledger.recordPostback(incoming('declined', 'CAP-3', null, 'DECLINED'), always({ outcome: 'DECLINED', reason: 'denied', to: 'DECLINED' }))

    // before any sweep: the fines page already holds them, with the capture they wait for
    const inProgress = await ledger.paymentsInProgress('alice', 'P-alice')
    t.same(inProgress.map(c => [c.id, c.reviewTx]), [['held', 'CAP-1b'], ['held-expired', 'CAP-2'], ['no-tx', ''], ['paid', null]],
      'unmarked reviews, CREATED or EXPIRED, count (the tx of the latest event; none said: empty); declined, abandoned do not')
    t.same((await ledger.paymentsInProgress('someone', 'P-bob')).map(c => c.id), ['bob-held'], 'found by primary id too')
    t.same((await ledger.paymentsInProgress('bob', 'P-nobody')).map(c => c.id), ['bob-held'], 'and by username')
    t.equal((await ledger.getCheckout('held'))?.reviewTx, null, 'reading them marked nothing')

    clock = new Date('2026-03-04T10:00:00.000Z')
    t.same(await ledger.expireCreated(new Date('2026-03-04T00:00:00.000Z')), ['abandoned', 'late'], 'an unmarked review does not expire either')
    t.equal((await ledger.getCheckout('held'))?.state, 'CREATED')

    // two instances sweeping at once: each checkout marked once, by one of them
    const swept = await Promise.all([ledger.markReviewsFromAudit(), other.markReviewsFromAudit()])
    t.same(swept.flat().sort(), ['bob-held', 'held', 'held-expired', 'no-tx'], 'every unmarked review, each once')
    t.same(await ledger.markReviewsFromAudit(), [], 'idempotent: nothing left to mark')
    t.same(await Promise.all(['held', 'held-expired', 'no-tx', 'bob-held', 'declined', 'paid', 'abandoned'].map(async id => (await ledger.getCheckout(id))?.reviewTx)),
      ['CAP-1b', 'CAP-2', '', 'CAP-4', null, null, null], 'marked with the latest event\'s tx; an outcome or no review marks nothing')
    t.same(await Promise.all(['held', 'held-expired'].map(async id => (await ledger.getCheckout(id))?.state)), ['CREATED', 'EXPIRED'], 'no state changes')
    const marked = (await ledger.history('held'))?.events.filter(e => e.event === 'checkout.review_marked') ?? []
    t.equal(marked.length, 1, 'one audit event for the mark')
    t.match(JSON.parse(marked[0]?.detail ?? '{}'), { tx: 'CAP-1b', from: 'paypal.capture_pending' })
    t.same((await ledger.paymentsInProgress('alice', 'P-alice')).map(c => [c.id, c.reviewTx]), [['held', 'CAP-1b'], ['held-expired', 'CAP-2'], ['no-tx', ''], ['paid', null]], 'in progress as before, now by the mark')
    t.same((await ledger.underReviewBefore(new Date('2026-03-04T11:00:00.000Z'))).map(c => c.id).sort(), ['bob-held', 'held', 'held-expired', 'no-tx'], 'and asked about as any review')

    // the outcome, recorded by either version, ends it as for any review
    await ledger.recordPostback(incoming('held', 'CAP-1b', [500]), always(paid('CAP-1b')))
    t.same((await ledger.paymentsInProgress('alice', 'P-alice')).map(c => [c.id, c.state]), [['held', 'PAID'], ['held-expired', 'EXPIRED'], ['no-tx', 'CREATED'], ['paid', 'PAID']])
  })

  t.test('a patron\'s payments: this username only, payments made or tried, newest first, at most the limit', async t => {
    const { ledger, at } = await setup(t)
    await paidCheckout(ledger, 'first', '7001', [500])
    at('2026-03-02T11:00:00.000Z')
    await ledger.createCheckout(newCheckout('declined', [300]))
    await ledger.recordPostback(incoming('declined', '7002', null, '5'), always({ outcome: 'DECLINED', reason: 'declined', to: 'DECLINED' }))
    at('2026-03-02T12:00:00.000Z')
    await ledger.createCheckout(newCheckout('abandoned', [500]))
    await ledger.createCheckout(newCheckout('cancelled', [500]))
    await ledger.transition({ checkoutId: 'cancelled', from: ['CREATED'], to: 'CANCELLED', event: 'x' })
    await paidCheckout(ledger, 'posted', '7003', [500])
    await ledger.markLinePosted('posted', 1, cents(500), {})
    await ledger.transition({ checkoutId: 'posted', from: ['PAID'], to: 'POSTED', event: 'payment.posted' })
    at('2026-03-02T13:00:00.000Z')
    await paidCheckout(ledger, 'attention', '7004', [500])
    await ledger.transition({ checkoutId: 'attention', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'x', attentionKind: 'ALMA_ERROR' })
    await paidCheckout(ledger, 'same-primary-other-name', '7005', [500], { userId: 'alice2', primaryId: 'P-alice' })
    await paidCheckout(ledger, 'bob', '7006', [500], { userId: 'bob', primaryId: 'P-bob' })
    t.same((await ledger.patronPayments('alice', 50)).map(c => c.id), ['attention', 'posted', 'declined', 'first'])
    t.same((await ledger.patronPayments('alice', 2)).map(c => c.id), ['attention', 'posted'], 'the limit')
    t.same((await ledger.patronPayments('bob', 50)).map(c => c.id), ['bob'])
    t.same(await ledger.patronPayments('ALICE', 50), [], 'exactly this username')
    t.equal((await ledger.patronPayments('alice', 50))[1].lines.length, 1, 'with their lines')
  })

  t.test('a payer is an identifier and how it identifies them: a username and a pay link\'s primary id of the same text are two payers', async t => {
    const { ledger, at } = await setup(t)
    // zed's username is "alice"; Alice's Alma primary id is "alice" too, and she pays from a pay link
    await paidCheckout(ledger, 'zed-1', '7001', [500], { userId: 'alice', primaryId: 'zed' })
    at('2026-03-02T11:00:00.000Z')
    await paidCheckout(ledger, 'alice-1', '7002', [500], { userId: 'alice', userIdKind: 'primary-id', primaryId: 'alice' })
    t.equal((await ledger.getCheckout('zed-1'))?.userIdKind, 'username', 'a username by default')
    t.equal((await ledger.getCheckout('alice-1'))?.userIdKind, 'primary-id', 'kept as given')
    t.same((await ledger.patronPayments('alice', 50)).map(c => c.id), ['zed-1'], 'history: the username\'s only (kind by default)')
    t.same((await ledger.patronPayments('alice', 50, 'username')).map(c => c.id), ['zed-1'])
    t.same((await ledger.patronPayments('alice', 50, 'primary-id')).map(c => c.id), ['alice-1'], 'the pay link\'s only')
    t.equal((await ledger.latestCheckoutForUser('alice'))?.id, 'zed-1', 'the latest of the username, though the other is newer')
    t.equal((await ledger.latestCheckoutForUser('alice', 'primary-id'))?.id, 'alice-1')
    t.same((await ledger.paymentsInProgress('alice', 'zed', 'username')).map(c => c.id), ['zed-1'], 'in progress: the username\'s, and its primary id\'s')
    t.same((await ledger.paymentsInProgress('alice', 'alice', 'primary-id')).map(c => c.id), ['alice-1'])
  })

  t.test('pay links: recorded with their audit event, listed per patron newest first, revoked once, their events found by link', async t => {
    const { ledger, at } = await setup(t)
    const link = (linkId: string, primaryId: string, issuedAt: string): Parameters<Ledger['recordPayLink']>[0] =>
      ({ linkId, patronId: primaryId, primaryId, issuedBy: 'staff', issuedAt: new Date(issuedAt), expiresAt: new Date(Date.parse(issuedAt) + 72 * 3600_000) })
    // ids with '_' and '%'-free base64url, as issuePayLink makes them; one differs from another only where LIKE would match any character
    await ledger.recordPayLink(link('AAAAAAAAAAAAAAAAAAAA_1', 'P-alice', '2026-03-02T10:00:00.000Z'), { to: 'alice@example.edu' })
    await ledger.recordPayLink(link('AAAAAAAAAAAAAAAAAAAAx1', 'P-alice', '2026-03-02T11:00:00.000Z'), {})
    await ledger.recordPayLink(link('BBBBBBBBBBBBBBBBBBBB-2', 'P-bob', '2026-03-02T10:30:00.000Z'), {})
    t.same((await ledger.payLinksFor('P-alice', 10)).map(l => l.linkId), ['AAAAAAAAAAAAAAAAAAAAx1', 'AAAAAAAAAAAAAAAAAAAA_1'], 'newest first, this patron only')
    t.same((await ledger.payLinksFor('P-alice', 1)).map(l => l.linkId), ['AAAAAAAAAAAAAAAAAAAAx1'], 'the limit')
    t.match(await ledger.getPayLink('AAAAAAAAAAAAAAAAAAAA_1'), {
      linkId: 'AAAAAAAAAAAAAAAAAAAA_1',
      patronId: 'P-alice',
      primaryId: 'P-alice',
      issuedBy: 'staff',
      issuedAt: '2026-03-02T10:00:00.000Z',
      expiresAt: '2026-03-05T10:00:00.000Z',
      revokedBy: null,
      revokedAt: null
    })
    t.equal(await ledger.getPayLink('nope'), undefined)
    at('2026-03-02T12:00:00.000Z')
    t.equal(await ledger.revokePayLink('AAAAAAAAAAAAAAAAAAAA_1', 'desk1'), true)
    t.equal(await ledger.revokePayLink('AAAAAAAAAAAAAAAAAAAA_1', 'desk2'), false, 'once')
    t.equal(await ledger.revokePayLink('nope', 'desk1'), false)
    t.match(await ledger.getPayLink('AAAAAAAAAAAAAAAAAAAA_1'), { revokedBy: 'desk1', revokedAt: '2026-03-02T12:00:00.000Z' })
    await ledger.audit(null, 'paylink.used', { linkId: 'AAAAAAAAAAAAAAAAAAAA_1', peer: '192.0.2.1' })
    const events = await ledger.payLinkEvents('AAAAAAAAAAAAAAAAAAAA_1')
    t.same(events.map(e => e.event), ['paylink.issued', 'paylink.revoked', 'paylink.used'], 'oldest first, only this link\'s')
    t.match(JSON.parse(events[0].detail), { linkId: 'AAAAAAAAAAAAAAAAAAAA_1', by: 'staff', to: 'alice@example.edu' })
    t.equal(events[0].checkoutId, null)
    t.same((await ledger.payLinkEvents('AAAAAAAAAAAAAAAAAAAAx1')).map(e => e.event), ['paylink.issued'])
  })

  t.test('the staff list filters by state, search and unresolved, counts each state, and pages', async t => {
    const { ledger, at } = await setup(t)
    at('2026-03-02T10:00:00.000Z')
    await paidCheckout(ledger, 'a1', '7001', [500], { userId: 'alice', primaryId: 'P-alice', patronName: 'Alice 100% Able' })
    at('2026-03-02T10:01:00.000Z')
    await ledger.createCheckout(newCheckout('b1', [500], { userId: 'bob', primaryId: 'P-bob', patronName: 'Bob Baker' }))
    at('2026-03-02T10:02:00.000Z')
    await paidCheckout(ledger, 'c1', '7003', [500], { userId: 'carol', primaryId: 'P-carol', patronName: 'Carol_Cole' })
    await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'x', attentionKind: 'ALMA_ERROR' })
    at('2026-03-02T10:03:00.000Z')
    await paidCheckout(ledger, 'd1', '7004', [500], { userId: 'dave', primaryId: 'P-dave', patronName: 'Dave Dunn' })
    await ledger.transition({ checkoutId: 'd1', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'x', attentionKind: 'ALMA_ERROR' })
    await ledger.resolveAttention('d1', 'staff', 'refunded', () => null)
    await ledger.recordPostback(incoming('b1', '7777', [500]), always({ outcome: 'TX_REUSED', reason: 'r' }))
    const ids = async (filter: Parameters<Ledger['listCheckouts']>[0]): Promise<string[]> => (await ledger.listCheckouts(filter)).checkouts.map(c => c.id)
    t.same(await ids({}), ['d1', 'c1', 'b1', 'a1'], 'newest first')
    t.same(await ids({ states: ['NEEDS_ATTENTION'] }), ['d1', 'c1'])
    t.same(await ids({ states: ['NEEDS_ATTENTION'], unresolved: true }), ['c1'])
    t.same(await ids({ states: ['PAID', 'CREATED'] }), ['b1', 'a1'])
    t.same(await ids({ search: 'P-bob' }), ['b1'], 'by primary id')
    t.same(await ids({ search: 'carol' }), ['c1'], 'by username')
    t.same(await ids({ search: '7004' }), ['d1'], 'by tx')
    t.same(await ids({ search: '7777' }), ['b1'], 'by a tx one of its postbacks carried')
    t.same(await ids({ search: 'a1' }), ['a1'], 'by checkout id')
    t.same(await ids({ search: 'baker' }), ['b1'], 'by part of the name')
    t.same(await ids({ search: '100%' }), ['a1'], 'a % in the search is a character, not a wildcard')
    t.same(await ids({ search: '_' }), ['c1'], 'so is _')
    t.same(await ids({ search: 'nobody' }), [])
    const page = await ledger.listCheckouts({ limit: 2, offset: 1 })
    t.same([page.checkouts.map(c => c.id), page.total], [['c1', 'b1'], 4], 'a page and the total')
    const none = await ledger.listCheckouts({ limit: 0 })
    t.same([none.checkouts, none.total], [[], 4], 'a count only')
    const counts = await ledger.countCheckouts('')
    t.same(counts.byState, { CREATED: 1, PAID: 1, POSTED: 0, DECLINED: 0, CANCELLED: 0, EXPIRED: 0, NEEDS_ATTENTION: 2 })
    t.equal(counts.openAttention, 1, 'settled cases are not open')
    t.same((await ledger.countCheckouts('carol')).byState.NEEDS_ATTENTION, 1, 'counts follow the search')
  })

  t.test('the CSV pages: newest first, each row once, however many share a creation time', async t => {
    const { ledger, at } = await setup(t)
    const created: string[] = []
    for (let i = 0; i < 23; i++) {
      at(`2026-03-02T10:0${Math.floor(i / 5)}:00.000Z`)
      const id = `k${String(i).padStart(2, '0')}`
      created.push(id)
      await ledger.createCheckout(newCheckout(id, [100]))
    }
    const seen: string[] = []
    let after: PageCursor | null = null
    for (;;) {
      const page = await ledger.checkoutPage({}, after, 4)
      if (page.length === 0) break
      t.ok(page.length <= 4)
      t.notOk('lines' in page[0], 'rows without their lines')
      seen.push(...page.map(r => r.id))
      after = page[page.length - 1].cursor
    }
    t.same(seen, [...created].reverse())
    const paidOnly = await ledger.checkoutPage({ states: ['PAID'] }, null, 10)
    t.same(paidOnly, [])
  })

  t.test('the history holds the Alma calls, audit events and postbacks; reconciliation finds what was touched', async t => {
    const { ledger, at } = await setup(t)
    await paidCheckout(ledger, 'old', '7001', [500])
    await ledger.createCheckout(newCheckout('quiet', [500]))
    at('2026-03-05T09:00:00.000Z')
    await paidCheckout(ledger, 'c1', '7002', [500])
    await ledger.recordAlmaCall({ checkoutId: 'c1', at: '2026-03-05T09:00:01.000Z', method: 'POST', path: '/users/P/fees/f/pay', status: 200, errorCode: '', errorMessage: '', trackingId: 'T1', durationMs: 42 })
    await ledger.audit('c1', 'line.pay_started', { line: 1, amount: 500 })
    await ledger.audit(null, 'service.note', { any: 'thing' })
    at('2026-03-05T10:00:00.000Z')
    await ledger.recordPostback(incoming('old', '7001', [500]), always({ outcome: 'DUPLICATE', reason: 'again' }))
    const history = await ledger.history('c1')
    t.same(history?.almaCalls.map(c => [c.method, c.path, c.status, c.trackingId, c.durationMs]), [['POST', '/users/P/fees/f/pay', 200, 'T1', 42]])
    const started = history?.events.find(e => e.event === 'line.pay_started')
    t.same(JSON.parse(started?.detail ?? '{}'), { line: 1, amount: 500 })
    t.equal(await ledger.history('nope'), undefined)
    const touched = (await ledger.checkoutsTouchedSince(new Date('2026-03-05T00:00:00.000Z'))).map(c => c.id)
    t.same(touched, ['old', 'c1'], 'paid or changed since, or sent a postback since; oldest first')
  })

  t.test('open attention: every NEEDS_ATTENTION case staff have not resolved, however old, oldest first', async t => {
    const { ledger, at } = await setup(t)
    await paidCheckout(ledger, 'stuck', '7001', [500])
    await ledger.transition({ checkoutId: 'stuck', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'x', attentionKind: 'ALMA_ERROR', attentionReason: 'Alma refused' })
    await paidCheckout(ledger, 'settled', '7002', [500])
    await ledger.transition({ checkoutId: 'settled', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'x', attentionKind: 'ALMA_ERROR' })
    await ledger.resolveAttention('settled', 'staff', 'refunded', () => null)
    await paidCheckout(ledger, 'paid', '7003', [500])
    await ledger.createCheckout(newCheckout('pending', [500]))
    at('2026-06-01T00:00:00.000Z')
    await paidCheckout(ledger, 'later', '7004', [300])
    await ledger.transition({ checkoutId: 'later', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'x', attentionKind: 'UNAPPLIED' })
    t.same((await ledger.openAttention()).map(c => [c.id, c.state, c.resolvedAt]), [['stuck', 'NEEDS_ATTENTION', null], ['later', 'NEEDS_ATTENTION', null]])
    t.same(await ledger.checkoutsTouchedSince(new Date('2026-05-01T00:00:00.000Z')).then(cs => cs.map(c => c.id)), ['later'], 'the window alone would miss the old one')
  })

  t.test('the ledger says when it can take writes', async t => {
    const { ledger } = await setup(t)
    t.equal(await ledger.writable(), true)
  })

  t.test('a posting is claimed by one holder at a time, only when PAID, and the fence grows with every claim', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500])
    await ledger.createCheckout(newCheckout('c2', [500]))
    const a = await ledger.claimPosting('c1', 'A', 60_000)
    t.ok(a !== null, 'the first holder gets it')
    t.equal(a?.holder, 'A')
    t.equal(a?.checkoutId, 'c1')
    t.equal(a?.expiresAt.toISOString(), '2026-03-02T10:01:00.000Z', 'the lease runs from the ledger\'s clock')
    t.equal(await ledger.claimPosting('c1', 'B', 60_000), null, 'a second holder is refused while the lease is live')
    t.equal(await ledger.claimPosting('c1', 'A', 60_000), null, 'the holder itself cannot claim it twice')
    t.equal(await ledger.claimPosting('c2', 'A', 60_000), null, 'a CREATED checkout has no posting to claim')
    t.equal(await ledger.claimPosting('nope', 'A', 60_000), null)
    t.same(await ledger.duePostings(new Date(START)), [], 'a posting held under a live lease is not due')
    await ledger.releasePosting(a as NonNullable<typeof a>)
    t.same(await ledger.duePostings(new Date(START)), ['c1'], 'released, it is due again')
    const b = await ledger.claimPosting('c1', 'B', 60_000)
    t.equal(b?.fence, (a?.fence ?? 0) + 1, 'released, another may claim it at once, under the next fence')
    t.equal(await ledger.renewPosting(a as NonNullable<typeof a>, 60_000), false, 'the released lease cannot be renewed')
    t.equal(await ledger.renewPosting(b as NonNullable<typeof b>, 60_000), true)
  })

  t.test('a holder that does not know its fence releases its own lease by name, and no one else\'s', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500])
    await paidCheckout(ledger, 'c2', '7002', [500])
    const a = await ledger.claimPosting('c1', 'A', 60_000) as NonNullable<Awaited<ReturnType<Ledger['claimPosting']>>>
    await ledger.claimPosting('c2', 'B', 60_000)
    t.equal(await ledger.releaseHeldBy('c1', 'B'), false, 'B holds no lease on c1: nothing released')
    t.equal(await ledger.releaseHeldBy('c2', 'A'), false, 'nor does A on c2')
    t.same(await ledger.duePostings(new Date(START)), [], 'both leases still live')
    t.equal(await ledger.releaseHeldBy('c1', 'A'), true, 'A releases its own, without its fence')
    t.same(await ledger.duePostings(new Date(START)), ['c1'], 'released, it is due again')
    t.equal(await ledger.releaseHeldBy('c1', 'A'), false, 'twice: nothing more to release')
    t.equal(await ledger.renewPosting(a, 60_000), false, 'the released lease cannot be renewed')
    const again = await ledger.claimPosting('c1', 'C', 60_000)
    t.equal(again?.fence, a.fence + 1, 'claimed anew under the next fence')
    t.equal(await ledger.releaseHeldBy('c3', 'A'), false, 'an unknown checkout: nothing')
  })

  t.test('a lease that expires may be taken over; the old holder can neither renew it nor write under its fence', async t => {
    const { ledger, at } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500, 250])
    const a = await ledger.claimPosting('c1', 'A', 60_000) as NonNullable<Awaited<ReturnType<Ledger['claimPosting']>>>
    at('2026-03-02T10:00:40.000Z')
    t.equal(await ledger.renewPosting(a, 60_000), true, 'renewed while live')
    at('2026-03-02T10:01:20.000Z')
    t.equal(await ledger.claimPosting('c1', 'B', 60_000), null, 'the renewal moved the expiry on (10:01:40)')
    t.same(await ledger.duePostings(new Date('2026-03-02T10:01:20.000Z')), [])
    at('2026-03-02T10:01:40.000Z')
    t.same(await ledger.duePostings(new Date('2026-03-02T10:01:40.000Z')), ['c1'], 'expired, it is due again')
    const b = await ledger.claimPosting('c1', 'B', 60_000) as NonNullable<Awaited<ReturnType<Ledger['claimPosting']>>>
    t.equal(b.fence, a.fence + 1)
    t.equal(await ledger.renewPosting(a, 60_000), false, 'expired and taken: lost')

    const before = await ledger.history('c1')
    const call = { checkoutId: 'c1', at: START, method: 'POST', path: '/users/P-alice/fees/c1-fee1', status: 200, errorCode: '', errorMessage: '', trackingId: '', durationMs: 5 }
    await t.rejects(ledger.markLinePosted('c1', 1, cents(500), { feeId: 'c1-fee1' }, a.fence), { name: 'LeaseLost', message: /checkout c1 \(fence \d+\) was lost/ }, 'markLinePosted under the old fence')
    await t.rejects(ledger.recordAttempt('c1', null, 'Alma 503', a.fence), { name: 'LeaseLost', message: /checkout c1 \(fence \d+\) was lost/ }, 'recordAttempt under the old fence')
    await t.rejects(ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'POSTED', event: 'payment.posted' }, a.fence), { name: 'LeaseLost', message: /checkout c1 \(fence \d+\) was lost/ }, 'a transition from PAID under the old fence')
    await t.rejects(ledger.recordAlmaCall(call, a.fence), { name: 'LeaseLost', message: /checkout c1 \(fence \d+\) was lost/ }, 'recordAlmaCall under the old fence')
    t.same(await ledger.history('c1'), before, 'the stale holder wrote nothing at all')

    await ledger.markLinePosted('c1', 1, cents(500), { feeId: 'c1-fee1' }, b.fence)
    await ledger.recordAlmaCall(call, b.fence)
    t.equal(await ledger.recordAttempt('c1', null, 'Alma 503', b.fence), 1)
    t.equal(await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'payment.needs_attention', attentionKind: 'ALMA_ERROR', attentionReason: 'x' }, b.fence), true)
    const after = await ledger.history('c1')
    t.equal(after?.checkout.lines[0].postedAmount, 500, 'the holder\'s writes are taken')
    t.equal(after?.almaCalls.length, 1)
    t.equal(after?.checkout.state, 'NEEDS_ATTENTION')
    t.equal(await ledger.claimPosting('c1', 'C', 60_000), null, 'no longer PAID: nothing to claim')
  })

  t.test('writes without a fence are not fenced (staff and postbacks); a fence never claimed is refused', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '7001', [500])
    await t.rejects(ledger.markLinePosted('c1', 1, cents(500), {}, 1), { name: 'LeaseLost', message: /checkout c1 \(fence 1\)/ }, 'no claim yet: fence 1 is nobody\'s')
    t.equal((await ledger.getCheckout('c1'))?.lines[0].postedAt, null)
    await ledger.claimPosting('c1', 'A', 60_000)
    await ledger.markLinePosted('c1', 1, cents(500), {})
    t.equal((await ledger.getCheckout('c1'))?.lines[0].postedAmount, 500)
  })

  t.test('sessions: created, found live, touched at most once per interval, ended by the absolute or idle limit, never revived', async t => {
    const { ledger } = await setup(t)
    const t0 = Date.parse(START)
    const limits = { idleMs: 5 * 60_000, touchEveryMs: 60_000 }
    const key = 'a'.repeat(64)
    t.same(await ledger.touchSession(key, new Date(t0), limits), { found: false }, 'an unknown key: not found')
    await ledger.createSession({ idHash: key, username: 'alice', kind: 'userobject', payLink: null, createdAt: t0, expiresAt: t0 + 30 * 60_000 })
    const fresh = await ledger.touchSession(key, new Date(t0 + 1000), limits)
    t.same(fresh, { found: true, state: 'live', session: { username: 'alice', kind: 'userobject', payLink: null, createdAt: t0, lastSeen: t0, expiresAt: t0 + 30 * 60_000, revokedAt: null } },
      'live; lastSeen starts at createdAt and is not written within the touch interval')
    const touched = await ledger.touchSession(key, new Date(t0 + 4 * 60_000), limits)
    t.equal(touched.found && touched.session.lastSeen, t0 + 4 * 60_000, 'a touch once the interval has passed moves lastSeen on')
    const read = await ledger.touchSession(key, new Date(t0 + 4 * 60_000 + 30_000), limits)
    t.equal(read.found && read.session.lastSeen, t0 + 4 * 60_000, 'and is kept: the next lookup within the interval sees it, unwritten')
    t.equal((await ledger.touchSession(key, new Date(t0 + 8 * 60_000), limits) as { state: string }).state, 'live', '4 minutes after the last touch: live (idle limit 5)')
    const idle = await ledger.touchSession(key, new Date(t0 + 13 * 60_000), limits)
    t.equal(idle.found && idle.state, 'idle', '5 minutes without a touch: idle')
    t.equal(idle.found && idle.session.lastSeen, t0 + 8 * 60_000, 'returned as it was: a lookup of an idle session writes nothing')
    const still = await ledger.touchSession(key, new Date(t0 + 14 * 60_000), limits)
    t.equal(still.found && still.state, 'idle', 'and it stays idle (a lookup cannot revive it)')
    t.equal(still.found && still.session.lastSeen, t0 + 8 * 60_000)

    const key2 = 'b'.repeat(64)
    await ledger.createSession({ idHash: key2, username: 'bob', kind: 'primo', payLink: null, createdAt: t0, expiresAt: t0 + 10 * 60_000 })
    for (const minute of [2, 4, 6, 8]) await ledger.touchSession(key2, new Date(t0 + minute * 60_000), limits)
    const expired = await ledger.touchSession(key2, new Date(t0 + 10 * 60_000), limits)
    t.equal(expired.found && expired.state, 'expired', 'kept alive by use, it still ends at its absolute expiry')
    t.equal(expired.found && expired.session.lastSeen, t0 + 8 * 60_000, 'an expired session is not touched')

    const ended = await ledger.endSession(key2)
    t.equal(ended?.username, 'bob', 'ending a session returns it')
    t.equal(await ledger.endSession(key2), undefined, 'ended once')
    t.same(await ledger.touchSession(key2, new Date(t0), limits), { found: false }, 'an ended session is not found, at any time')
  })

  t.test('sessions: a pay link\'s are ended together; the ended are purged; every ledger on the store sees the same', async t => {
    const t0 = Date.parse(START)
    const now = (): Date => new Date(t0)
    const first = await makeLedger({ now })
    const second = await makeLedger({ now, sameAs: first })
    t.teardown(async () => { await second.close(); await first.close() })
    const limits = { idleMs: 20 * 60_000, touchEveryMs: 60_000 }
    const session = (key: string, payLink: string | null, expiresAt = t0 + 60 * 60_000): Parameters<Ledger['createSession']>[0] =>
      ({ idHash: key, username: 'dana', kind: payLink === null ? 'userobject' : 'pay-link', payLink, createdAt: t0, expiresAt })
    await first.createSession(session('1'.repeat(64), 'linkA'))
    await first.createSession(session('2'.repeat(64), 'linkA'))
    await first.createSession(session('3'.repeat(64), 'linkB'))
    await first.createSession(session('4'.repeat(64), null))
    await first.createSession(session('5'.repeat(64), null, t0 + 5 * 60_000))
    const seen = await second.touchSession('1'.repeat(64), new Date(t0 + 1000), limits)
    t.match(seen, { found: true, state: 'live', session: { username: 'dana', kind: 'pay-link', payLink: 'linkA' } }, 'a session made on one ledger is found on the other')
    t.equal(await second.endPayLinkSessions('linkA'), 2, 'both sessions of the revoked link end')
    t.equal(await second.endPayLinkSessions('linkA'), 0, 'once')
    for (const key of ['1', '2']) t.match(await first.touchSession(key.repeat(64), new Date(t0 + 61_000), limits), { found: true, state: 'revoked', session: { payLink: 'linkA', lastSeen: t0 } }, `ended on the other ledger too, kept and marked, never touched again (${key})`)
    t.equal(await first.endSession('1'.repeat(64)), undefined, 'a sign-out leaves a revoked link\'s session as it is')
    t.equal((await first.touchSession('3'.repeat(64), new Date(t0 + 1000), limits) as { state: string }).state, 'live', 'another link\'s session is untouched')
    t.equal(await second.endSession('4'.repeat(64)).then(s => s?.kind), 'userobject', 'a sign-out on one ledger')
    t.same(await first.touchSession('4'.repeat(64), new Date(t0 + 1000), limits), { found: false }, 'ends the session for the other')

    t.equal(await first.purgeSessions(new Date(t0 + 6 * 60_000), limits.idleMs), 1, 'the purge removes the session past its expiry')
    t.equal((await first.touchSession('3'.repeat(64), new Date(t0 + 6 * 60_000), limits) as { state: string }).state, 'live', 'and keeps a live one')
    t.equal(await first.purgeSessions(new Date(t0 + 6 * 60_000 + limits.idleMs), limits.idleMs), 1, 'a session idle for the idle limit is removed')
    t.same(await second.touchSession('3'.repeat(64), new Date(t0), limits), { found: false })
    t.equal((await first.touchSession('1'.repeat(64), new Date(t0 + 6 * 60_000 + limits.idleMs), limits) as { state: string }).state, 'revoked', 'a revoked link\'s session is kept past the idle limit')
    t.equal(await first.purgeSessions(new Date(t0 + 60 * 60_000), limits.idleMs), 2, 'and removed at its absolute end')
  })

  t.test('the Alma call budget: at most `limit` calls per window per key, however many ledgers share the store', async t => {
    let clock = new Date(START)
    const now = (): Date => clock
    const first = await makeLedger({ now })
    const second = await makeLedger({ now, sameAs: first })
    t.teardown(async () => { await second.close(); await first.close() })
    const granted: Array<{ at: number, by: number }> = []
    // 40 steps of 100 ms, each step both ledgers asking twice: far more than 3 a second are asked for
    for (let step = 0; step < 40; step++) {
      clock = new Date(Date.parse(START) + step * 100)
      for (const [by, ledger] of [first, second, first, second].entries()) {
        const answer = await ledger.reserveAlmaCalls('https://alma.example/v1#k1', 3, 1000, 1, by % 2 === 0 ? 'process-a' : 'process-b')
        if (answer.granted === 1) granted.push({ at: clock.getTime(), by: by % 2 })
        else t.ok(answer.granted === 0 && answer.retryInMs > 0 && answer.retryInMs <= 1001, `refused with a wait within the window (${answer.retryInMs} ms)`)
      }
    }
    let most = 0
    for (const g of granted) most = Math.max(most, granted.filter(o => o.at >= g.at && o.at < g.at + 1000).length)
    t.equal(most, 3, 'never more than 3 granted in any 1000 ms, across both ledgers')
    t.ok(granted.some(g => g.by === 0) && granted.some(g => g.by === 1), 'both ledgers were granted calls')
    t.ok(granted.length >= 10, `the budget is used again as the window moves (${granted.length} granted in 4 s)`)
    t.same(await first.reserveAlmaCalls('https://alma.example/v1#k2', 3, 1000, 1, 'process-a'), { granted: 1, retryInMs: 0 }, 'another key has its own budget')
    const refused = await second.reserveAlmaCalls('https://alma.example/v1#k1', 3, 1000, 1, 'process-b')
    t.equal(refused.granted, 0)
    clock = new Date(clock.getTime() + refused.retryInMs)
    t.same(await second.reserveAlmaCalls('https://alma.example/v1#k1', 3, 1000, 1, 'process-b'), { granted: 1, retryInMs: 0 }, 'granted once the wait it was told has passed')
  })

  t.test('the Alma call budget grants several calls in one question, never past the limit, and counts them all', async t => {
    let clock = new Date(START)
    const now = (): Date => clock
    const first = await makeLedger({ now })
    const second = await makeLedger({ now, sameAs: first })
    t.teardown(async () => { await second.close(); await first.close() })
    const key = 'https://alma.example/v1#batch'
    t.same(await first.reserveAlmaCalls(key, 20, 1000, 8, 'process-a'), { granted: 8, retryInMs: 0 }, 'alone: eight asked, eight granted')
    clock = new Date(Date.parse(START) + 300)
    // two processes asking for more than is left, in turn: each takes half the room left, never past the limit
    const turns: number[] = []
    for (const [ledger, holder] of [[second, 'process-b'], [first, 'process-a'], [second, 'process-b'], [first, 'process-a']] as const) {
      turns.push((await ledger.reserveAlmaCalls(key, 20, 1000, 50, holder)).granted)
    }
    t.same(turns, [6, 3, 2, 1], 'half of the room left each time: 12 -> 6 -> 3 -> 2 -> 1, every call of both counted')
    const full = await second.reserveAlmaCalls(key, 20, 1000, 1, 'process-b')
    t.same(full, { granted: 0, retryInMs: 700 }, 'the window is full: wait until the first eight leave it (at 1000 ms)')
    clock = new Date(Date.parse(START) + 1000)
    t.same(await second.reserveAlmaCalls(key, 20, 1000, 50, 'process-b'), { granted: 4, retryInMs: 0 }, 'the first eight left the window: half of those eight, the twelve still count')
    clock = new Date(Date.parse(START) + 60_000)
    t.same(await second.reserveAlmaCalls(key, 20, 1000, 100, 'process-b'), { granted: 100, retryInMs: 0 }, 'a minute later, alone on the key: what its own limiter lets through')
  })

  t.test('the Alma call budget: a process alone is bounded by its own limiter; once another asks, both count the window', async t => {
    let clock = new Date(START)
    const at = (ms: number): void => { clock = new Date(Date.parse(START) + ms) }
    const first = await makeLedger({ now: () => clock })
    const second = await makeLedger({ now: () => clock, sameAs: first })
    t.teardown(async () => { await second.close(); await first.close() })
    const key = 'https://alma.example/v1#alone'
    // alone: whatever its own limiter lets through is granted (here 24 in 1.2 s, as 20 per 1.15 s would give)
    for (let i = 0; i < 24; i++) {
      at(i * 50)
      t.same(await first.reserveAlmaCalls(key, 20, 1400, 1, 'process-a'), { granted: 1, retryInMs: 0 })
    }
    // another process asks: every reservation in the window counts, the lone process's too
    at(1200)
    const newcomer = await second.reserveAlmaCalls(key, 20, 1400, 1, 'process-b')
    t.equal(newcomer.granted, 0, 'the newcomer waits: 24 calls in the window already')
    t.equal(newcomer.retryInMs, 200, 'until the first of them leaves it')
    const after = await first.reserveAlmaCalls(key, 20, 1400, 1, 'process-a')
    t.equal(after.granted, 0, 'and so does the first process now: the window is shared')
    at(1700) // the calls made at 0-300 ms have left the window: 17 remain
    t.same(await second.reserveAlmaCalls(key, 20, 1400, 5, 'process-b'), { granted: 2, retryInMs: 0 }, 'room for three, counting both processes: half of it, rounded up')
    t.same(await first.reserveAlmaCalls(key, 20, 1400, 5, 'process-a'), { granted: 1, retryInMs: 0 }, 'the first process gets the rest')
    t.same(await first.reserveAlmaCalls(key, 20, 1400, 5, 'process-a'), { granted: 0, retryInMs: 50 }, 'then waits for the call at 350 ms to leave the window')
    // a whole window later with one process left: alone again
    at(5000)
    t.same(await first.reserveAlmaCalls(key, 20, 1400, 1, 'process-a'), { granted: 1, retryInMs: 0 })
    at(6500)
    t.same(await first.reserveAlmaCalls(key, 20, 1400, 30, 'process-a'), { granted: 30, retryInMs: 0 }, 'alone: its own limiter is the bound')
  })

  t.test('an Alma call held until told over counts until then (Alma may read it late), and a window after when Alma read it at the latest', async t => {
    let clock = new Date(START)
    const at = (ms: number): void => { clock = new Date(Date.parse(START) + ms) }
    const first = await makeLedger({ now: () => clock })
    const second = await makeLedger({ now: () => clock, sameAs: first })
    t.teardown(async () => { await second.close(); await first.close() })
    const key = 'https://alma.example/v1#held'
    const held = { openMs: 16_400, ends: [] }
    const granted = await first.reserveAlmaCalls(key, 3, 1400, 3, 'process-a', held)
    t.equal(granted.granted, 3)
    t.equal(granted.ids?.length, 3, 'an id for each call granted')
    // Alma stops reading: the three calls are written, no answer comes; a window after they were reserved
    at(2000)
    t.match(await second.reserveAlmaCalls(key, 3, 1400, 3, 'process-b', held), { granted: 0 }, 'unanswered, they still count: the other process waits')
    // Alma reads its backlog at 2 s and answers at once (the fastest round trip 5 ms)
    at(2010)
    const ends = (granted.ids ?? []).map(id => ({ id, readAgoMs: 5 }))
    t.match(await first.reserveAlmaCalls(key, 3, 1400, 0, 'process-a', { openMs: 16_400, ends }), { granted: 0 }, 'the ends told')
    at(3300)
    t.match(await second.reserveAlmaCalls(key, 3, 1400, 3, 'process-b', held), { granted: 0 }, 'read at 2005 ms at the latest: they count until 3405 ms')
    at(3410)
    t.match(await second.reserveAlmaCalls(key, 3, 1400, 3, 'process-b', held), { granted: 2 }, 'then they leave the window (half the room: the window is shared)')
    // a call never told over (its process died) counts openMs from when it was reserved
    at(20_000)
    const orphan = await first.reserveAlmaCalls(key, 1, 1400, 1, 'process-a', held)
    t.equal(orphan.granted, 1)
    at(36_300)
    t.match(await second.reserveAlmaCalls(key, 1, 1400, 1, 'process-b', held), { granted: 0 }, 'never told over: still counted 16.3 s later')
    at(36_500)
    t.match(await second.reserveAlmaCalls(key, 1, 1400, 1, 'process-b', held), { granted: 1 }, 'counted openMs, then gone')
  })

  t.test('the Alma call budget recounts its window when the count it keeps disagrees with the rows', async t => {
    let clock = new Date(START)
    const ledger = await makeLedger({ now: () => clock })
    const other = await makeLedger({ now: () => clock, sameAs: ledger })
    t.teardown(async () => { await other.close(); await ledger.close() })
    const key = 'https://alma.example/v1#drift'
    t.same(await ledger.reserveAlmaCalls(key, 20, 1000, 20, 'process-a'), { granted: 20, retryInMs: 0 })
    // someone empties the reservations by hand (or an older version of the service deletes rows it does not count)
    await forgetAlmaReservations(ledger, key)
    clock = new Date(Date.parse(START) + 100)
    const answer = await other.reserveAlmaCalls(key, 20, 1000, 4, 'process-b')
    t.same(answer, { granted: 4, retryInMs: 0 }, 'the count said full; the rows say empty: the rows win, nobody is refused forever')
  })

  const mail = (id: string, to = 'alice@example.edu'): NewOutboxMessage => ({ id, from: 'fines@example.edu', to, subject: `Subject ${id}`, text: `text ${id}`, html: `<p>${id}</p>` })
  /** A receipt per state the checkout reaches, named by checkout and state, as the receipt composer does. */
  const receipts: ComposeMessages = (checkout) => checkout.state === 'POSTED' || checkout.state === 'NEEDS_ATTENTION'
    ? [mail(`receipt-${checkout.id}-${checkout.state}`)]
    : []

  t.test('a line keeps the fee\'s balance when the checkout was made (a part payment pays less)', async t => {
    const { ledger } = await setup(t)
    const draft = newCheckout('part', [1000, 500])
    draft.lines[0].balance = 6500 as Cents
    const created = await ledger.createCheckout(draft)
    t.same(created.lines.map(l => [l.amount, l.balance ?? null]), [[1000, 6500], [500, null]], 'kept where given; null where not')
    t.same((await ledger.getCheckout('part'))?.lines.map(l => l.balance ?? null), [6500, null])
  })

  t.test('a fenced transition writes its messages only when the fence holds: a lost lease writes neither state nor e-mail', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '8002', [500])
    const old = await ledger.claimPosting('c1', 'A', 60_000) as NonNullable<Awaited<ReturnType<Ledger['claimPosting']>>>
    await ledger.releasePosting(old)
    const current = await ledger.claimPosting('c1', 'B', 60_000) as NonNullable<Awaited<ReturnType<Ledger['claimPosting']>>>
    await t.rejects(ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'POSTED', event: 'payment.posted', messages: receipts }, old.fence), { name: 'LeaseLost' })
    t.equal(await ledger.outboxMessage('receipt-c1-POSTED'), undefined, 'no receipt under the lost fence')
    t.equal((await ledger.getCheckout('c1'))?.state, 'PAID')
    t.equal(await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'POSTED', event: 'payment.posted', messages: receipts }, current.fence), true)
    t.ok(await ledger.outboxMessage('receipt-c1-POSTED'), 'the holder\'s change writes its receipt')
  })

  t.test('a transition writes its messages to the outbox in the same change, once per id however often it is made', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '8001', [500])
    const refused = await ledger.transition({ checkoutId: 'c1', from: ['CREATED'], to: 'POSTED', event: 'payment.posted', messages: receipts })
    t.equal(refused, false)
    t.equal(await ledger.outboxMessage('receipt-c1-POSTED'), undefined, 'a transition that did not happen writes no message')
    t.equal(await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'POSTED', event: 'payment.posted', messages: receipts }), true)
    const row = await ledger.outboxMessage('receipt-c1-POSTED')
    t.match(row, { id: 'receipt-c1-POSTED', to: 'alice@example.edu', subject: 'Subject receipt-c1-POSTED', text: 'text receipt-c1-POSTED', html: '<p>receipt-c1-POSTED</p>', attempts: 0, sentAt: null, gaveUpAt: null, leaseUntil: null })
    t.equal(row?.nextAttemptAt, START, 'due at once')
    // the same change again (a lost POSTED found again by the next posting): the same id, still one row
    t.equal(await ledger.transition({ checkoutId: 'c1', from: ['POSTED'], to: 'POSTED', event: 'payment.posted', messages: receipts }), true)
    const claimed = await ledger.claimDueMessages(new Date(START), 10, new Date('2026-03-02T10:05:00.000Z'))
    t.same(claimed.map(m => m.id), ['receipt-c1-POSTED'], 'one message, not two')
  })

  t.test('a transition whose message function throws changes nothing', async t => {
    const { ledger } = await setup(t)
    await paidCheckout(ledger, 'c1', '8002', [500])
    await t.rejects(ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'POSTED', event: 'payment.posted', messages: () => { throw new Error('composer bug') } }))
    t.equal((await ledger.getCheckout('c1'))?.state, 'PAID', 'the state change went with it')
  })

  t.test('a postback that hands the payment to staff writes its messages with the decision; one that changes nothing writes none', async t => {
    const { ledger } = await setup(t)
    await ledger.createCheckout(newCheckout('c1', [500]))
    const mismatch: PostbackDecision = { outcome: 'MISMATCH', reason: 'amounts differ', to: 'NEEDS_ATTENTION', attentionKind: 'MISMATCH', payment: { tx: '8003', batchno: 'B', effdate: 'E', pmtcode: 'P' } }
    await ledger.recordPostback(incoming('c1', '8003', [400]), always(mismatch), receipts)
    t.ok(await ledger.outboxMessage('receipt-c1-NEEDS_ATTENTION'))
    await ledger.createCheckout(newCheckout('c2', [500]))
    await ledger.recordPostback(incoming('c2', '', null, '5'), always({ outcome: 'DECLINED', reason: 'declined' }), receipts)
    await ledger.recordPostback(incoming('c2', '8004', [500]), always(paid('8004')), receipts)
    t.equal(await ledger.outboxMessage('receipt-c2-NEEDS_ATTENTION'), undefined)
    t.same((await ledger.claimDueMessages(new Date(START), 10, new Date('2026-03-02T10:05:00.000Z'))).map(m => m.id), ['receipt-c1-NEEDS_ATTENTION'])
  })

  t.test('the outbox: enqueue keeps the first of an id; a claim leases, a live lease hides, an expired one frees', async t => {
    const { ledger, at } = await setup(t)
    await ledger.enqueueMessages([mail('m1'), mail('m2', 'bob@example.edu')])
    at('2026-03-02T10:00:01.000Z')
    await ledger.enqueueMessages([{ ...mail('m1'), subject: 'changed' }, mail('m3')])
    t.equal((await ledger.outboxMessage('m1'))?.subject, 'Subject m1', 'the first version of an id stays')
    const leaseUntil = new Date('2026-03-02T10:05:00.000Z')
    const first = await ledger.claimDueMessages(new Date('2026-03-02T10:00:01.000Z'), 2, leaseUntil)
    t.same(first.map(m => [m.id, m.to, m.attempts]), [['m1', 'alice@example.edu', 0], ['m2', 'bob@example.edu', 0]], 'oldest due first, up to the limit')
    t.equal((await ledger.outboxMessage('m1'))?.leaseUntil, leaseUntil.toISOString())
    const second = await ledger.claimDueMessages(new Date('2026-03-02T10:00:02.000Z'), 10, leaseUntil)
    t.same(second.map(m => m.id), ['m3'], 'leased messages are not claimed by another sender')
    const afterLease = await ledger.claimDueMessages(new Date('2026-03-02T10:05:00.000Z'), 10, new Date('2026-03-02T10:10:00.000Z'))
    t.same(afterLease.map(m => m.id), ['m1', 'm2', 'm3'], 'a lease that ran out (a sender died) frees its messages')
  })

  t.test('the outbox: a sent message is never claimed again; a failure waits until its time or gives up', async t => {
    const { ledger } = await setup(t)
    await ledger.enqueueMessages([mail('m1'), mail('m2'), mail('m3')])
    const now = new Date(START)
    await ledger.claimDueMessages(now, 10, new Date('2026-03-02T10:05:00.000Z'))
    await ledger.markMessageSent('m1', new Date('2026-03-02T10:00:01.000Z'))
    await ledger.markMessageFailed('m2', { error: 'ECONNECTION: refused', attempts: 1, nextAttemptAt: new Date('2026-03-02T10:00:30.000Z') })
    await ledger.markMessageFailed('m3', { error: 'EENVELOPE 550: no such mailbox', attempts: 1, nextAttemptAt: null })
    t.match(await ledger.outboxMessage('m1'), { sentAt: '2026-03-02T10:00:01.000Z', leaseUntil: null })
    t.match(await ledger.outboxMessage('m2'), { attempts: 1, lastError: 'ECONNECTION: refused', nextAttemptAt: '2026-03-02T10:00:30.000Z', leaseUntil: null, sentAt: null, gaveUpAt: null })
    t.match(await ledger.outboxMessage('m3'), { attempts: 1, lastError: 'EENVELOPE 550: no such mailbox', sentAt: null })
    t.not((await ledger.outboxMessage('m3'))?.gaveUpAt, null, 'given up, kept for staff')
    t.same(await ledger.claimDueMessages(new Date('2026-03-02T10:00:29.000Z'), 10, new Date('2026-03-02T10:06:00.000Z')), [], 'nothing due before the retry time')
    const retry = await ledger.claimDueMessages(new Date('2026-03-02T10:00:30.000Z'), 10, new Date('2026-03-02T10:06:00.000Z'))
    t.same(retry.map(m => [m.id, m.attempts]), [['m2', 1]], 'the failed one is due again with its attempts; the sent and the given-up ones never')
    await ledger.markMessageSent('m2', new Date('2026-03-02T10:00:31.000Z'))
    await ledger.markMessageFailed('m2', { error: 'late', attempts: 2, nextAttemptAt: null })
    t.match(await ledger.outboxMessage('m2'), { sentAt: '2026-03-02T10:00:31.000Z', gaveUpAt: null, attempts: 1 }, 'a sent message stays sent')
    t.equal(await ledger.outboxMessage('nope'), undefined)
  })
}
