// The "record a postback" use case without HTTP: its dependencies are plain values (a ledger, a schedule
// function, alerts, a logger), so what it records, masks, alerts and schedules is read straight from them.

import t, { type Test } from 'tap'
import { SqliteLedger } from '../../src/ledger/sqlite/index.ts'
import type { Checkout } from '../../src/ledger/types.ts'
import type { Cents } from '../../src/money.ts'
import { type PostbackDeps, recordPostback } from '../../src/payments/record-postback.ts'

const CARD = '4111111111111111'

async function setup (t: Test): Promise<{ deps: PostbackDeps, scheduled: string[], alerts: Array<[string, string]>, lines: Array<[string, Record<string, unknown>, string]> }> {
  const ledger = new SqliteLedger({ path: ':memory:' })
  t.teardown(async () => { await ledger.close() })
  await ledger.createCheckout({
    id: 'a'.repeat(32),
    userId: 'alice',
    primaryId: 'P-alice',
    patronName: 'Alice',
    email: '',
    currency: 'USD',
    lines: [{ lineNo: 1, feeId: 'f1', feeType: 'OVERDUEFINE', feeTypeDesc: 'Overdue fine', owner: 'MAIN', ownerDesc: 'Main', title: 't', itemCode: 'LIB-FINE', amount: 500 as Cents }]
  })
  const scheduled: string[] = []
  const alerts: Array<[string, string]> = []
  const lines: Array<[string, Record<string, unknown>, string]> = []
  const deps: PostbackDeps = {
    ledger,
    schedule: id => { scheduled.push(id) },
    alerts: { needsAttention: (checkout: Checkout, reason: string) => { alerts.push([checkout.id, reason]) } },
    refType: 'ALMACHECKOUT',
    maskKey: 'k'.repeat(32),
    logger: { info: (o, m) => { lines.push(['info', o, m]) }, warn: (o, m) => { lines.push(['warn', o, m]) } }
  }
  return { deps, scheduled, alerts, lines }
}

const fields = (amount: string, extra: Record<string, string> = {}): Record<string, string> =>
  ({ result: '0', tx: '7001', itemcnt: '1', amount1: amount, itemcode1: 'LIB-FINE', ref1type1: 'ALMACHECKOUT', ref1val1: 'a'.repeat(32), ...extra })

t.test('a success is recorded durably, then handed to the posting worker after the answer', async t => {
  const { deps, scheduled, alerts } = await setup(t)
  const answer = await recordPostback(deps, { fields: fields('5.00'), rawBody: 'result=0&tx=7001', peer: '10.0.0.1' })
  t.same(answer, { status: 200 })
  t.equal((await deps.ledger.getCheckout('a'.repeat(32)))?.state, 'PAID', 'recorded before the answer')
  t.same(scheduled, [], 'not yet: the posting never delays the answer')
  await new Promise(resolve => setImmediate(resolve))
  t.same(scheduled, ['a'.repeat(32)])
  t.same(alerts, [])
})

t.test('other amounts than the checkout: recorded, staff alerted, nothing scheduled', async t => {
  const { deps, scheduled, alerts, lines } = await setup(t)
  t.same(await recordPostback(deps, { fields: fields('4.00'), rawBody: 'x', peer: '10.0.0.1' }), { status: 200 })
  await new Promise(resolve => setImmediate(resolve))
  t.equal((await deps.ledger.getCheckout('a'.repeat(32)))?.attentionKind, 'MISMATCH')
  t.equal(alerts.length, 1)
  t.same(scheduled, [])
  t.ok(lines.some(([level, o]) => level === 'warn' && o.outcome === 'MISMATCH'))
})

t.test('an unreadable postback is kept for staff, card numbers masked, and answered 400', async t => {
  const { deps, lines } = await setup(t)
  const answer = await recordPostback(deps, { fields: { tx: '7001', custcode: CARD }, rawBody: `tx=7001&custcode=${CARD}`, peer: '10.0.0.1' })
  t.match(answer, { status: 400, reason: /result/ })
  const kept = await deps.ledger.unmatchedPostbacks()
  t.equal(kept.length, 1)
  t.equal(kept[0].outcome, 'REJECTED')
  t.notOk(kept[0].rawBody.includes(CARD), 'the raw body keeps no card number')
  t.match(kept[0].rawBody, /1111/, 'its last four digits only')
  t.notOk(JSON.stringify(lines).includes(CARD))
})

t.test('a ledger that cannot take the write rejects, and nothing is scheduled or alerted', async t => {
  const { deps, scheduled, alerts } = await setup(t)
  await deps.ledger.close()
  await t.rejects(recordPostback(deps, { fields: fields('5.00'), rawBody: 'x', peer: '10.0.0.1' }))
  await new Promise(resolve => setImmediate(resolve))
  t.same(scheduled, [])
  t.same(alerts, [])
})
