// A pay link staff revoke while its patron holds a session from it, over real HTTP (service, Alma sandbox, a real
// SMTP stand-in): the session stops at once, is kept in the sessions store marked ended (not deleted), and the
// patron gets a calm 403 that says the link was withdrawn and whom to ask; operators get access.pay_link_revoked.

import t, { type Test } from 'tap'
import { sessionKey } from '../src/web/sessions.ts'
import { Browser, build, readForm, Stranger, type TestStack } from './helper.ts'
import { runningMailServer } from './support/mail-server.ts'

/** Staff send alice a pay link by mail: the staff browser and the link's token. */
async function sendAlicePayLink (t: Test, stack: TestStack, mails: Array<{ text: string }>): Promise<{ staff: Browser, token: string }> {
  const staff = new Browser(stack).login('staff')
  const page = await staff.get('/admin/pay-links?id=alice')
  t.equal((await staff.post('/admin/pay-links', readForm(page.body, 'send-pay-link').fields)).status, 303)
  return { staff, token: /\/pay\/(pl1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/.exec(mails[0].text)?.[1] ?? '' }
}

t.test('a revoked pay link\'s session ends at once: a calm 403 (pay_link_revoked), the session kept marked ended, an event for operators', async t => {
  const smtp = await runningMailServer(t)
  const stack = await build(t, { env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, ALERT_EMAIL_FROM: 'fines@example.edu' } })
  const { staff, token } = await sendAlicePayLink(t, stack, smtp.mails)

  const patron = new Stranger(stack.serviceUrl)
  t.equal((await patron.get(`/pay/${token}`)).status, 302)
  t.equal((await patron.get('/')).status, 200, 'the link\'s session opens alice\'s fines')
  const cookie = decodeURIComponent(patron.cookies.get('acn_session') ?? '')
  const sessionId = cookie.slice(0, cookie.lastIndexOf('.'))

  const listed = await staff.get('/admin/pay-links?id=alice')
  const revokeForm = /<form method="post" action="(pay-links\/[^"]+\/revoke)">/.exec(listed.body)
  const csrf = readForm(listed.body.slice(listed.body.indexOf(revokeForm?.[0] ?? '')))
  t.equal((await staff.post(`/admin/${revokeForm?.[1] ?? ''}`, csrf.fields)).status, 303)

  const stored = await stack.app.ledger.touchSession(sessionKey(sessionId), new Date(), { idleMs: 3600_000, touchEveryMs: 60_000 })
  t.match(stored, { found: true, state: 'revoked' }, 'the session is kept in the store, marked ended by the revocation')

  for (const path of ['/', '/history', 'POST /checkout']) {
    const after = path.startsWith('POST ') ? await patron.post(path.slice(5), [['fee', '100001']]) : await patron.get(path)
    t.equal(after.status, 403, `${path}: refused with 403`)
    t.match(after.body, 'withdrew', `${path}: the page says the library withdrew the link`)
    t.match(after.body, 'ask the library', `${path}: and whom to ask`)
    t.notMatch(after.body, 'Alice Archer')
    t.notMatch(after.body, /at [\w.]+ \(|node_modules/, 'never a stack trace')
  }
  const logged = stack.logs.map(line => JSON.parse(line) as Record<string, unknown>).filter(l => l.event === 'access.pay_link_revoked')
  t.ok(logged.length >= 1, 'operators get access.pay_link_revoked')
  t.match(logged[0], { reason: /pay_link_revoked|revoked/ })
  t.match(await stack.app.ledger.touchSession(sessionKey(sessionId), new Date(), { idleMs: 3600_000, touchEveryMs: 60_000 }), { found: true, state: 'revoked' }, 'still kept after the refusals')
})

t.test('staff revoke a pay link while its patron is starting a checkout: the patron is not sent to pay once the revoke is answered', async t => {
  const smtp = await runningMailServer(t)
  const stack = await build(t, { env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, ALERT_EMAIL_FROM: 'fines@example.edu', PAYMENT_PROVIDER: 'paypal' } })
  const pp = stack.paypal
  if (pp === null) throw new Error('no PayPal stand-in')
  const { staff, token } = await sendAlicePayLink(t, stack, smtp.mails)
  const patron = new Stranger(stack.serviceUrl)
  t.equal((await patron.get(`/pay/${token}`)).status, 302)
  const pay = readForm((await patron.get('/')).body, 'pay-form')

  const listed = await staff.get('/admin/pay-links?id=alice')
  const revokeForm = /<form method="post" action="(pay-links\/[^"]+\/revoke)">/.exec(listed.body)
  const csrf = readForm(listed.body.slice(listed.body.indexOf(revokeForm?.[0] ?? '')))

  pp.faults.latencyMs = 1500 // PayPal is slow to make the order: the revoke lands while the checkout is being started
  const starting = patron.post('/checkout', [...pay.fields, ['fee', '100001']])
  await new Promise(resolve => setTimeout(resolve, 300))
  const revoked = await staff.post(`/admin/${revokeForm?.[1] ?? ''}`, csrf.fields)
  t.equal(revoked.status, 303, 'the revoke is answered while the checkout is still being started')
  const answer = await starting
  pp.faults.latencyMs = 0
  t.equal(answer.status, 403, 'the checkout answers the withdrawn-link refusal, not a redirect to PayPal')
  t.notOk(String(answer.headers.location ?? '').startsWith(pp.url), 'the patron is not sent to PayPal')
  t.match(answer.body, 'withdrew')
  const started = await stack.app.ledger.latestCheckoutForUser('alice', 'primary-id')
  t.equal(started?.state, 'CANCELLED', 'the checkout started meanwhile is closed, nothing taken')
  t.ok((await stack.app.ledger.history(started?.id ?? ''))?.events.some(e => e.event === 'checkout.pay_link_revoked'), 'with its audit event')
  t.same(stack.alma.allExternalPayments(), [], 'nothing paid in Alma')
  t.equal(pp.captures.length, 0, 'nothing taken at PayPal')
})
