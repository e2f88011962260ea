// Paying through CashNet: the whole flow over real HTTP (service, Alma sandbox, CashNet sandbox, EZproxy
// stand-in), asserting on what the Alma sandbox recorded.

import t from 'tap'
import { seedUsers } from '../src/sandbox/seed.ts'
import { Browser, build, CASHNET_PEER, checkoutIdFrom, form, readForm, send, until, UNTRUSTED_PEER } from './helper.ts'

t.test('a patron pays two of three fees and Alma shows exactly those two paid with the CashNet tx', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout(['100001', '100003'])
  const id = checkoutIdFrom(fields)
  t.match(id, /^[0-9a-f]{32}$/, 'the checkout id is 128 random bits')
  const receipt = await alice.payOnCashnet(action, fields)
  t.equal(receipt.status, 200)
  await stack.app.worker.idle()
  const checkout = await stack.app.ledger.getCheckout(id)
  t.equal(checkout?.state, 'POSTED')
  const tx = checkout?.tx as string
  t.same(stack.alma.paymentsFor(tx).sort((a, b) => a.feeId.localeCompare(b.feeId)), [
    { feeId: '100001', amountCents: 500 },
    { feeId: '100003', amountCents: 1225 }
  ])
  t.equal(stack.alma.fee('100002').balanceCents, 4550, 'the unticked fee is untouched')
  t.equal(stack.alma.fee('100001').status, 'CLOSED')
  const pay = stack.alma.calls.filter(c => c.method === 'POST')
  t.equal(pay.length, 2, 'two pay calls')
  for (const call of pay) {
    t.equal(call.query.op, 'pay')
    t.equal(call.query.method, 'ONLINE')
    t.equal(call.query.external_transaction_id, tx)
    t.equal(call.query.comment, id)
  }
  const again = await alice.get('cashnet/return')
  t.match(again.body, 'Payment received and recorded in the library system')
  const fines = await alice.get('/')
  t.match(fines.body, 'value="100002"')
  t.notMatch(fines.body, 'value="100001"')
  t.notMatch(fines.body, 'value="100003"')
})

t.test('the CashNet form: one line per fee, the reference on every line, cents as two decimals', async t => {
  const stack = await build(t)
  const { fields, action } = await new Browser(stack).login('alice').checkout()
  const get = (name: string): string | undefined => fields.find(([k]) => k === name)?.[1]
  t.equal(action, stack.cashnet.checkoutUrl)
  t.equal(get('itemcnt'), '3')
  t.equal(get('amount1'), '5.00')
  t.equal(get('amount2'), '45.50')
  t.equal(get('amount3'), '12.25')
  t.equal(get('itemcode1'), 'LIB-FINE')
  t.equal(get('itemcode2'), 'LIB-LOST', 'per fee type item code from CASHNET_ITEM_CODES')
  for (const n of [1, 2, 3]) {
    t.equal(get(`qty${n}`), '1')
    t.equal(get(`ref1type${n}`), 'ALMACHECKOUT')
    t.equal(get(`ref1val${n}`), get('ref1val1'))
  }
  t.equal(get('custcode'), 'alice')
  t.equal(get('NAME_G'), 'Alice Archer')
  t.equal(get('EMAIL_G'), 'alice.archer@example.edu')
  t.equal(get('signouturl'), `${stack.publicUrl}/cashnet/return`)
  t.equal(get('desc3'), 'Damaged item fine: Principles of Contract Law')
  const markup = await new Browser(stack).login('mallory').checkout()
  const desc = markup.fields.find(([k]) => k === 'desc1')?.[1]
  t.match(desc, /^Damaged item fine: <b>Bold/, 'the description is the raw text (the form field carries it escaped)')
  t.match(markup.handoff.body, 'value="Damaged item fine: &lt;b&gt;Bold&lt;/b&gt; &amp; &quot;quoted&quot; &lt;script&gt;', 'the hand-off page escapes it')
  t.notMatch(markup.handoff.body, '<script>alert(1)</script>')
  const handoff = (await new Browser(stack).login('carol').checkout()).handoff
  t.match(handoff.body, 'Continue to CashNet', 'a visible button works without JavaScript')
  t.match(handoff.body, /<script src="\.\/assets\/handoff\.js"/)
})

t.test('pay all: the fines page is empty afterwards', async t => {
  const stack = await build(t)
  const zoe = new Browser(stack).login('zoe')
  const { fields, action } = await zoe.checkout()
  await zoe.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  t.equal((await stack.app.ledger.getCheckout(checkoutIdFrom(fields)))?.state, 'POSTED')
  t.equal((await stack.app.ledger.getCheckout(checkoutIdFrom(fields)))?.provider, 'cashnet', 'the checkout records that CashNet took the money')
  const page = await zoe.get('/')
  t.match(page.body, 'Nothing to pay')
})

t.test('a fee partly paid at the desk meanwhile: the balance is paid, the rest goes to staff', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout(['100001', '100002'])
  stack.alma.payAtDesk('100002', 2000)
  await alice.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  const checkout = await stack.app.ledger.getCheckout(checkoutIdFrom(fields))
  t.equal(checkout?.state, 'NEEDS_ATTENTION')
  t.equal(checkout?.unapplied, 2000)
  t.match(checkout?.attentionReason, '20.00 could not be applied')
  t.same(stack.alma.paymentsFor(checkout?.tx as string).map(p => p.amountCents).sort((a, b) => a - b), [500, 2550], 'never more than the balance')
  t.equal(stack.alma.fee('100002').balanceCents, 0)
  const receipt = await alice.get('cashnet/return')
  t.match(receipt.body, 'library staff will finish recording it')
  t.ok(stack.logLines().some(l => l.event === 'payment.needs_attention' && l.checkout === checkout?.id), 'staff are alerted')
})

t.test('a fee closed meanwhile is never overpaid', async t => {
  const stack = await build(t)
  const carol = new Browser(stack).login('carol')
  const { fields, action } = await carol.checkout()
  stack.alma.closeFee('300001')
  await carol.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  const checkout = await stack.app.ledger.getCheckout(checkoutIdFrom(fields))
  t.equal(checkout?.state, 'NEEDS_ATTENTION')
  t.equal(checkout?.unapplied, 250)
  t.same(stack.alma.paymentsFor(checkout?.tx as string), [])
  t.equal(stack.alma.calls.filter(c => c.method === 'POST').length, 0, 'no pay call at all')
})

t.test('the same postback ten times at once is posted once', async t => {
  const stack = await build(t)
  stack.alma.faults.latencyMs = 30
  const alice = new Browser(stack).login('alice')
  const { fields } = await alice.checkout()
  const id = checkoutIdFrom(fields)
  const session = { fields: new Map(fields.map(([k, v]) => [k.toLowerCase(), v])), id: 'x', finished: false }
  const postback = stack.cashnet.resultFields(session, 'pay')
  const answers = await Promise.all(Array.from({ length: 10 }, async () => await stack.cashnet.sendPostback(postback)))
  t.same(answers.map(a => a.status), Array(10).fill(200), 'every copy gets 200')
  await stack.app.worker.idle()
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'POSTED')
  t.equal(stack.alma.paymentsFor(postback.tx).length, 3, 'three fees paid once each')
  t.equal(stack.alma.calls.filter(c => c.method === 'POST').length, 3, 'three pay calls in all')
  const outcomes = (await stack.app.ledger.history(id))?.postbacks.map(p => p.outcome) ?? []
  t.equal(outcomes.filter(o => o === 'PAID').length, 1)
  t.equal(outcomes.filter(o => o === 'DUPLICATE').length, 9)
})

t.test('cancel (902) and decline post nothing', async t => {
  const stack = await build(t)
  const carol = new Browser(stack).login('carol')
  const cancelled = await carol.checkout()
  const receipt = await carol.payOnCashnet(cancelled.action, cancelled.fields, 'cancel')
  t.match(receipt.body, 'Payment cancelled')
  t.equal((await stack.app.ledger.getCheckout(checkoutIdFrom(cancelled.fields)))?.state, 'CANCELLED')
  const declined = await carol.checkout()
  const page = await carol.payOnCashnet(declined.action, declined.fields, 'decline')
  t.match(page.body, 'Your payment was declined')
  t.match(page.body, 'Back to your fines to try again')
  const checkout = await stack.app.ledger.getCheckout(checkoutIdFrom(declined.fields))
  t.equal(checkout?.state, 'DECLINED')
  t.match((await stack.app.ledger.history(checkout?.id as string))?.postbacks[0].reason, 'declined')
  await stack.app.worker.idle()
  t.same(stack.alma.allExternalPayments(), [])
})

t.test('amounts changed on the way: nothing posted, staff told', async t => {
  const stack = await build(t)
  stack.cashnet.behaviour.tamperAmount1Cents = -400
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout()
  await alice.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  const checkout = await stack.app.ledger.getCheckout(checkoutIdFrom(fields))
  t.equal(checkout?.state, 'NEEDS_ATTENTION')
  t.match(checkout?.attentionReason, 'item 1 amount 1.00 differs from 5.00')
  t.same(stack.alma.allExternalPayments(), [])
})

t.test('a checkout id nobody issued is kept as an orphan for staff', async t => {
  const stack = await build(t)
  const answer = await send(`${stack.serviceUrl}/cashnet/postback`, {
    from: CASHNET_PEER,
    method: 'POST',
    body: form({ result: '0', tx: '777001', itemcnt: '1', itemcode1: 'LIB-FINE', amount1: '9.99', ref1type1: 'ALMACHECKOUT', ref1val1: 'ffffffffffffffffffffffffffffffff' })
  })
  t.equal(answer.status, 200)
  const orphans = await stack.app.ledger.unmatchedPostbacks()
  t.equal(orphans.length, 1)
  t.equal(orphans[0].outcome, 'ORPHAN')
  t.equal(orphans[0].tx, '777001')
  t.match(orphans[0].rawBody, 'amount1=9.99')
  t.ok(stack.logLines().some(l => l.event === 'postback.received' && l.outcome === 'ORPHAN' && l.level === 40))
})

t.test('a postback from outside CASHNET_POSTBACK_ALLOW: 403 and nothing recorded', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const { fields } = await alice.checkout()
  const id = checkoutIdFrom(fields)
  const body = form({ result: '0', tx: '5551', itemcnt: '3', amount1: '5.00', amount2: '45.50', amount3: '12.25', ref1type1: 'ALMACHECKOUT', ref1val1: id })
  for (const from of [UNTRUSTED_PEER, '127.0.0.1']) {
    const answer = await send(`${stack.serviceUrl}/cashnet/postback`, { from, method: 'POST', body })
    t.equal(answer.status, 403, `from ${from}`)
  }
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'CREATED')
  t.same((await stack.app.ledger.history(id))?.postbacks, [])
  await stack.app.worker.idle()
  t.same(stack.alma.allExternalPayments(), [])
})

t.test('CSRF token missing or wrong on /checkout: 403 and no checkout', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  await alice.get('/')
  const missing = await alice.post('/checkout', [['fee', '100001']])
  t.equal(missing.status, 403)
  const wrong = await alice.post('/checkout', [['_csrf', 'forged-token'], ['fee', '100001']])
  t.equal(wrong.status, 403)
  t.match(wrong.body, 'Please start again')
  t.equal((await stack.app.ledger.listCheckouts({})).total, 0)
})

t.test('fee ids of another patron, unknown ids and hostile ids are refused', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const page = readForm((await alice.get('/')).body, 'pay-form')
  const other = await alice.post('/checkout', [...page.fields, ['fee', '300001']])
  t.equal(other.status, 409, 'carol\'s fee is not alice\'s')
  const hostile = await alice.post('/checkout', [...page.fields, ['fee', '<script>']])
  t.equal(hostile.status, 400)
  const none = await alice.post('/checkout', page.fields)
  t.equal(none.status, 400)
  t.match(none.body, 'Choose at least one fee')
  const frank = new Browser(stack).login('frank')
  const frankPage = readForm((await frank.get('/')).body, 'pay-form')
  const credit = await frank.post('/checkout', [...frankPage.fields, ['fee', '500090']])
  t.equal(credit.status, 400, 'a credit is never sent to CashNet')
  const euro = await frank.post('/checkout', [...frankPage.fields, ['fee', '500091']])
  t.equal(euro.status, 400, 'a fee in another currency is not payable online')
  t.equal((await stack.app.ledger.listCheckouts({})).total, 0)
})

t.test('a total under MIN_PAYMENT is refused', async t => {
  const stack = await build(t, { env: { MIN_PAYMENT: '5.00' } })
  const carol = new Browser(stack).login('carol')
  const { handoff } = await carol.checkout()
  t.equal(handoff.status, 400)
  t.match(handoff.body, 'smallest payment accepted online is 5.00')
})

t.test('blocks are released only when the balance reaches zero, and only the configured ones', async t => {
  const stack = await build(t, { env: { RELEASE_BLOCKS: 'FINES' } })
  const erin = new Browser(stack).login('erin')
  const first = await erin.checkout(['600002'])
  await erin.payOnCashnet(first.action, first.fields)
  await stack.app.worker.idle()
  t.equal((await stack.app.ledger.getCheckout(checkoutIdFrom(first.fields)))?.state, 'POSTED')
  t.same(stack.alma.findUser('erin')?.blocks.map(b => b.code), ['FINES', 'CONDUCT'], 'balance remains: blocks kept')
  t.equal(stack.alma.calls.filter(c => c.method === 'PUT').length, 0)
  const second = await erin.checkout()
  await erin.payOnCashnet(second.action, second.fields)
  await stack.app.worker.idle()
  t.same(stack.alma.findUser('erin')?.blocks.map(b => b.code), ['CONDUCT'], 'only FINES released')
  t.equal(stack.alma.calls.filter(c => c.method === 'PUT').length, 1)
  t.same(stack.alma.putViolations, [], 'the PUT changed nothing but the blocks')
  const events = (await stack.app.ledger.history(checkoutIdFrom(second.fields)))?.events.map(e => e.event)
  t.ok(events?.includes('blocks.released'))
})

t.test('block release never touches another patron whose identifier is the primary id (Alma reads it as all_unique)', async t => {
  const stack = await build(t, { env: { RELEASE_BLOCKS: 'FINES' } })
  const erin = seedUsers().find(u => u.primaryId === 'erin')
  if (erin === undefined) throw new Error('no erin in the seed')
  // yara's campus id is erin's primary id; yara owes nothing and is blocked for fines
  stack.alma.addUser({ ...erin, primaryId: 'yara', firstName: 'Yara', email: 'yara@example.edu', identifiers: [{ type: 'UNIV_ID', value: 'erin' }], fees: [] })
  // Alma answers the read of erin's whole record (the one block release makes) with yara
  stack.alma.beforeCall = (call) => {
    if (call.method === 'GET' && call.path === '/almaws/v1/users/erin' && call.query.expand === 'fees') stack.alma.faults.sharedIdentifierMatch = 'other-identifier'
    return undefined
  }
  const browser = new Browser(stack).login('erin')
  const { fields, action } = await browser.checkout()
  await browser.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  const id = checkoutIdFrom(fields)
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'POSTED', 'erin\'s fees are paid')
  t.equal(stack.alma.calls.filter(c => c.method === 'PUT').length, 0, 'no user was written')
  t.same(stack.alma.users.get('yara')?.blocks.map(b => b.code), ['FINES', 'CONDUCT'], 'yara\'s blocks are kept')
  const failed = (await stack.app.ledger.history(id))?.events.find(e => e.event === 'blocks.release_failed')
  t.match(failed?.detail, /primary id .*erin.* with patron .*yara/, 'the history says why the blocks were not released')
})

t.test('without RELEASE_BLOCKS, blocks are never touched', async t => {
  const stack = await build(t)
  const erin = new Browser(stack).login('erin')
  const { fields, action } = await erin.checkout()
  await erin.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  t.equal(stack.alma.calls.filter(c => c.method === 'PUT').length, 0)
  t.equal(stack.alma.findUser('erin')?.blocks.length, 2)
})

t.test('CashNet quirks: reference on item 2 only, upper-case field names, duplicate postback', async t => {
  const stack = await build(t)
  stack.cashnet.behaviour.referenceOnItem2 = true
  stack.cashnet.behaviour.upperCaseFields = true
  stack.cashnet.behaviour.duplicatePostback = true
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout()
  await alice.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  const checkout = await stack.app.ledger.getCheckout(checkoutIdFrom(fields))
  t.equal(checkout?.state, 'POSTED')
  t.equal(stack.alma.paymentsFor(checkout?.tx as string).length, 3)
  t.same((await stack.app.ledger.history(checkout?.id as string))?.postbacks.map(p => p.outcome), ['PAID', 'DUPLICATE'])
})

t.test('the browser comes back before the postback: the receipt waits, then tells the truth', async t => {
  const stack = await build(t)
  stack.cashnet.behaviour.latePostbackMs = 300
  const carol = new Browser(stack).login('carol')
  const { fields, action } = await carol.checkout()
  const early = await carol.payOnCashnet(action, fields)
  t.match(early.body, 'Waiting for confirmation from CashNet', 'the redirect said success, but the ledger has not heard')
  t.match(early.body, /http-equiv="refresh"/)
  const id = checkoutIdFrom(fields)
  await until(async () => (await stack.app.ledger.getCheckout(id))?.state === 'POSTED', 'the late postback to be posted')
  const later = await carol.get('cashnet/return')
  t.match(later.body, 'recorded in the library system')
})

t.test('no postback at all: the receipt never claims success', async t => {
  const stack = await build(t)
  stack.cashnet.behaviour.noPostback = true
  const carol = new Browser(stack).login('carol')
  const { fields, action } = await carol.checkout()
  const receipt = await carol.payOnCashnet(action, fields)
  t.match(receipt.body, 'Waiting for confirmation from CashNet')
  t.notMatch(receipt.body, 'Payment received')
  t.equal((await stack.app.ledger.getCheckout(checkoutIdFrom(fields)))?.state, 'CREATED')
})

t.test('the return works by POST with fields, and bare with no fields at all', async t => {
  const stack = await build(t)
  stack.cashnet.behaviour.returnMode = 'post'
  const alice = new Browser(stack).login('alice')
  const first = await alice.checkout(['100001'])
  const posted = await alice.payOnCashnet(first.action, first.fields)
  t.equal(posted.status, 200)
  t.match(posted.body, 'Payment received')
  t.match(posted.body, checkoutIdFrom(first.fields))
  stack.cashnet.behaviour.returnMode = 'bare'
  const second = await alice.checkout(['100002'])
  const bare = await alice.payOnCashnet(second.action, second.fields)
  t.match(bare.body, checkoutIdFrom(second.fields), 'no fields: the patron\'s most recent checkout')
})

t.test('a receipt is shown only to its own patron', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout()
  await alice.payOnCashnet(action, fields)
  const carol = new Browser(stack).login('carol')
  const peek = await carol.get(`cashnet/return?ref1type1=ALMACHECKOUT&ref1val1=${checkoutIdFrom(fields)}`)
  t.equal(peek.status, 404)
  t.notMatch(peek.body, 'Alice')
  t.match(peek.body, 'We could not find that payment')
  const nothing = await new Browser(stack).login('bob').get('cashnet/return')
  t.equal(nothing.status, 404)
})

t.test('a second, different tx for a paid checkout is a double charge for staff', async t => {
  const stack = await build(t)
  const carol = new Browser(stack).login('carol')
  const { fields, action } = await carol.checkout()
  await carol.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  const id = checkoutIdFrom(fields)
  const second = await stack.cashnet.sendPostback({ result: '0', tx: '999999', itemcnt: '1', itemcode1: 'LIB-FINE', amount1: '2.50', ref1type1: 'ALMACHECKOUT', ref1val1: id })
  t.equal(second.status, 200)
  await stack.app.worker.idle()
  const checkout = await stack.app.ledger.getCheckout(id)
  t.equal(checkout?.state, 'NEEDS_ATTENTION')
  t.match(checkout?.attentionReason, 'second CashNet transaction 999999')
  t.same(stack.alma.paymentsFor('999999'), [], 'nothing more sent to Alma')
  t.equal(stack.alma.paymentsFor(checkout?.tx as string).length, 1)
})

t.test('an unreadable postback is refused with 400 and kept for staff', async t => {
  const stack = await build(t)
  const answer = await send(`${stack.serviceUrl}/cashnet/postback`, { from: CASHNET_PEER, method: 'POST', body: 'result=0&tx=1&amount1=5.00' })
  t.equal(answer.status, 400)
  const kept = await stack.app.ledger.unmatchedPostbacks()
  t.equal(kept[0].outcome, 'REJECTED')
  t.match(kept[0].reason, 'no ALMACHECKOUT reference')
  t.equal(kept[0].rawBody, 'result=0&tx=1&amount1=5.00')
})
