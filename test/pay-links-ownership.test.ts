// A checkout belongs to how its payer was identified as well as to the identifier: a pay-link session's
// payer is an Alma primary id, an EZproxy (or UserObject, Primo) payer a username, and the same text in both
// is two different patrons. Here zed's EZproxy username (his campus id) is "alice", which is also Alice's Alma
// primary id: neither sees, nor opens, the other's payments (history, receipts, the latest receipt, payments in
// progress on the fines page), and each still sees their own. The posting worker is off, so every payment
// stays PAID ("being recorded") and shows on the fines page as a payment in progress.

import t, { type Test } from 'tap'
import { issuePayLink } from '../src/payments/pay-links.ts'
import { seedUsers } from '../src/sandbox/seed.ts'
import { SANDBOX_COOKIE_SECRET } from '../src/sandbox/stack.ts'
import { type Answer, Browser, build, checkoutIdFrom, form, freePort, readForm, Stranger, type TestStack, zedWhoseCampusIdIsAlice } from './helper.ts'

interface Scene { stack: TestStack, payLinkUrl: string }

/** Alice (primary id "alice") and zed (primary id "zed", campus id "alice"), with ALMA_USER_ID_TYPE=UNIV_ID. */
async function scene (t: Test): Promise<Scene> {
  const port = await freePort()
  const payLinkUrl = `http://127.0.0.1:${port}`
  const stack = await build(t, {
    ports: { service: port },
    env: { PAY_LINKS: 'on', PAY_LINK_URL: payLinkUrl, ALMA_USER_ID_TYPE: 'UNIV_ID' },
    app: { startWorker: false }
  })
  stack.alma.addUser(zedWhoseCampusIdIsAlice())
  return { stack, payLinkUrl }
}

/** Alice's pay link opened in a fresh browser on the open internet. */
async function aliceByPayLink (t: Test, { stack, payLinkUrl }: Scene): Promise<Stranger> {
  const link = issuePayLink({ patronId: 'alice', primaryId: 'alice', issuedBy: 'staff', ttlHours: 1, secret: SANDBOX_COOKIE_SECRET })
  await stack.app.ledger.recordPayLink(link, {})
  const patron = new Stranger(payLinkUrl)
  t.equal((await patron.get(`/pay/${link.token}`)).status, 302, 'alice\'s pay link opens a session')
  return patron
}

/** Alice pays fee 100001 from her pay link, on the CashNet sandbox: the checkout id. */
async function alicePays (t: Test, patron: Stranger): Promise<string> {
  const pay = readForm((await patron.get('/')).body, 'pay-form')
  const handoff = await patron.post('/checkout', [...pay.fields, ['fee', '100001']])
  t.equal(handoff.status, 200, 'alice\'s hand-off page')
  const { action, fields } = readForm(handoff.body, 'cashnet-form')
  const page = await patron.request(action, { method: 'POST', body: form(fields) })
  const sessionAction = new URL(readForm(page.body).action, action).toString()
  const done = await patron.request(sessionAction, { method: 'POST', body: form({ action: 'pay' }) })
  const back: Answer = done.status >= 300 && done.status < 400
    ? await patron.get(new URL(String(done.headers.location), sessionAction).toString())
    : await (async () => { const f = readForm(done.body, 'back'); return await patron.request(f.action, { method: 'POST', body: form(f.fields) }) })()
  t.equal(back.status, 200, 'alice is back on her receipt')
  return checkoutIdFrom(fields)
}

/** Zed pays fee 990001 through EZproxy, signed in as "alice": the checkout id. */
async function zedPays (t: Test, stack: TestStack): Promise<string> {
  const zed = new Browser(stack).login('alice')
  const { fields, action } = await zed.checkout(['990001'])
  t.equal((await zed.payOnCashnet(action, fields)).status, 200, 'zed is back on his receipt')
  return checkoutIdFrom(fields)
}

const inProgressNotices = (page: string): number => page.split('class="notice ok in-progress"').length - 1

t.test('a patron through EZproxy whose username is a pay-link patron\'s primary id never sees or opens that patron\'s payments', async t => {
  const s = await scene(t)
  const zedCheckout = await zedPays(t, s.stack)
  const alice = await aliceByPayLink(t, s)
  const aliceCheckout = await alicePays(t, alice)
  t.match(await s.stack.app.ledger.getCheckout(aliceCheckout), { userId: 'alice', primaryId: 'alice', state: 'PAID' })
  t.match(await s.stack.app.ledger.getCheckout(zedCheckout), { userId: 'alice', primaryId: 'zed', state: 'PAID' })

  // zed, in a fresh browser (no checkout cookie), through EZproxy as "alice"
  const zed = new Browser(s.stack).login('alice')
  const history = await zed.get('/history')
  t.equal(history.status, 200)
  t.match(history.body, zedCheckout, 'zed\'s own payment is in his history')
  t.notMatch(history.body, aliceCheckout, 'alice\'s pay-link payment is not')
  t.equal((await zed.get(`/cashnet/return?ref=${aliceCheckout}`)).status, 404, 'alice\'s receipt does not open for zed')
  const latest = await zed.get('/cashnet/return')
  t.equal(latest.status, 200, 'zed\'s latest receipt')
  t.match(latest.body, zedCheckout, 'is his own')
  t.notMatch(latest.body, aliceCheckout, 'not alice\'s, though hers is newer')
  const fines = await zed.get('/')
  t.match(fines.body, 'Zed Zimmermann')
  t.equal(inProgressNotices(fines.body), 1, 'one payment in progress on zed\'s fines page: his own')
  t.match(fines.body, `cashnet/return?ref=${zedCheckout}`)
  t.notMatch(fines.body, aliceCheckout, 'alice\'s payment is not mentioned')

  // alice, by her pay link, still has hers
  t.match((await alice.get('/history')).body, aliceCheckout, 'alice\'s payment is in her pay-link history')
  t.equal((await alice.get(`/cashnet/return?ref=${aliceCheckout}`)).status, 200, 'and its receipt opens for her')
})

t.test('a pay-link patron never sees or opens the payments made through EZproxy under a username equal to their primary id', async t => {
  const s = await scene(t)
  const alice = await aliceByPayLink(t, s)
  const aliceCheckout = await alicePays(t, alice)
  const zedCheckout = await zedPays(t, s.stack)

  const history = await alice.get('/history')
  t.match(history.body, aliceCheckout, 'alice\'s own payment is in her history')
  t.notMatch(history.body, zedCheckout, 'zed\'s is not')
  t.equal((await alice.get(`/cashnet/return?ref=${zedCheckout}`)).status, 404, 'zed\'s receipt does not open for alice')
  // a fresh pay-link session (no checkout cookie): the latest receipt is alice's, though zed's is newer
  const again = await aliceByPayLink(t, s)
  const latest = await again.get('/cashnet/return')
  t.equal(latest.status, 200, 'alice\'s latest receipt')
  t.match(latest.body, aliceCheckout)
  t.notMatch(latest.body, zedCheckout)
  const fines = await again.get('/')
  t.equal(inProgressNotices(fines.body), 1, 'one payment in progress on alice\'s fines page: her own')
  t.notMatch(fines.body, zedCheckout)

  const zed = new Browser(s.stack).login('alice')
  t.match((await zed.get('/history')).body, zedCheckout, 'zed still has his own payment')
  t.equal((await zed.get(`/cashnet/return?ref=${zedCheckout}`)).status, 200, 'and its receipt')
})

t.test('the patron rate limit: a pay-link patron and an EZproxy username of the same text have a bucket each', async t => {
  const port = await freePort()
  const stack = await build(t, { ports: { service: port }, env: { PAY_LINKS: 'on', PAY_LINK_URL: `http://127.0.0.1:${port}`, ALMA_USER_ID_TYPE: 'UNIV_ID', PATRON_RATE_LIMIT: '3' } })
  const [alice] = seedUsers()
  stack.alma.addUser({ ...alice, primaryId: 'zed', firstName: 'Zed', lastName: 'Zimmermann', identifiers: [{ type: 'UNIV_ID', value: 'alice' }], fees: [] })
  const zed = new Browser(stack).login('alice')
  for (let i = 0; i < 3; i++) t.equal((await zed.get('/history')).status, 200)
  t.equal((await zed.get('/history')).status, 429, 'zed has used his requests')
  const aliceLink = await aliceByPayLink(t, { stack, payLinkUrl: `http://127.0.0.1:${port}` })
  t.equal((await aliceLink.get('/history')).status, 200, 'alice, by her pay link, still has hers')
})
