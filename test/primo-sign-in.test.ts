// AUTH_MODE=primo over real HTTP: the patron arrives from Primo VE's "Pay fine" link at the service root with
// ?jwt=…, signed by the Primo stand-in's keys; a good token becomes our own session and the fines page, without
// the token in the address; every forged, expired or foreign token gets a calm page, no session, and one
// operator line with the reason. The token is never in any log line.

import t from 'tap'
import { SignJWT } from 'jose'
import { SANDBOX_COOKIE_SECRET } from '../src/sandbox/stack.ts'
import type { PrimoJwksStandIn } from '../src/sandbox/jwks.ts'
import { type Answer, Browser, build, send, type TestStack, UNTRUSTED_PEER } from './helper.ts'

const PRIMO = { AUTH_MODE: 'primo' }

function sessionCookie (answer: Answer): string | undefined {
  const lines = answer.headers['set-cookie']
  return (Array.isArray(lines) ? lines : lines === undefined ? [] : [lines]).find(l => l.startsWith('acn_session=') && !l.startsWith('acn_session=;'))
}

function primoOf (stack: TestStack): PrimoJwksStandIn {
  if (stack.primo === null) throw new Error('no Primo stand-in: AUTH_MODE=primo expected')
  return stack.primo
}

const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url')

t.test('a valid Primo token signs the patron in: a session, the fines page without the token, nothing of it in the logs', async t => {
  const stack = await build(t, { env: PRIMO })
  const primo = primoOf(stack)
  const token = await primo.signPrimoToken({ userName: 'alice' })
  const browser = new Browser(stack)

  const arrival = await browser.get(primo.payFineUrl(token))
  t.equal(arrival.status, 302, 'redirected')
  t.equal(arrival.headers.location, './', 'to the fines page at the root, without ?jwt')
  t.equal(arrival.headers['cache-control'], 'no-store')
  const cookie = sessionCookie(arrival)
  t.ok(cookie, 'our own session cookie')
  t.match(cookie, /HttpOnly/)
  t.match(cookie, /SameSite=Lax/)

  const fines = await browser.follow(arrival, primo.payFineUrl(token))
  t.equal(fines.status, 200)
  t.match(fines.body, 'Alice Archer', 'alice\'s fines page')
  t.equal(stack.alma.calls.filter(r => r.path.includes('/users/alice')).length > 0, true, 'Alma asked about the token\'s userName')

  // the session holds: the next request needs no token
  const again = await browser.get('/')
  t.equal(again.status, 200)
  t.match(again.body, 'Alice Archer')

  const signedIn = stack.logLines().filter(l => l.event === 'auth.primo_signed_in')
  t.equal(signedIn.length, 1, 'one sign-in line')
  t.equal(signedIn[0].user, 'alice')
  t.notOk(stack.logs.some(line => line.includes(token) || line.includes(token.split('.')[2])), 'no log line carries the token or its signature')
  t.ok(primo.fetches >= 1, 'the keys came from PRIMO_JWKS_URL')

  // /logout ends the session: the same cookie is worthless afterwards
  const out = await browser.get('/logout')
  t.ok(out.status === 302 || out.status === 200)
  const after = await send(`${stack.serviceUrl}/`, { headers: { cookie: String(cookie).split(';')[0] } })
  t.equal(after.status, 401, 'the old cookie no longer signs in')
})

t.test('ES256 tokens are accepted too; the key set is fetched once for many sign-ins', async t => {
  const stack = await build(t, { env: PRIMO })
  const primo = primoOf(stack)
  for (const user of ['alice', 'bob', 'carol']) {
    const answer = await send(primo.payFineUrl(await primo.signPrimoToken({ userName: user, alg: 'ES256' })), { from: UNTRUSTED_PEER })
    t.equal(answer.status, 302, `${user} signed in`)
    t.ok(sessionCookie(answer))
  }
  t.equal(primo.fetches, 1, 'the keys were cached')
})

t.test('every bad token is refused with a calm page, no session, no Alma call and one operator line with its reason', async t => {
  const stack = await build(t, { env: PRIMO })
  const primo = primoOf(stack)
  const now = Math.floor(Date.now() / 1000)
  const cases: Array<{ name: string, token: () => Promise<string>, status: number, reason: string }> = [
    { name: 'expired', token: async () => await primo.signPrimoToken({ userName: 'alice', expiresIn: -3600 }), status: 401, reason: 'expired' },
    { name: 'wrong issuer', token: async () => await primo.signPrimoToken({ userName: 'alice', issuer: 'https://api-eu.hosted.exlibrisgroup.com/auth/01OTHER_INST' }), status: 403, reason: 'issuer' },
    { name: 'unknown key', token: async () => await primo.signPrimoToken({ userName: 'alice', kid: 'primaPrivateKey-not-ours' }), status: 403, reason: 'unknown_key' },
    {
      name: 'alg none',
      token: async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ userName: 'alice', iss: primo.issuer, institution: primo.institution, exp: now + 600, signedIn: true })}.`,
      status: 403,
      reason: 'algorithm'
    },
    {
      name: 'HS256 signed with our own COOKIE_SECRET',
      token: async () => await new SignJWT({ userName: 'alice', institution: primo.institution, signedIn: true })
        .setProtectedHeader({ alg: 'HS256', kid: primo.kids[0] }).setIssuer(primo.issuer).setExpirationTime(now + 600)
        .sign(new TextEncoder().encode(SANDBOX_COOKIE_SECRET)),
      status: 403,
      reason: 'algorithm'
    },
    { name: 'another institution', token: async () => await primo.signPrimoToken({ userName: 'alice', claims: { institution: '01OTHER_INST' } }), status: 403, reason: 'institution' },
    { name: 'a guest', token: async () => await primo.signPrimoToken({ userName: 'alice', claims: { signedIn: false } }), status: 401, reason: 'not_signed_in' },
    { name: 'not a token', token: async () => 'not-a-jwt', status: 403, reason: 'malformed' },
    { name: 'empty', token: async () => '', status: 403, reason: 'malformed' }
  ]
  for (const c of cases) {
    const token = await c.token()
    const almaBefore = stack.alma.calls.length
    const logsBefore = stack.logs.length
    const answer = await send(`${stack.serviceUrl}/?jwt=${encodeURIComponent(token)}`, { from: UNTRUSTED_PEER })
    t.equal(answer.status, c.status, `${c.name}: ${c.status}`)
    t.notOk(sessionCookie(answer), `${c.name}: no session`)
    t.match(answer.body, 'This link could not be used', `${c.name}: the calm page`)
    t.notMatch(answer.body, 'Alice Archer', `${c.name}: nothing of the patron`)
    t.notMatch(answer.body, /at \w+ \(|Error:/, `${c.name}: no stack trace`)
    t.equal(stack.alma.calls.length, almaBefore, `${c.name}: Alma was not asked`)
    const lines = stack.logs.slice(logsBefore).map(l => JSON.parse(l)).filter(l => l.event === 'auth.primo_refused')
    t.equal(lines.length, 1, `${c.name}: one operator line`)
    t.equal(lines[0]?.reason, c.reason, `${c.name}: reason ${c.reason}`)
    if (token.length > 20) t.notOk(stack.logs.some(line => line.includes(token)), `${c.name}: the token is in no log line`)
  }
})

t.test('keys that cannot be fetched: a calm 503, try again later, and no session', async t => {
  const stack = await build(t, { env: PRIMO })
  const primo = primoOf(stack)
  primo.failing = true
  const answer = await send(primo.payFineUrl(await primo.signPrimoToken({ userName: 'alice' })), { from: UNTRUSTED_PEER })
  t.equal(answer.status, 503)
  t.match(answer.body, 'try again')
  t.notOk(sessionCookie(answer))
  t.equal(stack.logLines().filter(l => l.event === 'auth.primo_refused' && l.reason === 'jwks_unavailable').length, 1)
})

t.test('without a session the patron pages ask for Primo\'s link; the EZproxy header counts for nothing', async t => {
  const stack = await build(t, { env: PRIMO })
  const bare = await send(`${stack.serviceUrl}/`, { from: UNTRUSTED_PEER })
  t.equal(bare.status, 401)
  t.match(bare.body, 'Pay fine')
  const header = await send(`${stack.serviceUrl}/`, { headers: { 'x-ezproxy-user': 'alice' } })
  t.equal(header.status, 401, 'a user header from the EZproxy address is not believed in primo mode')
  t.notMatch(header.body, 'Alice Archer')
  const tampered = await send(`${stack.serviceUrl}/`, { headers: { cookie: 'acn_session=abc.def' }, from: UNTRUSTED_PEER })
  t.equal(tampered.status, 401)
})

t.test('primo mode needs ALMA_INSTITUTION_CODE; the key set and issuer default to the institution\'s North American URLs', async t => {
  const { loadConfig } = await import('../src/config.ts')
  const base = { PUBLIC_URL: 'https://fines.example.edu', ALMA_API_KEY: 'k', CASHNET_CHECKOUT_URL: 'https://train.cashnet.com/X', CASHNET_ITEM_CODE: 'LIB', CASHNET_POSTBACK_ALLOW: '127.0.0.4', EZPROXY_ALLOW: '127.0.0.1', COOKIE_SECRET: SANDBOX_COOKIE_SECRET, AUTH_MODE: 'primo' }
  t.throws(() => loadConfig(base), /ALMA_INSTITUTION_CODE is required when AUTH_MODE=primo/)
  const config = loadConfig({ ...base, ALMA_INSTITUTION_CODE: '01ABC_INST' })
  t.equal(config.primoJwksUrl, 'https://api-na.hosted.exlibrisgroup.com/auth/01ABC_INST/jwks.json')
  t.equal(config.primoIssuer, 'https://api-na.hosted.exlibrisgroup.com/auth/01ABC_INST')
  const eu = loadConfig({ ...base, ALMA_INSTITUTION_CODE: '01ABC_INST', PRIMO_JWKS_URL: 'https://api-eu.hosted.exlibrisgroup.com/auth/01ABC_INST/jwks.json', PRIMO_ISSUER: 'Prima' })
  t.equal(eu.primoJwksUrl, 'https://api-eu.hosted.exlibrisgroup.com/auth/01ABC_INST/jwks.json')
  t.equal(eu.primoIssuer, 'Prima')
})
