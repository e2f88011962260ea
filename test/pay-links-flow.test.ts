// PAY_LINKS=on over real HTTP: staff look a patron up in /admin and e-mail a pay link (a real SMTP server
// stand-in receives it); the link opens that patron's fines page from any address, without EZproxy, for that
// patron only and never /admin, until it expires or staff revoke it; a tampered link is refused; every issue,
// use, refusal and revocation is in the ledger's audit trail. Off, the routes do not exist.

import t from 'tap'
import { issuePayLink } from '../src/payments/pay-links.ts'
import { SANDBOX_COOKIE_SECRET } from '../src/sandbox/stack.ts'
import { type Answer, Browser, build, checkoutIdFrom, readForm, send, Stranger, type TestStack, UNTRUSTED_PEER } from './helper.ts'
import { runningMailServer } from './support/mail-server.ts'

async function sendLink (stack: TestStack, staff: Browser, identifier: string): Promise<Answer> {
  const page = await staff.get(`/admin/pay-links?id=${encodeURIComponent(identifier)}`)
  const form = readForm(page.body, 'send-pay-link')
  return await staff.post('/admin/pay-links', form.fields)
}

function tokenIn (text: string): string {
  const match = /\/pay\/(pl1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/.exec(text)
  if (match === null) throw new Error('no pay link in the e-mail')
  return match[1]
}

t.test('staff send a pay link; it opens that patron\'s fines only, never /admin nor another patron\'s receipt; revoked, it stops', async t => {
  const smtp = await runningMailServer(t)
  // alice is in ADMIN_USERS too: a pay-link session still never reaches /admin
  const stack = await build(t, { env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, ALERT_EMAIL_FROM: 'fines@example.edu', ADMIN_USERS: 'staff,alice', TIMEZONE: 'America/New_York' } })
  const staff = new Browser(stack).login('staff')

  const lookup = await staff.get('/admin/pay-links?id=900000001')
  t.equal(lookup.status, 200)
  t.match(lookup.body, 'Alice Archer', 'looked up by another Alma identifier: the name')
  t.match(lookup.body, 'alice.archer@example.edu', 'and the preferred e-mail')
  const unknown = await staff.get('/admin/pay-links?id=nobody-here')
  t.match(unknown.body, 'Alma has no patron with the identifier')

  const sent = await sendLink(stack, staff, '900000001')
  t.equal(sent.status, 303)
  t.equal(smtp.mails.length, 1, 'one e-mail')
  t.same(smtp.mails[0].to, ['alice.archer@example.edu'])
  const token = tokenIn(smtp.mails[0].text)
  t.match(smtp.mails[0].text, `${stack.config.publicUrl}/pay/`, 'a link on PUBLIC_URL')
  t.match(smtp.mails[0].text, /works until [A-Z][a-z]+ \d+, \d{4} at .* E[DS]T/, 'until when, in the library\'s zone')
  const [link] = await stack.app.ledger.payLinksFor('alice', 10)
  t.match(link, { patronId: 'alice', issuedBy: 'staff', revokedAt: null })
  t.equal(Date.parse(link.expiresAt) - Date.parse(link.issuedAt), 72 * 3600_000, 'PAY_LINK_TTL_HOURS by default 72')

  // the patron, from anywhere
  const patron = new Stranger(stack.serviceUrl)
  const landing = await patron.get(`/pay/${token}`)
  t.equal(landing.status, 302)
  t.equal(landing.headers.location, '../', 'on to the fines page')
  const fines = await patron.get('/')
  t.equal(fines.status, 200)
  t.match(fines.body, 'Alice Archer', 'alice\'s fines, without EZproxy')
  t.match(fines.body, 'The Name of the Rose')
  const admin = await patron.get('/admin')
  t.equal(admin.status, 403, 'a pay-link session never reaches /admin, even for a username in ADMIN_USERS')
  t.match(admin.body, 'Staff only')
  t.notMatch(admin.body, 'Needs attention')
  t.equal((await patron.get('/admin/pay-links?id=alice')).status, 403)

  // another patron's receipt stays refused
  const carol = new Browser(stack).login('carol')
  const carolPay = await carol.checkout()
  await carol.payOnCashnet(carolPay.action, carolPay.fields)
  const carolId = checkoutIdFrom(carolPay.fields)
  t.not(carolId, '', 'carol paid')
  const stolen = await patron.get(`/cashnet/return?ref=${carolId}`)
  t.equal(stolen.status, 404)
  t.notOk(stolen.body.includes(carolId))
  t.notMatch((await patron.get('/history')).body, carolId)

  // the staff page lists the link, used once; staff revoke it
  const listed = await staff.get('/admin/pay-links?id=alice')
  t.match(listed.body, 'Active')
  const revokeForm = /<form method="post" action="(pay-links\/[^"]+\/revoke)">/.exec(listed.body)
  t.ok(revokeForm, 'a revoke button')
  const csrf = readForm(listed.body.slice(listed.body.indexOf(revokeForm?.[0] ?? '')))
  const forged = await staff.post(`/admin/${revokeForm?.[1] ?? ''}`, { _csrf: 'forged', id: 'alice' })
  t.equal(forged.status, 403, 'revoking needs the CSRF token')
  t.equal((await patron.get('/')).status, 200, 'still works after a forged revocation')
  const revoked = await staff.post(`/admin/${revokeForm?.[1] ?? ''}`, csrf.fields)
  t.equal(revoked.status, 303)
  const after = await patron.get('/')
  // the session is marked ended by the revocation: refused with the page saying the link was withdrawn
  t.equal(after.status, 403, 'revoking ends the session at once')
  t.notMatch(after.body, 'Alice Archer')
  const again = await new Stranger(stack.serviceUrl).get(`/pay/${token}`)
  t.equal(again.status, 403, 'and the link no longer opens one')
  t.match(again.body, 'withdrew')

  const events = await stack.app.ledger.payLinkEvents(link.linkId)
  t.same(events.map(e => e.event), ['paylink.issued', 'paylink.used', 'paylink.revoked', 'paylink.refused'], 'the audit trail')
  t.match(JSON.parse(events[2].detail), { by: 'staff' })
  t.match(JSON.parse(events[3].detail), { reason: 'revoked' })
  t.notOk(stack.logs.some(line => line.includes(token) || line.includes(token.split('.')[2])), 'the token is in no log line')
})

t.test('a tampered link is refused, and a link for one patron never opens another\'s', async t => {
  const smtp = await runningMailServer(t)
  const stack = await build(t, { env: { PAY_LINKS: 'on', SMTP_URL: smtp.url } })
  const staff = new Browser(stack).login('staff')
  await sendLink(stack, staff, 'alice')
  const token = tokenIn(smtp.mails[0].text)
  const [prefix, payload, mac] = token.split('.')
  const body = JSON.parse(Buffer.from(payload, 'base64url').toString())
  const forCarol = Buffer.from(JSON.stringify({ ...body, p: 'carol', a: 'carol' })).toString('base64url')
  const flipped = mac.slice(0, -2) + (mac.at(-2) === 'A' ? 'B' : 'A') + mac.at(-1)
  for (const [name, bad] of [['another patron in the payload', `${prefix}.${forCarol}.${mac}`], ['a changed signature', `${prefix}.${payload}.${flipped}`], ['cut short', token.slice(0, -5)], ['garbage', 'hello']]) {
    const answer = await send(`${stack.serviceUrl}/pay/${bad}`, { from: UNTRUSTED_PEER })
    t.equal(answer.status, 403, `${name}: refused`)
    t.notOk(String(answer.headers['set-cookie'] ?? '').includes('acn_session='), `${name}: no session`)
    t.match(answer.body, 'not valid')
  }
  t.equal(stack.logLines().filter(l => l.event === 'paylink.refused').length, 4, 'each refusal logged for the operator')
})

t.test('an expired link is refused (and in the audit trail); a session lasts no longer than its link', async t => {
  const smtp = await runningMailServer(t)
  let clock = Date.now()
  const stack = await build(t, { env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, SESSION_IDLE_MINUTES: '240', SESSION_TTL_MINUTES: '600' }, app: { now: () => clock } })
  const old = issuePayLink({ patronId: 'alice', primaryId: 'alice', issuedBy: 'staff', ttlHours: 1, secret: SANDBOX_COOKIE_SECRET, now: new Date(Date.now() - 2 * 3600_000) })
  await stack.app.ledger.recordPayLink(old, {})
  const expired = await send(`${stack.serviceUrl}/pay/${old.token}`, { from: UNTRUSTED_PEER })
  t.equal(expired.status, 401)
  t.match(expired.body, 'expired')
  t.same((await stack.app.ledger.payLinkEvents(old.linkId)).map(e => e.event), ['paylink.issued', 'paylink.refused'])

  const fresh = issuePayLink({ patronId: 'alice', primaryId: 'alice', issuedBy: 'staff', ttlHours: 1, secret: SANDBOX_COOKIE_SECRET })
  await stack.app.ledger.recordPayLink(fresh, {})
  const patron = new Stranger(stack.serviceUrl)
  t.equal((await patron.get(`/pay/${fresh.token}`)).status, 302)
  clock += 50 * 60_000
  t.equal((await patron.get('/')).status, 200, 'within the link\'s hour')
  clock += 11 * 60_000
  const ended = await patron.get('/')
  t.equal(ended.status, 401, 'the session ended with the link, before SESSION_TTL_MINUTES')
  t.match(ended.body, 'e-mail again')
})

t.test('PAY_LINKS off (the default): the pay-link routes do not exist', async t => {
  const stack = await build(t)
  const link = issuePayLink({ patronId: 'alice', primaryId: 'alice', issuedBy: 'staff', ttlHours: 1, secret: SANDBOX_COOKIE_SECRET })
  t.equal((await send(`${stack.serviceUrl}/pay/${link.token}`, { from: UNTRUSTED_PEER })).status, 404)
  const staff = new Browser(stack).login('staff')
  t.equal((await staff.get('/admin/pay-links?id=alice')).status, 404)
  t.notOk([...stack.app.routeAccess.keys()].some(r => r.includes('/pay/') || r.includes('pay-links')))
})

t.test('PAY_LINK_URL: the e-mailed link reaches the service directly, not through EZproxy', async t => {
  const smtp = await runningMailServer(t)
  const stack = await build(t, { env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, PAY_LINK_URL: 'https://fines-direct.example.edu/' } })
  const staff = new Browser(stack).login('staff')
  const sent = await sendLink(stack, staff, '900000001')
  t.equal(sent.status, 303)
  t.match(smtp.mails[0].text, 'https://fines-direct.example.edu/pay/', 'on PAY_LINK_URL (its trailing slash dropped)')
  t.notMatch(smtp.mails[0].text, `${stack.config.publicUrl}/pay/`, 'not on the EZproxy-proxied PUBLIC_URL')
})
