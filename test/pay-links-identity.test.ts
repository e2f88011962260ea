// A pay-link session knows its patron by Alma primary id, whatever ALMA_USER_ID_TYPE says about EZproxy
// usernames: its fines, checkout and receipt read Alma by primary id (no user_id_type), so a primary id that is
// also somebody else's campus id never shows or charges the other patron's fees. And a payment started from a pay
// link comes back to PAY_LINK_URL (where its session cookie lives), never through EZproxy's PUBLIC_URL.

import t from 'tap'
import { Browser, checkoutIdFrom, readForm, Stranger, type TestStack, until, zedWhoseCampusIdIsAlice } from './helper.ts'
import { checkOut, directStack, openPayLink, payOnCashnet } from './support/pay-links.ts'

/** zed, whose campus id (UNIV_ID) is alice's primary id, with a fee of their own. */
function addZed (stack: TestStack): void {
  stack.alma.addUser(zedWhoseCampusIdIsAlice())
}

t.test('ALMA_USER_ID_TYPE=UNIV_ID: a pay link opens its patron\'s fines and pays them, every Alma call by primary id', async t => {
  const stack = await directStack(t, { ALMA_USER_ID_TYPE: 'UNIV_ID' })
  stack.alma.calls.length = 0
  const patron = await openPayLink(t, stack, 'alice')
  const fines = await patron.get('/')
  t.equal(fines.status, 200)
  t.match(fines.body, 'Alice Archer')
  t.match(fines.body, 'The Name of the Rose')

  const { action, fields } = await checkOut(t, patron, ['100001'])
  const checkoutId = checkoutIdFrom(fields)
  const checkout = await stack.app.ledger.getCheckout(checkoutId)
  t.match(checkout, { userId: 'alice', primaryId: 'alice', total: 500 }, 'alice\'s checkout')
  const receipt = await payOnCashnet(patron, action, fields)
  t.equal(receipt.status, 200, 'CashNet brings the patron back to the receipt, in the session')
  t.match(receipt.body, checkoutId)
  t.equal((await patron.get('/history')).status, 200)
  t.match((await patron.get('/history')).body, checkoutId, 'the payment is in the pay-link patron\'s history')

  t.ok(stack.alma.calls.some(c => c.path.endsWith('/users/alice/fees')), 'Alma was asked for alice\'s fees')
  t.same(stack.alma.calls.filter(c => c.query.user_id_type !== undefined).map(c => `${c.method} ${c.path}?user_id_type=${c.query.user_id_type}`), [],
    'no Alma call for the pay-link session carries user_id_type')
})

t.test('a pay-link patron whose primary id is another patron\'s campus id sees and pays only their own fees', async t => {
  const stack = await directStack(t, { ALMA_USER_ID_TYPE: 'UNIV_ID' })
  // zed's campus id (their EZproxy username) is alice's primary id; Alma answers a read of "alice" with alice
  addZed(stack)
  // zed pays through EZproxy as username "alice"
  const zed = new Browser(stack).login('alice')
  const zedFines = await zed.get('/')
  t.match(zedFines.body, 'Zed Zimmermann', 'through EZproxy, "alice" is zed\'s campus id')
  const zedPay = await zed.checkout(['990001'])
  await zed.payOnCashnet(zedPay.action, zedPay.fields)
  const zedCheckout = checkoutIdFrom(zedPay.fields)
  t.match(await stack.app.ledger.getCheckout(zedCheckout), { userId: 'alice', primaryId: 'zed' })

  const patron = await openPayLink(t, stack, 'alice')
  const fines = await patron.get('/')
  t.equal(fines.status, 200)
  t.match(fines.body, 'Alice Archer')
  t.notMatch(fines.body, 'Zed', 'none of zed\'s name or fees')
  t.notMatch(fines.body, zedCheckout, 'nor zed\'s payment in progress')
  t.equal((await patron.get(`/cashnet/return?ref=${zedCheckout}`)).status, 404, 'nor zed\'s receipt')
  t.equal((await patron.get('/cashnet/return')).status, 404, 'nor zed\'s latest receipt')
  t.notMatch((await patron.get('/history')).body, zedCheckout, 'nor zed\'s history')

  const { fields } = await checkOut(t, patron, ['100001', '100002'])
  t.match(await stack.app.ledger.getCheckout(checkoutIdFrom(fields)), { primaryId: 'alice', patronName: 'Alice Archer', total: 5050 }, 'alice is charged alice\'s fees')
  t.equal(await (async () => (await patron.post('/checkout', [...readForm((await patron.get('/')).body, 'pay-form').fields, ['fee', '990001']])).status)(), 409, 'zed\'s fee is not payable from alice\'s link')
})

t.test('Alma answering a read by primary id with the patron whose campus id it is: nothing of theirs is shown or payable, the operator is told', async t => {
  const stack = await directStack(t, { ALMA_USER_ID_TYPE: 'UNIV_ID' })
  addZed(stack)
  const patron = await openPayLink(t, stack, 'alice')
  // the pay form as alice had it while Alma still answered with alice
  const before = await patron.get('/')
  t.match(before.body, 'Alice Archer')
  const pay = readForm(before.body, 'pay-form')

  stack.alma.faults.sharedIdentifierMatch = 'other-identifier'
  const fines = await patron.get('/')
  t.equal(fines.status, 404, 'the fines page refuses')
  t.match(fines.body, 'We could not find your library account', 'the calm page for a patron Alma cannot identify')
  t.notMatch(fines.body, 'Zed', 'none of zed\'s name')
  t.notMatch(fines.body, 'private reading', 'nor zed\'s fees')
  t.ok(stack.alma.calls.some(c => c.path === '/almaws/v1/users/alice/fees' && c.query.user_id_type === undefined), 'the fees were read in parallel, by primary id')

  for (const fee of ['990001', '100001']) {
    const checkout = await patron.post('/checkout', [...pay.fields, ['fee', fee]])
    t.equal(checkout.status, 404, `a checkout of fee ${fee} refuses`)
    t.match(checkout.body, 'We could not find your library account')
    t.notMatch(checkout.body, 'Zed')
  }
  t.equal(await stack.app.ledger.latestCheckoutForUser('alice', 'primary-id'), undefined, 'no checkout was recorded')

  const said = stack.logLines().filter(l => l.event === 'patron.ambiguous_id')
  t.equal(said.length, 3, 'one operator line per refusal')
  t.match(said[0], { level: 50, primaryId: 'alice', answeredWith: 'zed' })
  t.match(said[0].msg, /primary id "alice" with patron "zed".*Make the identifier unique in Alma/)
})

t.test('posting a pay-link payment whose primary id Alma answers as another patron pays nobody and goes to staff, to retry once Alma is fixed', async t => {
  for (const zedHasFees of [true, false]) {
    t.test(zedHasFees ? 'the other patron has fees' : 'the other patron owes nothing', async t => {
      const stack = await directStack(t, { ALMA_USER_ID_TYPE: 'UNIV_ID' })
      addZed(stack)
      const zed = stack.alma.users.get('zed')
      if (zed !== undefined && !zedHasFees) zed.fees = []
      const patron = await openPayLink(t, stack, 'alice')
      const { action, fields } = await checkOut(t, patron, ['100001'])
      const checkoutId = checkoutIdFrom(fields)
      // between the checkout and the posting, Alma starts answering "alice" with zed
      stack.alma.faults.sharedIdentifierMatch = 'other-identifier'
      await payOnCashnet(patron, action, fields)
      await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'NEEDS_ATTENTION', 'the posting to stop')
      const checkout = await stack.app.ledger.getCheckout(checkoutId)
      t.match(checkout, { attentionKind: 'ALMA_ERROR', unapplied: 0 })
      t.match(checkout?.attentionReason, /primary id "alice" with patron "zed".*Make the identifier unique in Alma, then retry/)
      t.same(checkout?.lines.map(l => l.postedAt), [null], 'the line is not marked posted: a retry can still post it')
      t.equal(stack.alma.calls.filter(c => c.method === 'POST').length, 0, 'no payment was sent to Alma')
      t.same(stack.alma.fee('100001').transactions, [], 'alice\'s fee untouched')
      if (zedHasFees) t.same(stack.alma.fee('990001').transactions, [], 'zed\'s fee untouched')

      // the identifier made unique in Alma: staff retry, and alice's fee is paid
      stack.alma.faults.sharedIdentifierMatch = 'primary-id'
      const staff = new Browser(stack).login('staff')
      const page = (await staff.get(`/admin/payments/${checkoutId}`)).body
      t.ok(page.includes('<form class="retry"'), 'staff are offered a retry')
      const retry = readForm(page.slice(page.indexOf('<form class="retry"')))
      t.equal((await staff.post(`/admin/payments/${checkoutId}/retry`, retry.fields)).status, 303)
      await until(async () => (await stack.app.ledger.getCheckout(checkoutId))?.state === 'POSTED', 'the retried posting')
      t.equal(stack.alma.fee('100001').balanceCents, 0, 'alice\'s fee is paid')
      if (zedHasFees) t.same(stack.alma.fee('990001').transactions, [], 'zed\'s fee still untouched')
    })
  }
})

t.test('CashNet\'s return by POST, cross-site and so without the session cookie, brings a pay-link patron to their receipt in every identity mode', async t => {
  for (const mode of ['header', 'userobject', 'primo']) {
    t.test(`AUTH_MODE=${mode}`, async t => {
      const stack = await directStack(t, { AUTH_MODE: mode })
      stack.cashnet.behaviour.returnMode = 'post'
      const patron = await openPayLink(t, stack, 'alice')
      t.equal(patron.sameSite.get('acn_session'), 'lax', 'the session cookie is SameSite=Lax')
      const { action, fields } = await checkOut(t, patron, ['100001'])
      const checkoutId = checkoutIdFrom(fields)
      const receipt = await payOnCashnet(patron, action, fields)
      t.equal(receipt.status, 200, 'the receipt, not a refusal')
      t.match(receipt.body, checkoutId, 'of this payment')
      t.notMatch(receipt.body, 'Please use the library link')
    })
  }
})

t.test('a cookieless POST to the return is only bounced to GET: it shows no receipt by itself', async t => {
  const stack = await directStack(t)
  const patron = await openPayLink(t, stack, 'alice')
  const { action, fields } = await checkOut(t, patron, ['100001'])
  const checkoutId = checkoutIdFrom(fields)
  stack.cashnet.behaviour.returnMode = 'post'
  await payOnCashnet(patron, action, fields)
  const stranger = new Stranger(stack.payLinkUrl)
  const posted = await stranger.post('/cashnet/return', [['ref', checkoutId]])
  t.equal(posted.status, 303)
  t.equal(posted.headers.location, 'return')
  t.notMatch(posted.body, checkoutId)
  const followed = await stranger.get('/cashnet/return')
  t.equal(followed.status, 403, 'without the session, the GET is refused as before')
  t.notMatch(followed.body, checkoutId)
})

t.test('the receipt e-mail of a pay-link payment links to its receipt on PAY_LINK_URL, where that patron (and only they) can open it', async t => {
  const stack = await directStack(t, { RECEIPT_EMAIL: 'on', RECEIPT_EMAIL_FROM: 'fines@library.example.edu' }, { outboxPollMs: 50 })
  const patron = await openPayLink(t, stack, 'alice')
  const { action, fields } = await checkOut(t, patron, ['100001'])
  const id = checkoutIdFrom(fields)
  await payOnCashnet(patron, action, fields)
  await until(async () => (await stack.app.ledger.getCheckout(id))?.state === 'POSTED', 'the posting')
  // and carol pays through EZproxy: her receipt stays on PUBLIC_URL
  const carol = new Browser(stack).login('carol')
  const carolPay = await carol.checkout()
  await carol.payOnCashnet(carolPay.action, carolPay.fields)
  const carolId = checkoutIdFrom(carolPay.fields)
  await until(() => stack.smtp.mails.filter(m => m.subject.includes('receipt for your payment')).length >= 2, 'both receipts')

  const mail = stack.smtp.mails.find(m => m.to.includes('alice.archer@example.edu') && m.text.includes(id))
  const link = `${stack.payLinkUrl}/cashnet/return?ref=${id}`
  t.match(mail?.text, `See or print this receipt: ${link}`, 'the plain text links to PAY_LINK_URL')
  t.match(mail?.readable, `href="${link.replace(/&/g, '&amp;')}"`, 'and so does the HTML')
  t.notMatch(mail?.readable, `${stack.config.publicUrl}/cashnet/return`, 'never to PUBLIC_URL, which the patron cannot sign in to')
  const carolMail = stack.smtp.mails.find(m => m.text.includes(carolId) && !m.subject.includes('copy'))
  t.match(carolMail?.text, `${stack.config.publicUrl}/cashnet/return?ref=${carolId}`, 'an EZproxy payment\'s receipt stays on PUBLIC_URL')

  const opened = await patron.get(link)
  t.equal(opened.status, 200, 'the link opens the receipt in the pay-link session')
  t.match(opened.body, id)
  const viaEzproxy = await new Browser(stack).login('alice').get(`/cashnet/return?ref=${id}`)
  t.equal(viaEzproxy.status, 404, 'an EZproxy session of the same text does not own it')
  t.equal((await patron.get(`/cashnet/return?ref=${carolId}`)).status, 404, 'nor does the pay-link patron own carol\'s')
  const stranger = await new Stranger(stack.payLinkUrl).get(link)
  t.not(stranger.status, 200, 'without the session the link shows nothing')
  t.notMatch(stranger.body, 'Alice')
})

t.test('PAY_LINK_URL with PayPal: the order\'s return and cancel URLs are on PAY_LINK_URL, and the return shows the receipt', async t => {
  const stack = await directStack(t, { PAYMENT_PROVIDER: 'paypal' })
  const patron = await openPayLink(t, stack, 'alice')
  const fines = await patron.get('/')
  const pay = readForm(fines.body, 'pay-form')
  const started = await patron.post('/checkout', [...pay.fields, ['fee', '100001']])
  t.equal(started.status, 303)
  const approveUrl = String(started.headers.location)
  const order = stack.paypal?.orders.get(new URL(approveUrl).searchParams.get('token') ?? '')
  t.equal(order?.returnUrl, `${stack.payLinkUrl}/paypal/return`)
  t.equal(order?.cancelUrl, `${stack.payLinkUrl}/paypal/cancel`)
  const page = await patron.get(approveUrl)
  const approve = readForm(page.body)
  const decided = await patron.request(new URL(approve.action, approveUrl).toString(), { method: 'POST', body: new URLSearchParams([...approve.fields, ['action', 'approve']]).toString() })
  const back = String(decided.headers.location)
  t.ok(back.startsWith(`${stack.payLinkUrl}/paypal/return`), 'PayPal sends the patron back to PAY_LINK_URL')
  const receipt = await patron.get(back)
  t.equal(receipt.status, 200, 'the receipt, in the pay-link session')
  t.match(receipt.body, order?.customId ?? '?')
})

t.test('PAY_LINK_URL with CashNet: signouturl is on PAY_LINK_URL for a pay-link session, on PUBLIC_URL through EZproxy', async t => {
  const stack = await directStack(t)
  const patron = await openPayLink(t, stack, 'alice')
  const { fields } = await checkOut(t, patron, ['100001'])
  t.equal(fields.find(([k]) => k === 'signouturl')?.[1], `${stack.payLinkUrl}/cashnet/return`)
  const viaEzproxy = await new Browser(stack).login('carol').checkout()
  t.equal(viaEzproxy.fields.find(([k]) => k === 'signouturl')?.[1], `${stack.config.publicUrl}/cashnet/return`)
})
