// What a pay-link patron reads: they have no EZproxy, no username and no sign-in, only the link the library
// e-mailed them (and later a receipt e-mail). The pages they can meet speak of that link, never of EZproxy, the
// library's "pay fines" link or a username; and the receipt e-mail's logo is on the address its links use.

import t from 'tap'
import { Browser, checkoutIdFrom, Stranger, until } from './helper.ts'
import { checkOut, directStack, openPayLink, payOnCashnet } from './support/pay-links.ts'

const EZPROXY_WORDING = /EZproxy|library link|library’s sign-in|username|“pay fines”/

t.test('the receipt link of a pay-link payment, opened after the session ended, asks to open the payment link again, in every identity mode', async t => {
  for (const mode of ['header', 'userobject', 'primo']) {
    t.test(`AUTH_MODE=${mode}`, async t => {
      const stack = await directStack(t, { AUTH_MODE: mode, RECEIPT_EMAIL: 'on', RECEIPT_EMAIL_FROM: 'fines@library.example.edu' }, { outboxPollMs: 50 })
      const patron = await openPayLink(t, stack, 'alice')
      const { action, fields } = await checkOut(t, patron, ['100001'])
      const id = checkoutIdFrom(fields)
      await payOnCashnet(patron, action, fields)
      await until(() => stack.smtp.mails.some(m => m.text.includes(id)), 'the receipt e-mail')
      const link = /See or print this receipt: (\S+)/.exec(stack.smtp.mails.find(m => m.text.includes(id))?.text ?? '')?.[1] ?? ''
      t.ok(link.startsWith(`${stack.payLinkUrl}/cashnet/return?ref=`), 'the e-mail links to the receipt on PAY_LINK_URL')

      // the patron signs out, and opens the receipt link from the e-mail later
      await patron.get('/logout')
      const later = await patron.get(link)
      // or in another browser (the phone the e-mail was read on)
      const elsewhere = await new Stranger(stack.payLinkUrl).get(link)
      for (const [answer, where] of [[later, 'the same browser, session ended'], [elsewhere, 'another browser']] as const) {
        t.equal(answer.status, 401, `${where}: not signed in, and the way in is the link`)
        t.match(answer.body, 'Please open your payment link again', where)
        t.match(answer.body, 'open the payment link the library e-mailed you', where)
        t.match(answer.body, 'ask the library to send you a new one', where)
        t.notMatch(answer.body, EZPROXY_WORDING, `${where}: no EZproxy wording`)
        t.notMatch(answer.body, 'Alice', `${where}: nothing of the receipt`)
        t.notMatch(answer.body, '$5.00', where)
        t.notOk(answer.headers.location, `${where}: not sent to sign in elsewhere`)
      }
      t.ok(stack.logLines().some(l => l.event === 'access.pay_link_ended' && /receipt opened without its pay-link session/.test(String(l.reason))), 'the operator sees why')

      // opening the pay link again shows the receipt
      const again = await openPayLink(t, stack, 'alice')
      const receipt = await again.get(link)
      t.equal(receipt.status, 200, 'in a new pay-link session the receipt opens')
      t.match(receipt.body, id)
    })
  }
})

t.test('the receipt link of an EZproxy payment opened without EZproxy keeps the EZproxy refusal', async t => {
  const stack = await directStack(t)
  const carol = new Browser(stack).login('carol')
  const { action, fields } = await carol.checkout()
  await carol.payOnCashnet(action, fields)
  const answer = await new Stranger(stack.payLinkUrl).get(`/cashnet/return?ref=${checkoutIdFrom(fields)}`)
  t.equal(answer.status, 403)
  t.match(answer.body, 'Please use the library link', 'an EZproxy patron is sent back to EZproxy')
  const unknown = await new Stranger(stack.payLinkUrl).get('/cashnet/return?ref=nosuchcheckout')
  t.equal(unknown.status, 403, 'an unknown reference tells nothing either way')
  t.match(unknown.body, 'Please use the library link')
})

t.test('a pay-link patron Alma does not find is not asked for a username; an EZproxy patron still is', async t => {
  const stack = await directStack(t)
  const patron = await openPayLink(t, stack, 'alice')
  t.equal((await patron.get('/')).status, 200, 'alice\'s fines')
  stack.alma.users.delete('alice')
  const page = await patron.get('/')
  t.equal(page.status, 404)
  t.match(page.body, 'We could not find your library account')
  t.match(page.body, 'Your payment link worked')
  t.match(page.body, 'the e-mail address the payment link was sent to')
  t.notMatch(page.body, EZPROXY_WORDING, 'no username, no EZproxy')
  t.notMatch(page.body, 'sign-in')

  const nobody = await new Browser(stack).login('nobody-here').get('/')
  t.equal(nobody.status, 404)
  t.match(nobody.body, 'mention your username', 'through EZproxy the username is what the library needs')
})

t.test('a pay-link patron who signs out is not sent to EZproxy\'s sign-out; an EZproxy patron is', async t => {
  const stack = await directStack(t)
  const patron = await openPayLink(t, stack, 'alice')
  const out = await patron.get('/logout')
  t.equal(out.status, 200, 'a page of ours, not a redirect')
  t.notOk(out.headers.location)
  t.match(out.body, 'You are signed out')
  t.match(out.body, 'open the payment link in the library’s e-mail again')
  t.notMatch(out.body, EZPROXY_WORDING)
  t.notMatch(out.body, 'library sign-in')
  t.equal((await patron.get('/')).status, 403, 'and the session is over')
  t.ok(stack.logLines().some(l => l.event === 'auth.signed_out' && l.next === 'page' && l.session === 'ended'))

  const carol = new Browser(stack).login('carol')
  const carolOut = await carol.get('/logout')
  t.equal(carolOut.status, 302, 'an EZproxy patron goes on to EZproxy\'s sign-out')
  t.equal(carolOut.headers.location, stack.config.ezproxyLogoutUrl)
})

t.test('a pay-link patron on a staff page is not told about usernames and ADMIN_USERS', async t => {
  const stack = await directStack(t, { ADMIN_USERS: 'staff,alice' })
  const patron = await openPayLink(t, stack, 'alice')
  const admin = await patron.get('/admin')
  t.equal(admin.status, 403)
  t.match(admin.body, 'Staff only')
  t.notMatch(admin.body, 'ADMIN_USERS')
  t.notMatch(admin.body, EZPROXY_WORDING)
  const notStaff = await new Browser(stack).login('carol').get('/admin')
  t.match(notStaff.body, 'add your username to ADMIN_USERS', 'a patron through EZproxy keeps the staff wording')
})

t.test('a relative LIBRARY_LOGO_URL in a receipt e-mail is on the address of the e-mail\'s links: PAY_LINK_URL for a pay-link payment', async t => {
  const stack = await directStack(t, { RECEIPT_EMAIL: 'on', RECEIPT_EMAIL_FROM: 'fines@library.example.edu', LIBRARY_LOGO_URL: '/assets/logo.png' }, { outboxPollMs: 50 })
  const patron = await openPayLink(t, stack, 'alice')
  const { action, fields } = await checkOut(t, patron, ['100001'])
  const id = checkoutIdFrom(fields)
  await payOnCashnet(patron, action, fields)
  const carol = new Browser(stack).login('carol')
  const carolPay = await carol.checkout()
  await carol.payOnCashnet(carolPay.action, carolPay.fields)
  const carolId = checkoutIdFrom(carolPay.fields)
  await until(() => stack.smtp.mails.filter(m => m.subject.includes('receipt for your payment')).length >= 2, 'both receipts')

  const mail = stack.smtp.mails.find(m => m.text.includes(id))
  t.match(mail?.readable, `<img src="${stack.payLinkUrl}/assets/logo.png"`, 'the pay-link patron\'s logo is on PAY_LINK_URL, beside the receipt link')
  t.notMatch(mail?.readable, `${stack.config.publicUrl}/assets/logo.png`, 'not on PUBLIC_URL, which that patron may not reach')
  const carolMail = stack.smtp.mails.find(m => m.text.includes(carolId))
  t.match(carolMail?.readable, `<img src="${stack.config.publicUrl}/assets/logo.png"`, 'an EZproxy payment\'s logo stays on PUBLIC_URL')
})
