// GET /history over real HTTP: the signed-in patron's own payments (date and time in TIMEZONE, amount, state in
// words, fees), newest first, each linking to its receipt; another patron's payments never appear, and their
// receipts stay refused. The receipt names its zone, explains the reference and offers printing.

import t from 'tap'
import { loadConfig } from '../src/config.ts'
import { SANDBOX_COOKIE_SECRET } from '../src/sandbox/stack.ts'
import { Browser, build, checkoutIdFrom, readForm, send, UNTRUSTED_PEER, until } from './helper.ts'

const ENV = { TIMEZONE: 'America/Chicago' }

t.test('the history shows only the patron\'s own payments, newest first, each with its receipt; others\' receipts are refused', async t => {
  const stack = await build(t, { env: ENV })
  const alice = new Browser(stack).login('alice')
  const carol = new Browser(stack).login('carol')

  const empty = await alice.get('/history')
  t.equal(empty.status, 200)
  t.match(empty.body, 'You have not paid any library fines online yet')

  // alice pays one fee, then declines a second attempt; carol pays hers
  const fines = await alice.get('/')
  t.match(fines.body, '<a href="history">Your payment history and receipts</a>', 'the fines page links to the history')
  const feeIds = [...fines.body.matchAll(/name="fee" value="([^"]+)"/g)].map(m => m[1])
  const first = await alice.checkout([feeIds[0]])
  const paidReceipt = await alice.payOnCashnet(first.action, first.fields)
  t.equal(paidReceipt.status, 200)
  const aliceFirst = checkoutIdFrom(first.fields)
  await until(async () => (await stack.app.ledger.getCheckout(aliceFirst))?.state === 'POSTED', 'alice\'s payment recorded in Alma')
  const second = await alice.checkout([feeIds[1]])
  await alice.payOnCashnet(second.action, second.fields, 'decline')
  const aliceDeclined = checkoutIdFrom(second.fields)
  const abandoned = await alice.checkout([feeIds[1]])
  const aliceAbandoned = checkoutIdFrom(abandoned.fields)
  const carols = await carol.checkout()
  await carol.payOnCashnet(carols.action, carols.fields)
  const carolId = checkoutIdFrom(carols.fields)

  const page = await alice.get('/history')
  t.equal(page.status, 200)
  const receiptLinks = [...page.body.matchAll(/href="cashnet\/return\?ref=([^"]+)"/g)].map(m => m[1])
  t.same(receiptLinks, [aliceDeclined, aliceFirst], 'alice\'s payments made or tried, newest first; not the abandoned checkout')
  t.notOk(page.body.includes(carolId), 'nothing of carol\'s payment')
  t.notOk(page.body.includes(aliceAbandoned))
  t.match(page.body, 'Paid and recorded')
  t.match(page.body, 'Declined; nothing charged')
  const posted = await stack.app.ledger.getCheckout(aliceFirst)
  t.match(page.body, posted?.lines[0].feeTypeDesc ?? 'missing', 'the fees paid')
  t.match(page.body, /\$\d+\.\d{2}/, 'the amounts')
  t.match(page.body, /<time datetime="[^"]+">[A-Z][a-z]+ \d{1,2}, \d{4} at \d{1,2}:\d{2} [AP]M C[DS]T<\/time>/, 'date and time in the library\'s zone, the zone named')
  t.match(page.body, 'America/Chicago time')

  // each link opens its receipt for alice
  const receipt = await alice.get(`/cashnet/return?ref=${aliceFirst}`)
  t.equal(receipt.status, 200)
  t.match(receipt.body, /Date and time<\/dt><dd><time datetime="[^"]+">[^<]+ C[DS]T<\/time>/, 'the receipt\'s date and time with the zone')
  t.match(receipt.body, 'The reference is this payment’s number', 'the reference explained')
  t.match(receipt.body, /<button type="button" class="button secondary print-button" hidden>Print this receipt<\/button>/, 'a print button, shown by print.js')
  t.match(receipt.body, 'use your browser’s Print command', 'and without JavaScript, how to print')
  t.match(receipt.body, 'assets/print.js')
  const css = await send(`${stack.serviceUrl}/assets/style.css`)
  t.match(css.body, /@media print \{[\s\S]*\.sign-out, \.print-hint/, 'a print stylesheet hides what is no use on paper')
  const script = await send(`${stack.serviceUrl}/assets/print.js`)
  t.match(script.body, 'window.print()')

  // carol's receipt stays refused to alice, even by its reference
  const stolen = await alice.get(`/cashnet/return?ref=${carolId}`)
  t.equal(stolen.status, 404)
  t.notOk(stolen.body.includes(carolId))
  // and carol's history holds her payment only
  const carolPage = await carol.get('/history')
  t.same([...carolPage.body.matchAll(/href="cashnet\/return\?ref=([^"]+)"/g)].map(m => m[1]), [carolId])
})

t.test('the history is a patron page: not from an untrusted peer, not without a user', async t => {
  const stack = await build(t)
  t.equal((await send(`${stack.serviceUrl}/history`, { from: UNTRUSTED_PEER, headers: { 'x-ezproxy-user': 'alice' } })).status, 403)
  t.equal((await send(`${stack.serviceUrl}/history`)).status, 401)
})

t.test('TIMEZONE: an IANA zone, the process\'s own by default; anything else stops the start', async t => {
  const base = { PUBLIC_URL: 'https://fines.example.edu', ALMA_API_KEY: 'k', CASHNET_CHECKOUT_URL: 'https://train.cashnet.com/X', CASHNET_ITEM_CODE: 'LIB', CASHNET_POSTBACK_ALLOW: '127.0.0.4', EZPROXY_ALLOW: '127.0.0.1', COOKIE_SECRET: SANDBOX_COOKIE_SECRET }
  t.equal(loadConfig(base).timeZone, Intl.DateTimeFormat().resolvedOptions().timeZone)
  t.equal(loadConfig({ ...base, TIMEZONE: 'Europe/Helsinki' }).timeZone, 'Europe/Helsinki')
  t.throws(() => loadConfig({ ...base, TIMEZONE: 'Mars/Olympus_Mons' }), /TIMEZONE must be an IANA time zone/)
})

t.test('a payment the provider collected another amount for: /history and the staff list state what was received and what was due', async t => {
  // PayPal captures $2.00 of the $5.00 due (the order said $5.00): the payment needs staff (MISMATCH)
  const stack = await build(t, { env: { ...ENV, PAYMENT_PROVIDER: 'paypal' }, paypal: { faults: { captureAmountDeltaCents: -300 } } })
  const alice = new Browser(stack).login('alice')
  const form = readForm((await alice.get('/')).body, 'pay-form')
  const started = await alice.post('/checkout', [...form.fields, ['fee', '100001']])
  const approval = await alice.request(String(started.headers.location))
  const decision = readForm(approval.body)
  const decided = await alice.request(new URL(decision.action, String(started.headers.location)).toString(), { method: 'POST', body: new URLSearchParams([...decision.fields, ['action', 'approve']]).toString() })
  await alice.request(String(decided.headers.location))
  const checkout = await stack.app.ledger.latestCheckoutForUser('alice')
  t.equal(checkout?.attentionKind, 'MISMATCH', 'PayPal collected another amount than the checkout')

  const history = await alice.get('/history')
  const row = /<tbody>([\s\S]*?)<\/tbody>/.exec(history.body)?.[1] ?? ''
  t.match(row, /<td class="amount"><span class="received">\$2\.00 received<\/span><span class="fee-meta due">\$5\.00 due<\/span><\/td>/, 'the patron sees what was received, and what was due')
  t.notMatch(row, /<td class="amount">\$5\.00<\/td>/, 'not the checkout\'s total as if it had been paid')
  t.match(row, 'for the payment of $2.00 received of $5.00 due', 'the receipt link says so too')

  const staff = new Browser(stack).login('staff')
  const list = await staff.get('/admin')
  const listRow = /<table class="admin">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(list.body)?.[1] ?? ''
  t.match(listRow, /<td class="amount"><span class="received">\$2\.00 received<\/span><span class="fee-meta due">\$5\.00 due<\/span><\/td>/, 'staff see what was received and what was due')
})

t.test('a payment received as due is stated by its amount alone, on /history and the staff list', async t => {
  const stack = await build(t, { env: ENV })
  const alice = new Browser(stack).login('alice')
  const paid = await alice.checkout(['100001'])
  await alice.payOnCashnet(paid.action, paid.fields)
  const id = checkoutIdFrom(paid.fields)
  await until(async () => (await stack.app.ledger.getCheckout(id))?.state === 'POSTED', 'posted')
  t.match((await alice.get('/history')).body, /<td class="amount">\$5\.00<\/td>/)
  t.match((await new Browser(stack).login('staff').get('/admin')).body, /<td class="amount">\$5\.00<\/td>/)
})
