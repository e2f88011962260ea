// SPEC 12: the identity rules that name a route (Primo's sign-in at the root, the cross-site POST of CashNet's
// return) hold under a campus's prefix as they do for the one campus at /: a Primo campus signs its patron in
// from /{campus}/?jwt=…, a userobject campus bounces CashNet's cookieless POST to its GET return.

import t, { type Test } from 'tap'
import { PrimoJwksStandIn } from '../src/sandbox/jwks.ts'
import { type Answer, Browser, buildCampuses, form, send } from './helper.ts'

function sessionCookie (answer: Answer): string | undefined {
  const lines = answer.headers['set-cookie']
  return (Array.isArray(lines) ? lines : lines === undefined ? [] : [lines]).find(l => l.startsWith('acn_session=') && !l.startsWith('acn_session=;'))
}

async function primoStandIn (t: Test, institution: string): Promise<PrimoJwksStandIn> {
  const primo = new PrimoJwksStandIn(institution)
  await primo.start()
  t.teardown(async () => { await primo.close() })
  return primo
}

t.test('a Primo campus signs its patron in from /{campus}/?jwt=…: her fines at that campus; the other campus is unaffected', async t => {
  const primo = await primoStandIn(t, '01SPRING_INST')
  const stack = await buildCampuses(t, {
    campuses: [
      { id: 'springfield', env: { AUTH_MODE: 'primo', ALMA_INSTITUTION_CODE: primo.institution, PRIMO_JWKS_URL: primo.jwksUrl, PRIMO_ISSUER: primo.issuer } },
      { id: 'shelbyville' }
    ]
  })
  const [springfield, shelbyville] = stack.campuses
  const token = await primo.signPrimoToken({ userName: 'alice' })
  const arrival = `${stack.serviceUrl}/springfield/?jwt=${token}`
  const signedIn = await send(arrival)
  t.equal(signedIn.status, 302, `signed in, not a ${signedIn.status}`)
  const cookie = sessionCookie(signedIn)
  t.ok(cookie, 'the campus\'s session cookie')
  const fines = new URL(String(signedIn.headers.location), arrival)
  t.equal(`${fines.pathname}${fines.search}`, '/springfield/', 'on to the campus\'s fines page, without ?jwt')
  const page = await send(fines.toString(), { headers: { cookie: String(cookie).split(';')[0] } })
  t.equal(page.status, 200)
  t.match(page.body, 'Library fines and fees for Alice')
  t.match(page.body, 'The Name of the Rose</', 'Springfield\'s fees')
  t.notMatch(page.body, '(shelbyville)', 'not Shelbyville\'s')
  t.ok(springfield.alma.calls.some(r => r.path.includes('/users/alice')), 'Springfield\'s Alma was asked about alice')
  t.equal(stack.logLines().filter(l => l.event === 'auth.primo_signed_in' && l.campus === 'springfield').length, 1, 'one sign-in at Springfield')

  // a bad token at the Primo campus is still refused
  const expired = await send(`${stack.serviceUrl}/springfield/?jwt=${await primo.signPrimoToken({ userName: 'alice', expiresIn: -3600 })}`)
  t.equal(expired.status, 401)
  t.notOk(sessionCookie(expired))

  // Shelbyville (trusted header) knows nothing of Primo: its root with ?jwt is its own fines page through its EZproxy
  const browser = new Browser({ publicUrl: shelbyville.ezproxyUrl, ezproxy: shelbyville.ezproxy }, { prefix: '/shelbyville' }).login('alice')
  const other = await browser.get(`/?jwt=${token}`)
  t.equal(other.status, 200)
  t.match(other.body, 'The Name of the Rose (shelbyville)', 'Shelbyville\'s fees')
  t.notOk(sessionCookie(other), 'no session from a token at a campus that does not use Primo')
  t.equal(stack.logLines().filter(l => l.event === 'auth.primo_signed_in' && l.campus === 'shelbyville').length, 0)
})

t.test('a userobject campus bounces CashNet\'s cookieless POST to /{campus}/cashnet/return to its GET return (303)', async t => {
  const stack = await buildCampuses(t, { campuses: [{ id: 'springfield', env: { AUTH_MODE: 'userobject' } }, { id: 'shelbyville' }] })
  const at = `${stack.serviceUrl}/springfield/cashnet/return`
  const answer = await send(at, { method: 'POST', body: form({ result: '0', respmessage: 'SUCCESS', tx: '12345' }) })
  t.equal(answer.status, 303, `bounced, not a ${answer.status}`)
  t.equal(new URL(String(answer.headers.location), at).pathname, '/springfield/cashnet/return', 'to the campus\'s GET return')
  // any other cookieless POST is still refused
  const checkout = await send(`${stack.serviceUrl}/springfield/checkout`, { method: 'POST', body: form({ fee: 'x' }) })
  t.equal(checkout.status, 401)
})
