// Part payments (PARTIAL_PAYMENTS=on, SPEC 14): the patron pays part of a fee; the amount is checked on the server
// against the balance Alma shows at checkout and MIN_PAYMENT; CashNet gets that amount, Alma `op=pay&amount=` for
// it, and the fee stays open with the rest. Every bad amount is refused with nothing recorded; with the setting
// off the field is ignored. Over real HTTP; the Alma sandbox is the judge.

import t, { type Test } from 'tap'
import { buildJournals } from '../src/jobs/gl/journal.ts'
import { Browser, build, readForm, type TestStack } from './helper.ts'

/** A patron with one 65.00 fee, added to the Alma sandbox (the seeded patrons have none that size). */
function addPaula (stack: TestStack): void {
  stack.alma.addUser({
    primaryId: 'paula',
    firstName: 'Paula',
    lastName: 'Part',
    email: 'paula.part@example.edu',
    userGroup: 'UG',
    identifiers: [{ type: 'UNIV_ID', value: '900000077' }],
    blocks: [],
    fees: [{
      id: '770001',
      type: 'LOSTITEMREPLACEMENTFEE',
      typeDesc: 'Lost item replacement fee',
      balance: '65.00',
      title: 'Atlas of Remote Islands',
      barcode: '39010770001',
      created: '2026-10-01T14:30:00Z',
      owner: 'MAIN',
      ownerDesc: 'Main Library'
    }],
    story: 'one large fee'
  })
}

async function setup (t: Test, env: Record<string, string> = {}): Promise<{ stack: TestStack, paula: Browser }> {
  const stack = await build(t, { env: { PARTIAL_PAYMENTS: 'on', ...env } })
  addPaula(stack)
  return { stack, paula: new Browser(stack).login('paula') }
}

/** The pay form's hidden fields (the CSRF token) from a fresh fines page. */
async function payForm (paula: Browser): Promise<Array<[string, string]>> {
  return readForm((await paula.get('/')).body, 'pay-form').fields
}

t.test('a part payment of 10.00 on a 65.00 fee: CashNet and Alma get 10.00, the fee stays open with 55.00', async t => {
  const { stack, paula } = await setup(t)
  const page = await paula.get('/')
  t.match(page.body, /<input class="part" type="text"[^>]* name="amount_770001" id="amount-770001" value="65.00"/, 'an amount field per fee, filled in with the balance: works without JavaScript')
  t.match(page.body, '<label class="part" for="amount-770001">Pay now</label>')

  const handoff = await paula.post('/checkout', [...readForm(page.body, 'pay-form').fields, ['fee', '770001'], ['amount_770001', '10.00']])
  t.equal(handoff.status, 200)
  const cashnet = readForm(handoff.body, 'cashnet-form')
  t.equal(cashnet.fields.find(([k]) => k === 'amount1')?.[1], '10.00', 'CashNet gets the part on the line')
  const created = await stack.app.ledger.latestCheckoutForUser('paula')
  t.same(created?.lines.map(l => [l.feeId, l.amount, l.balance]), [['770001', 1000, 6500]], 'the line records the part and the balance at the time')
  t.equal(created?.total, 1000)

  const receipt = await paula.payOnCashnet(cashnet.action, cashnet.fields)
  await stack.app.worker.idle()
  const posted = await stack.app.ledger.getCheckout(created?.id ?? '')
  t.equal(posted?.state, 'POSTED')
  t.same(stack.alma.paymentsFor(posted?.tx ?? '').map(p => [p.feeId, p.amountCents]), [['770001', 1000]], 'Alma records 10.00 paid, nothing more')
  const fee = stack.alma.fee('770001')
  t.equal(fee.balanceCents, 5500, 'the fee has 55.00 left in Alma')
  t.equal(fee.status, 'ACTIVE', 'and stays open')
  const pay = stack.alma.calls.find(c => c.method === 'POST' && c.path.endsWith('/fees/770001'))
  t.equal(pay?.query.amount, '10.00', 'op=pay&amount=10.00')
  t.equal(pay?.query.op, 'pay')

  const shown = await paula.get(`/cashnet/return?ref=${encodeURIComponent(posted?.id ?? '')}`)
  t.match(shown.body || receipt.body, 'paid $10.00 of $65.00, $55.00 left', 'the receipt page shows the part')

  const fines = await paula.get('/')
  t.match(fines.body, '$55.00', 'the fines page shows what is left')
  t.match(fines.body, /name="amount_770001" id="amount-770001" value="55.00"/)

  const day = new Date(posted?.postedAt ?? '')
  const journal = buildJournals(await stack.app.ledger.postedLines(new Date(day.getTime() - 1000), new Date(day.getTime() + 60_000)), { businessUnit: 'UNIV', ledger: 'ACTUALS', ledgerGroup: 'ACTUALS', journalId: 'NEXT', source: 'LIB', description: 'Library fines', default: { account: '4000', fund: '10', deptid: 'LIB' }, clearing: { account: '1000', fund: '10', deptid: 'LIB' }, clearingByProvider: {}, rules: [] }, '2026-10-02')
  const credit = journal[0]?.lines.find(l => l.feeId === '770001')
  t.equal(credit?.amount, -1000, 'the GL journal credits the part')
  t.equal(credit?.lineDescription, 'LOSTITEMREPLACEMENTFEE 770001 part of 65.00', 'and says it was part of the fee')
})

t.test('bad amounts are refused with the calm page and nothing recorded: above the balance, below the minimum, negative, zero, three decimals, exponent, junk', async t => {
  const { stack, paula } = await setup(t, { MIN_PAYMENT: '1.00' })
  const bad = ['65.01', '100', '0.50', '-5.00', '-0', '0', '0.00', '10.005', '10.000', '1e1', '1E2', 'ten', '', ' ', '10,00', '1.', '.50', '+10', '0x10', '10.00 USD', '１０.００', '9999999999']
  for (const amount of bad) {
    const answer = await paula.post('/checkout', [...await payForm(paula), ['fee', '770001'], ['amount_770001', amount]])
    t.equal(answer.status, 400, `${JSON.stringify(amount)} is refused`)
    t.match(answer.body, 'Please check your selection')
    t.notMatch(answer.body, 'cashnet-form')
  }
  const twice = await paula.post('/checkout', [...await payForm(paula), ['fee', '770001'], ['amount_770001', '10.00'], ['amount_770001', '20.00']])
  t.equal(twice.status, 400, 'an amount sent twice is refused, not one of them chosen')
  t.equal(await stack.app.ledger.latestCheckoutForUser('paula'), undefined, 'no checkout was recorded')
  t.same(stack.alma.allExternalPayments(), [])

  const lowestPart = await paula.post('/checkout', [...await payForm(paula), ['fee', '770001'], ['amount_770001', '1.00']])
  t.equal(lowestPart.status, 200, 'exactly the minimum is accepted')
  const whole = await paula.post('/checkout', [...await payForm(paula), ['fee', '770001'], ['amount_770001', '65']])
  t.equal(whole.status, 200, 'the whole balance, written without decimals, is a full payment')
  t.equal((await stack.app.ledger.latestCheckoutForUser('paula'))?.total, 6500)
})

t.test('the amount is checked against the balance Alma shows at checkout, not the one on the page', async t => {
  const { stack, paula } = await setup(t)
  const fields = await payForm(paula)
  stack.alma.payAtDesk('770001', 6000)
  const answer = await paula.post('/checkout', [...fields, ['fee', '770001'], ['amount_770001', '10.00']])
  t.equal(answer.status, 400, '10.00 is more than the 5.00 left after a payment at the desk')
  t.match(answer.body, 'from 0.01 to 5.00')
  t.equal(await stack.app.ledger.latestCheckoutForUser('paula'), undefined)
})

t.test('an amount for a fee that is not ticked pays nothing; the ticked fees are paid in full', async t => {
  const { stack } = await setup(t)
  const alice = new Browser(stack).login('alice')
  const answer = await alice.post('/checkout', [...await payForm(alice), ['fee', '100001'], ['amount_100002', '1.00']])
  t.equal(answer.status, 200)
  t.same((await stack.app.ledger.latestCheckoutForUser('alice'))?.lines.map(l => [l.feeId, l.amount]), [['100001', 500]])
})

t.test('PARTIAL_PAYMENTS off (the default): no amount field, and a forged amount_ changes nothing', async t => {
  const stack = await build(t)
  addPaula(stack)
  const paula = new Browser(stack).login('paula')
  const page = await paula.get('/')
  t.notMatch(page.body, 'amount_770001', 'no amount field')
  for (const amount of ['10.00', '-5', 'junk']) {
    const answer = await paula.post('/checkout', [...await payForm(paula), ['fee', '770001'], ['amount_770001', amount]])
    t.equal(answer.status, 200, `a forged ${JSON.stringify(amount)} is ignored`)
    const cashnet = readForm(answer.body, 'cashnet-form')
    t.equal(cashnet.fields.find(([k]) => k === 'amount1')?.[1], '65.00', 'the whole balance goes to CashNet')
    t.equal((await stack.app.ledger.latestCheckoutForUser('paula'))?.lines[0].amount, 6500)
  }
})
