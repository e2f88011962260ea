// SPEC section 6 as a table: what each postback does to a checkout, decided by the one pure function the
// postback route applies inside the ledger transaction.

import t from 'tap'
import type { Postback } from '../src/providers/cashnet/postback.ts'
import type { Checkout, CheckoutState, PostbackRecord } from '../src/ledger/types.ts'
import type { Cents } from '../src/money.ts'
import { decidePostback } from '../src/payments/postback-rules.ts'

function checkout (state: CheckoutState, tx: string | null = null): Checkout {
  const line = (lineNo: number, amount: number, itemCode: string) => ({
    lineNo, feeId: `f${lineNo}`, feeType: 'OVERDUEFINE', feeTypeDesc: 'Overdue fine', owner: 'MAIN', ownerDesc: 'Main', title: 't', itemCode, amount: amount as Cents, postedAmount: null, postedAt: null
  })
  return {
    id: 'c1',
    userId: 'u',
    userIdKind: 'username',
    primaryId: 'u',
    patronName: 'U',
    email: '',
    provider: 'cashnet',
    state,
    total: 750 as Cents,
    currency: 'USD',
    createdAt: '',
    updatedAt: '',
    paidAt: null,
    postedAt: null,
    tx,
    batchno: null,
    effdate: null,
    pmtcode: null,
    attentionReason: null,
    attentionKind: null,
    unapplied: 0 as Cents,
    attempts: 0,
    nextAttemptAt: null,
    lastError: null,
    resolvedAt: null,
    resolvedBy: null,
    resolution: null,
    reviewTx: null,
    lines: [line(1, 500, 'LIB-FINE'), line(2, 250, 'LIB-LOST')]
  }
}

function postback (overrides: Partial<Postback> = {}): Postback {
  return {
    result: 0,
    ccerrorcode: '',
    respmessage: 'SUCCESS',
    tx: '9001',
    batchno: '1',
    effdate: '2026-11-26',
    pmtcode: 'CC',
    custcode: 'u',
    checkoutId: 'c1',
    items: [{ itemCode: 'LIB-FINE', amount: 500 as Cents, qty: 1 }, { itemCode: 'LIB-LOST', amount: 250 as Cents, qty: 1 }],
    total: 750 as Cents,
    ...overrides
  }
}

function earlier (result: string, tx: string, outcome: PostbackRecord['outcome'] = 'PAID'): PostbackRecord {
  return { id: 1, checkoutId: 'c1', receivedAt: '', peer: '', result, tx, outcome, reason: '', rawBody: '', total: null }
}

t.test('success with matching lines pays the checkout, from every unpaid state', async t => {
  for (const state of ['CREATED', 'EXPIRED', 'DECLINED', 'CANCELLED'] as const) {
    const decision = decidePostback(checkout(state), [], postback())
    t.equal(decision.outcome, 'PAID', state)
    t.equal(decision.to, 'PAID')
    t.same(decision.payment, { tx: '9001', batchno: '1', effdate: '2026-11-26', pmtcode: 'CC' })
  }
})

t.test('no checkout: an orphan, nothing changes', async t => {
  const decision = decidePostback(undefined, [], postback())
  t.equal(decision.outcome, 'ORPHAN')
  t.equal(decision.to, undefined)
  t.match(decision.reason, 'money may have been taken')
})

t.test('the same postback again is a duplicate, whatever the state', async t => {
  t.equal(decidePostback(checkout('POSTED', '9001'), [earlier('0', '9001')], postback()).outcome, 'DUPLICATE')
  t.equal(decidePostback(checkout('DECLINED'), [earlier('209', '77', 'DECLINED')], postback({ result: 209, tx: '77' })).outcome, 'DUPLICATE')
  t.equal(decidePostback(checkout('CREATED'), [earlier('0', '9001', 'REJECTED')], postback()).outcome, 'PAID', 'a rejected earlier copy does not count')
})

t.test('success for an already paid checkout with the same tx but not seen before changes nothing', async t => {
  const decision = decidePostback(checkout('POSTED', '9001'), [], postback())
  t.equal(decision.outcome, 'DUPLICATE')
  t.equal(decision.to, undefined)
})

t.test('a second, different tx for a paid checkout is a double charge for staff', async t => {
  for (const state of ['PAID', 'POSTED', 'NEEDS_ATTENTION'] as const) {
    const decision = decidePostback(checkout(state, '9001'), [earlier('0', '9001')], postback({ tx: '9002' }))
    t.equal(decision.outcome, 'DOUBLE_CHARGE', state)
    t.equal(decision.to, 'NEEDS_ATTENTION')
    t.match(decision.reason, 'second CashNet transaction 9002 for checkout already paid by 9001')
  }
})

t.test('success without a tx cannot be posted: staff', async t => {
  const decision = decidePostback(checkout('CREATED'), [], postback({ tx: '' }))
  t.equal(decision.outcome, 'MISMATCH')
  t.equal(decision.to, 'NEEDS_ATTENTION')
  t.match(decision.reason, 'without a transaction number')
})

t.test('lines that differ from the checkout go to staff, naming the difference', async t => {
  const cases: Array<[string, Partial<Postback>, string]> = [
    ['an item missing', { items: [{ itemCode: 'LIB-FINE', amount: 500 as Cents, qty: 1 }], total: 500 as Cents }, 'CashNet reported 1 item(s), the checkout has 2'],
    ['an amount changed', { items: [{ itemCode: 'LIB-FINE', amount: 400 as Cents, qty: 1 }, { itemCode: 'LIB-LOST', amount: 250 as Cents, qty: 1 }], total: 650 as Cents }, 'item 1 amount 4.00 differs from 5.00'],
    ['an item code changed', { items: [{ itemCode: 'LIB-FINE', amount: 500 as Cents, qty: 1 }, { itemCode: 'OTHER', amount: 250 as Cents, qty: 1 }] }, 'item 2 code OTHER differs from LIB-LOST'],
    ['a quantity of 2', { items: [{ itemCode: 'LIB-FINE', amount: 500 as Cents, qty: 2 }, { itemCode: 'LIB-LOST', amount: 250 as Cents, qty: 1 }] }, 'item 1 quantity 2 is not 1'],
    ['a total that does not add up', { total: 751 as Cents }, 'total 7.51 differs from 7.50']
  ]
  for (const [what, change, reason] of cases) {
    const decision = decidePostback(checkout('CREATED'), [], postback(change))
    t.equal(decision.outcome, 'MISMATCH', what)
    t.equal(decision.to, 'NEEDS_ATTENTION')
    t.match(decision.reason, reason)
    t.equal(decision.payment?.tx, '9001', 'the tx is kept so reconciliation can find the money')
  }
  t.equal(decidePostback(checkout('CREATED'), [], postback({ items: [{ itemCode: 'lib-fine', amount: 500 as Cents, qty: 1 }, { itemCode: '', amount: 250 as Cents, qty: 1 }] })).outcome, 'PAID',
    'item codes compare case-insensitively, and a missing one is not a difference')
})

t.test('cancel and decline', async t => {
  const cancelled = decidePostback(checkout('CREATED'), [], postback({ result: 902, tx: '', respmessage: 'Customer Cancelled before processing payment' }))
  t.equal(cancelled.outcome, 'CANCELLED')
  t.equal(cancelled.to, 'CANCELLED')
  const declined = decidePostback(checkout('EXPIRED'), [], postback({ result: 209, tx: '55', respmessage: 'Credit card error' }))
  t.equal(declined.outcome, 'DECLINED')
  t.equal(declined.to, 'DECLINED')
  t.match(declined.reason, 'Credit card error')
  t.match(decidePostback(checkout('CREATED'), [], postback({ result: 7, tx: '', respmessage: '' })).reason, 'result 7', 'no message: the code is shown')
})

t.test('a non-zero result with ccerrorcode 902 is a cancel (SPEC 6); other codes stay declines', async t => {
  for (const [result, ccerrorcode] of [[5, '902'], [1, '0902'], [902, ''], [209, '902']] as const) {
    const decision = decidePostback(checkout('CREATED'), [], postback({ result, ccerrorcode, tx: '' }))
    t.equal(decision.outcome, 'CANCELLED', `result ${result}, ccerrorcode ${ccerrorcode || '(none)'}`)
    t.equal(decision.to, 'CANCELLED')
  }
  for (const [result, ccerrorcode] of [[5, '903'], [5, ''], [5, '9020'], [5, '90']] as const) {
    t.equal(decidePostback(checkout('CREATED'), [], postback({ result, ccerrorcode, tx: '' })).outcome, 'DECLINED', `result ${result}, ccerrorcode ${ccerrorcode || '(none)'}: declined`)
  }
  t.equal(decidePostback(checkout('CREATED'), [], postback({ result: 0, ccerrorcode: '902', tx: '9001' })).outcome, 'PAID', 'result 0 is a success whatever ccerrorcode says')
  t.equal(decidePostback(checkout('PAID', '9001'), [], postback({ result: 5, ccerrorcode: '902', tx: '' })).outcome, 'LATE_FAILURE', 'a cancel after payment changes nothing')
})

t.test('a failure after the checkout was paid or already failed changes nothing', async t => {
  for (const state of ['PAID', 'POSTED', 'NEEDS_ATTENTION', 'DECLINED', 'CANCELLED'] as const) {
    const decision = decidePostback(checkout(state, '9001'), [], postback({ result: 209, tx: '56' }))
    t.equal(decision.outcome, 'LATE_FAILURE', state)
    t.equal(decision.to, undefined)
  }
})

t.test('a tx already recorded for another checkout is TX_REUSED: recorded, no state change, nothing to post', async t => {
  const decision = decidePostback(checkout('CREATED'), [], postback(), ['other-checkout'])
  t.equal(decision.outcome, 'TX_REUSED')
  t.equal(decision.to, undefined)
  t.equal(decision.payment, undefined)
  t.match(decision.reason, 'CashNet tx 9001 is already recorded for checkout other-checkout')
  t.equal(decidePostback(checkout('CREATED'), [earlier('0', '9001', 'TX_REUSED')], postback(), ['other-checkout']).outcome, 'TX_REUSED', 'again: still refused, not a duplicate of a paid one')
  t.equal(decidePostback(checkout('CREATED'), [], postback({ result: 209, tx: '9001' }), ['other-checkout']).outcome, 'DECLINED', 'a failure carries no money')
})

t.test('every state change to NEEDS_ATTENTION says why, as a kind', async t => {
  t.equal(decidePostback(checkout('POSTED', '9001'), [earlier('0', '9001')], postback({ tx: '9002' })).attentionKind, 'DOUBLE_CHARGE')
  t.equal(decidePostback(checkout('CREATED'), [], postback({ tx: '' })).attentionKind, 'MISMATCH')
  t.equal(decidePostback(checkout('CREATED'), [], postback({ total: 751 as Cents })).attentionKind, 'MISMATCH')
})
