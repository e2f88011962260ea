// Receipt e-mails (RECEIPT_EMAIL=on, SPEC 14): one e-mail per payment when Alma has it (POSTED), a different,
// honest one when it needs staff, plain text and HTML, branded, and the library's copy when
// LIBRARY_RECEIPT_COPY_TO is set; none when off. They go through the ledger's outbox, written with the state
// change, so neither an SMTP outage nor a SIGKILL between posting and sending loses or duplicates one. A real SMTP
// server on an ephemeral port is the judge; the service runs in process, and as a child process for the kill.

import t from 'tap'
import { loadConfig } from '../src/config.ts'
import { SqliteLedger } from '../src/ledger/sqlite/index.ts'
import { SANDBOX_COOKIE_SECRET } from '../src/sandbox/stack.ts'
import { Browser, build, checkoutIdFrom, readForm, send, type TestStack, until } from './helper.ts'
import { mailServer } from './support/mail-server.ts'
import { childSandboxes, serviceProcess } from './support/service-process.ts'

const RECEIPT_ENV = { RECEIPT_EMAIL: 'on', RECEIPT_EMAIL_FROM: 'fines@library.example.edu' }
const FAST = { outboxPollMs: 50, outboxRetryBaseMs: 100, outboxRetryMaxMs: 400 }

async function pay (stack: TestStack, fees: string[], before?: () => void): Promise<string> {
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout(fees)
  before?.()
  await alice.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  return checkoutIdFrom(fields)
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

t.test('a recorded payment: one receipt to the patron and one copy to the library, plain text and HTML, branded; never again', async t => {
  const smtp = await mailServer(t)
  await smtp.start()
  const stack = await build(t, { env: { SMTP_URL: smtp.url, ...RECEIPT_ENV, LIBRARY_RECEIPT_COPY_TO: 'circ-desk@library.example.edu', METRICS_ALLOW: '127.0.0.5' }, app: FAST })
  const id = await pay(stack, ['100001', '100002'])
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'POSTED')
  await until(() => smtp.mails.length >= 2, 'the receipt and the copy')
  await sleep(500)
  t.equal(smtp.mails.length, 2, 'exactly one each, however many times the outbox is looked at')
  const patron = smtp.mails.find(m => m.to.includes('alice.archer@example.edu'))
  const copy = smtp.mails.find(m => m.to.includes('circ-desk@library.example.edu'))
  t.ok(patron, 'the patron gets a receipt at the address Alma has')
  t.ok(copy, 'the library gets its copy')
  t.equal(patron?.from, 'fines@library.example.edu', 'from RECEIPT_EMAIL_FROM')
  t.equal(patron?.subject, 'Springfield University Library: receipt for your payment of $50.50')
  t.match(patron?.readable, 'Content-Type: text/plain')
  t.match(patron?.readable, 'Content-Type: text/html')
  t.match(patron?.readable, `Reference: ${id}`)
  t.match(patron?.readable, 'The Name of the Rose')
  t.match(patron?.readable, `cashnet/return?ref=${id}`, 'a link to the receipt page')
  t.match(copy?.subject, /copy of receipt: Alice Archer \$50\.50/)
  t.match(copy?.readable, `/admin/payments/${id}`)
  t.notSame(patron?.messageId, copy?.messageId)
  t.not((await stack.app.ledger.outboxMessage(`receipt-${id}-recorded-patron`))?.sentAt, null, 'the outbox row is marked sent')
  const metrics = await send(`${stack.serviceUrl}/metrics`, { from: '127.0.0.5' })
  t.match(metrics.body, /^almacashnet_receipts_total\{outcome="sent"\} 2$/m, 'the receipts counter counts both e-mails (issue 19)')
  const page = await new Browser(stack).login('alice').get(`/cashnet/return?ref=${id}`)
  t.match(page.body, /<dt>Amount<\/dt><dd class="amount-fact">\$50\.50<\/dd>/, 'the receipt page of a normal payment: its amount, as always')
  t.match(page.body, 'Fees paid')
  t.notMatch(page.body, 'Amount due')
})

t.test('a payment that needs staff gets the honest variant, not a receipt that says it is recorded', async t => {
  const smtp = await mailServer(t)
  await smtp.start()
  const stack = await build(t, { env: { SMTP_URL: smtp.url, ...RECEIPT_ENV }, app: FAST })
  // one of the fees is partly paid at the desk meanwhile: money would be left over, so staff must finish it
  const id = await pay(stack, ['100001', '100002'], () => { stack.alma.payAtDesk('100002', 2000) })
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'NEEDS_ATTENTION')
  await until(() => smtp.mails.length >= 1, 'the e-mail')
  await sleep(300)
  t.equal(smtp.mails.length, 1, 'one e-mail, no library copy when none is configured')
  const mail = smtp.mails[0]
  t.same(mail.to, ['alice.archer@example.edu'])
  t.equal(mail.subject, 'Springfield University Library: we received your payment of $50.50')
  t.match(mail.readable, 'Library staff are checking it')
  t.match(mail.readable, 'you do not need to pay again')
  t.notMatch(mail.readable, 'is recorded')
  t.ok(await stack.app.ledger.outboxMessage(`receipt-${id}-staff-patron`))
})

t.test('a postback that does not match hands the payment to staff: the e-mail states what CashNet collected, not the checkout', async t => {
  const smtp = await mailServer(t)
  await smtp.start()
  const stack = await build(t, { env: { SMTP_URL: smtp.url, ...RECEIPT_ENV, LIBRARY_RECEIPT_COPY_TO: 'circ-desk@library.example.edu' }, app: FAST })
  // the patron edits CashNet's amount1 from 5.00 to 1.00: CashNet takes $1.00 for a $5.00 checkout
  stack.cashnet.behaviour.tamperAmount1Cents = -400
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout(['100001'])
  await alice.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  const id = checkoutIdFrom(fields)
  t.equal((await stack.app.ledger.getCheckout(id))?.attentionKind, 'MISMATCH')
  await until(() => smtp.mails.length >= 2, 'the e-mail and the copy')
  const patron = smtp.mails.find(m => m.to.includes('alice.archer@example.edu'))
  const copy = smtp.mails.find(m => m.to.includes('circ-desk@library.example.edu'))
  t.equal(patron?.subject, 'Springfield University Library: we received $1.00 of the $5.00 due')
  t.match(patron?.readable, 'Received: $1.00')
  t.match(patron?.readable, 'Due: $5.00')
  t.match(patron?.readable, 'Library staff will look at the $4.00 difference and contact you')
  t.notMatch(patron?.readable, 'payment of $5.00', 'never the checkout\'s total as money received')
  t.notMatch(patron?.readable, 'Amount: $5.00')
  t.notMatch(patron?.readable, 'you do not need to pay again', 'not for money never taken')
  t.notMatch(patron?.readable, 'Fees paid')
  t.match(copy?.subject, /payment needs staff: Alice Archer \$1\.00 received of \$5\.00 due/)
  t.match(copy?.readable, 'Received: $1.00')
  t.notMatch(copy?.readable, 'payment of $5.00')

  const receipt = await alice.get(`/cashnet/return?ref=${id}`)
  t.equal(receipt.status, 200)
  t.match(receipt.body, /<dt>Amount received<\/dt><dd class="amount-fact">\$1\.00<\/dd>/, 'the page states what CashNet collected')
  t.match(receipt.body, /<dt>Amount due<\/dt><dd>\$5\.00<\/dd>/)
  t.match(receipt.body, 'Library staff will look at the $4.00 difference and contact you')
  t.notMatch(receipt.body, 'You do not need to pay again')
  t.notMatch(receipt.body, 'Fees paid')
  t.notMatch(receipt.body, /<dt>Amount<\/dt><dd class="amount-fact">\$5\.00/)

  // staff record in Alma the $1.00 that was received: the page no longer says the fees are as they were
  const staff = new Browser(stack).login('staff')
  const admin = await staff.get(`/admin/payments/${id}`)
  const confirm = readForm(admin.body.slice(admin.body.indexOf('<form class="post-confirmed"')))
  t.equal((await staff.post(`/admin/payments/${id}/post-confirmed`, confirm.fields)).status, 303)
  await until(async () => (await stack.app.ledger.getCheckout(id))?.state === 'POSTED', 'posted by staff')
  const after = await alice.get(`/cashnet/return?ref=${id}`)
  t.match(after.body, 'The $1.00 received is recorded on your library account; the other $4.00 of these fees is still owed.')
  t.notMatch(after.body, 'stay on your library account as they were', 'the page does not contradict itself once staff recorded what was received')
  t.notMatch(after.body, 'will look at the $4.00 difference')
})

t.test('PayPal capturing another amount: the e-mail states the amount captured; another currency is not called received', async t => {
  for (const [fault, subject] of [
    [{ captureAmountDeltaCents: -300 }, 'Springfield University Library: we received $2.00 of the $5.00 due'],
    [{ captureCurrency: 'EUR' }, 'Springfield University Library: we could not confirm the amount of your payment']
  ] as const) {
    const smtp = await mailServer(t)
    await smtp.start()
    const stack = await build(t, { env: { SMTP_URL: smtp.url, ...RECEIPT_ENV, PAYMENT_PROVIDER: 'paypal' }, app: FAST, paypal: { faults: fault } })
    const alice = new Browser(stack).login('alice')
    const form = readForm((await alice.get('/')).body, 'pay-form')
    const started = await alice.post('/checkout', [...form.fields, ['fee', '100001']])
    const approval = await alice.request(String(started.headers.location))
    const decision = readForm(approval.body)
    const decided = await alice.request(new URL(decision.action, String(started.headers.location)).toString(), { method: 'POST', body: new URLSearchParams([...decision.fields, ['action', 'approve']]).toString() })
    const page = await alice.request(String(decided.headers.location))
    await stack.app.worker.idle()
    t.equal((await stack.app.ledger.latestCheckoutForUser('alice'))?.attentionKind, 'MISMATCH')
    await until(() => smtp.mails.length >= 1, 'the e-mail')
    t.equal(smtp.mails[0].subject, subject, JSON.stringify(fault))
    t.notMatch(smtp.mails[0].readable, 'payment of $5.00')
    t.notMatch(smtp.mails[0].readable, 'you do not need to pay again')
    t.notMatch(page.body, 'You do not need to pay again', 'nor the receipt page')
    t.notMatch(page.body, /<dd class="amount-fact">\$5\.00/)
  }
})

t.test('a payment through PayPal gets its receipt too: PayPal\'s capture id, its receipt page, the time in TIMEZONE', async t => {
  const smtp = await mailServer(t)
  await smtp.start()
  const stack = await build(t, { env: { SMTP_URL: smtp.url, ...RECEIPT_ENV, PAYMENT_PROVIDER: 'paypal', TIMEZONE: 'Asia/Tokyo' }, app: FAST })
  const pp = stack.paypal
  if (pp === null) throw new Error('no PayPal stand-in')
  const alice = new Browser(stack).login('alice')
  const form = readForm((await alice.get('/')).body, 'pay-form')
  const started = await alice.post('/checkout', [...form.fields, ['fee', '100001']])
  t.equal(started.status, 303)
  const approval = await alice.request(String(started.headers.location))
  const decision = readForm(approval.body)
  const decided = await alice.request(new URL(decision.action, String(started.headers.location)).toString(), { method: 'POST', body: new URLSearchParams([...decision.fields, ['action', 'approve']]).toString() })
  await alice.request(String(decided.headers.location))
  await stack.app.worker.idle()
  const id = (await stack.app.ledger.latestCheckoutForUser('alice'))?.id ?? ''
  t.equal(pp.captures.length, 1, 'one capture')
  await until(async () => (await stack.app.ledger.getCheckout(id))?.state === 'POSTED', 'posted')
  await until(() => smtp.mails.length >= 1, 'the receipt')
  await sleep(300)
  t.equal(smtp.mails.length, 1, 'one receipt for the PayPal payment')
  const mail = smtp.mails[0]
  t.match(mail.subject, 'receipt for your payment of $5.00')
  t.match(mail.readable, `PayPal transaction: ${pp.captures[0].id}`, 'the capture id, named as PayPal\'s')
  t.notMatch(mail.readable, 'CashNet')
  t.match(mail.readable, `paypal/return?ref=${id}`, 'the link goes to the PayPal receipt page')
  t.match(mail.readable, /GMT\+9/, 'the date and time in the library\'s zone, not the process\'s')
})

t.test('RECEIPT_EMAIL off (the default): no receipt is written or sent', async t => {
  const smtp = await mailServer(t)
  await smtp.start()
  const stack = await build(t, { env: { SMTP_URL: smtp.url, LIBRARY_RECEIPT_COPY_TO: 'circ-desk@library.example.edu' }, app: FAST })
  const id = await pay(stack, ['100001'])
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'POSTED')
  await sleep(500)
  t.same(smtp.mails, [], 'no e-mail')
  t.equal(await stack.app.ledger.outboxMessage(`receipt-${id}-recorded-patron`), undefined, 'nothing in the outbox')
  t.equal(stack.app.outboxSender, undefined, 'no sender runs')
})

t.test('RECEIPT_EMAIL=on needs SMTP_URL; RECEIPT_EMAIL_FROM defaults to ALERT_EMAIL_FROM; the copy address is checked', async t => {
  const base = { PUBLIC_URL: 'https://fines.example.edu', ALMA_API_KEY: 'k', CASHNET_CHECKOUT_URL: 'https://train.cashnet.com/X', CASHNET_ITEM_CODE: 'LIB', CASHNET_POSTBACK_ALLOW: '192.0.2.1', EZPROXY_ALLOW: '192.0.2.2', COOKIE_SECRET: SANDBOX_COOKIE_SECRET }
  t.throws(() => loadConfig({ ...base, RECEIPT_EMAIL: 'on' }), /SMTP_URL is required when RECEIPT_EMAIL=on/)
  const off = loadConfig(base)
  t.same([off.receiptEmail, off.libraryReceiptCopyTo, off.partialPayments], [false, '', false], 'off by default')
  t.equal(loadConfig({ ...base, ALERT_EMAIL_FROM: 'alerts@example.edu' }).receiptEmailFrom, 'alerts@example.edu')
  t.equal(loadConfig({ ...base, ALERT_EMAIL_FROM: 'alerts@example.edu', RECEIPT_EMAIL_FROM: 'fines@example.edu' }).receiptEmailFrom, 'fines@example.edu')
  t.throws(() => loadConfig({ ...base, LIBRARY_RECEIPT_COPY_TO: 'circ desk' }), /LIBRARY_RECEIPT_COPY_TO must be one e-mail address/)
  t.throws(() => loadConfig({ ...base, RECEIPT_EMAIL: 'yes' }), /RECEIPT_EMAIL must be one of on, off/)
  t.throws(() => loadConfig({ ...base, PARTIAL_PAYMENTS: '1' }), /PARTIAL_PAYMENTS must be one of on, off/)
})

t.test('the mail server down for a while: retried with backoff, then the receipt is delivered once', async t => {
  const smtp = await mailServer(t)
  const stack = await build(t, { env: { SMTP_URL: smtp.url, ...RECEIPT_ENV }, app: FAST })
  const id = await pay(stack, ['100001'])
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'POSTED', 'posting does not wait for the mail server')
  const row = `receipt-${id}-recorded-patron`
  await until(async () => ((await stack.app.ledger.outboxMessage(row))?.attempts ?? 0) >= 3, 'three failed attempts')
  const failed = await stack.app.ledger.outboxMessage(row)
  t.equal(failed?.sentAt, null)
  t.match(failed?.lastError, /ECONNECTION|ECONNREFUSED|ESOCKET/, 'the reason is kept')
  t.ok(stack.logLines().some(l => l.event === 'outbox.retry'), 'each failure is a log line for the operator')
  await smtp.start()
  await until(() => smtp.mails.length >= 1, 'the receipt once the server is back')
  await sleep(1000)
  t.equal(smtp.mails.length, 1, 'delivered once')
  t.not((await stack.app.ledger.outboxMessage(row))?.sentAt, null)
})

t.test('SIGKILL between posting and sending: the receipt is sent after the restart, exactly once', async t => {
  const smtp = await mailServer(t)
  const sandboxes = await childSandboxes(t, 'alma-cashnet-receipt-', {
    ALMA_TIMEOUT_MS: '2000',
    POSTING_RETRY_BASE_MS: '50',
    SMTP_URL: smtp.url,
    RECEIPT_EMAIL: 'on',
    RECEIPT_RETRY_BASE_MS: '100',
    RECEIPT_RETRY_MAX_MS: '300'
  })
  const ledger = new SqliteLedger({ path: sandboxes.env.DATABASE_PATH })
  t.teardown(async () => { await ledger.close() })
  const service = serviceProcess(t, sandboxes.env)
  await service.start()

  // the mail server is down when the payment is posted: the receipt can only be in the outbox when the kill comes
  const browser = new Browser(sandboxes).login('alice')
  const { fields, action } = await browser.checkout(['100001'])
  const id = checkoutIdFrom(fields)
  await browser.payOnCashnet(action, fields)
  await until(async () => (await ledger.getCheckout(id))?.state === 'POSTED', 'the posting')
  await service.stop()
  const queued = await ledger.outboxMessage(`receipt-${id}-recorded-patron`)
  t.ok(queued, 'the receipt was written with POSTED, before the kill')
  t.equal(queued?.sentAt, null, 'and not sent')
  t.same(smtp.mails, [])

  await smtp.start()
  await service.start()
  await until(() => smtp.mails.length >= 1, 'the receipt after the restart')
  await sleep(1000)
  t.equal(smtp.mails.length, 1, 'exactly one receipt')
  t.same(smtp.mails[0].to, ['alice.archer@example.edu'])
  t.same(sandboxes.alma.paymentsFor((await ledger.getCheckout(id))?.tx ?? '').map(p => [p.feeId, p.amountCents]), [['100001', 500]], 'and the fee paid once')
})
