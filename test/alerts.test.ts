// Alert e-mail: when money needs a person, ALERT_EMAIL_TO gets a message through SMTP_URL saying which payment,
// how much, CashNet's tx and where to look, and nothing secret; when the mail server is down the payment goes on
// as before and the failure is one log line. The mail server is a real SMTP server on an ephemeral port.

import t from 'tap'
import { type Cents, formatDecimal } from '../src/money.ts'
import { SANDBOX_API_KEY, SANDBOX_COOKIE_SECRET } from '../src/sandbox/stack.ts'
import { Browser, build, checkoutIdFrom, freePort, type TestStack, until } from './helper.ts'
import { runningMailServer } from './support/mail-server.ts'

const ALERT_ENV = { ALERT_EMAIL_TO: 'bursar-alerts@example.edu', ALERT_EMAIL_FROM: 'fines@example.edu' }

/** The patron pays two fees while one of them is partly paid at the desk: the payment needs a person. */
async function paymentNeedingAttention (stack: TestStack): Promise<string> {
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout(['100001', '100002'])
  stack.alma.payAtDesk('100002', 2000)
  await alice.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  return checkoutIdFrom(fields)
}

t.test('a payment that needs a person is e-mailed: which, how much, the CashNet tx, the admin page, nothing secret', async t => {
  const smtp = await runningMailServer(t)
  const stack = await build(t, { env: { SMTP_URL: smtp.url, ...ALERT_ENV } })
  const id = await paymentNeedingAttention(stack)
  const checkout = await stack.app.ledger.getCheckout(id)
  t.equal(checkout?.state, 'NEEDS_ATTENTION')
  await until(() => smtp.mails.length > 0, 'the alert e-mail')
  t.equal(smtp.mails.length, 1, 'one message')
  const [mail] = smtp.mails
  t.same(mail.to, ['bursar-alerts@example.edu'])
  t.equal(mail.from, 'fines@example.edu')
  t.match(mail.text, `Subject: [alma-cashnet] payment needs attention: ${checkout?.patronName as string} ${formatDecimal(checkout?.total as Cents)}`, 'the subject says who and how much')
  t.match(mail.text, `Checkout ${id} (CashNet tx ${checkout?.tx as string})`)
  t.match(mail.text, '20.00 could not be applied', 'the reason')
  t.match(mail.text, `${stack.app.config.publicUrl}/admin/payments/${id}`, 'where to look')
  for (const secret of [SANDBOX_API_KEY, SANDBOX_COOKIE_SECRET]) t.notMatch(mail.text, secret, 'no secret in the message')
})

t.test('a payment stuck in PAID is e-mailed once, with its last error', async t => {
  const smtp = await runningMailServer(t)
  const stack = await build(t, { env: { SMTP_URL: smtp.url, PAID_ALERT_MINUTES: '5', ...ALERT_ENV }, app: { startWorker: false } })
  const carol = new Browser(stack).login('carol')
  const { fields, action } = await carol.checkout()
  await carol.payOnCashnet(action, fields)
  const id = checkoutIdFrom(fields)
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'PAID')
  await stack.app.worker.sweep(new Date(Date.now() + 6 * 60_000))
  await stack.app.worker.sweep(new Date(Date.now() + 7 * 60_000))
  await until(() => smtp.mails.length > 0, 'the alert e-mail')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(smtp.mails.length, 1, 'one message for two sweeps')
  t.match(smtp.mails[0].text, 'Subject: [alma-cashnet] payment not yet in Alma after 5 minutes')
  t.match(smtp.mails[0].text, `Checkout ${id} (CashNet tx`)
  t.match(smtp.mails[0].text, 'Last error: none')
})

t.test('the mail server down: the payment is handled as before, and one log line says the alert was not sent', async t => {
  const closedPort = await freePort()
  const stack = await build(t, { env: { SMTP_URL: `smtp://127.0.0.1:${closedPort}`, ...ALERT_ENV } })
  const id = await paymentNeedingAttention(stack)
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'NEEDS_ATTENTION', 'the payment went where it should')
  t.ok(stack.logLines().some(l => l.event === 'payment.needs_attention' && l.checkout === id), 'the alert log line is written regardless')
  await until(() => stack.logLines().some(l => l.event === 'alert.mail_failed'), 'the mail failure line')
  const failed = stack.logLines().filter(l => l.event === 'alert.mail_failed')
  t.equal(failed.length, 1)
  t.equal(failed[0].level, 50)
  t.match(failed[0].msg, 'check SMTP_URL')
})

t.test('without SMTP_URL no mail is attempted', async t => {
  const smtp = await runningMailServer(t)
  const stack = await build(t, { env: { ...ALERT_ENV } })
  await paymentNeedingAttention(stack)
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(smtp.mails.length, 0)
  t.notOk(stack.logLines().some(l => l.event === 'alert.mail_failed'))
})
