// AUTH_MODE=userobject against the EZproxy stand-in: the browser is sent to EZproxy's login with a getToken
// return URL, the service exchanges the token server to server with the LocalWSKey, and keeps its own signed,
// expiring session. The wskey only ever goes to EZPROXY_URL.

import t, { type Test } from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { signerFactory } from '@fastify/cookie'
import { SANDBOX_COOKIE_SECRET, SANDBOX_WSKEY } from '../src/sandbox/stack.ts'
import { afterSignIn } from '../src/web/routes/auth.ts'
import { userObjectRequestUrl } from '../src/web/userobject.ts'
import { type Answer, Browser, build, form, send, type TestStack, UNTRUSTED_PEER } from './helper.ts'

const USEROBJECT = { AUTH_MODE: 'userobject' }

function sessionCookie (answer: Answer): string | undefined {
  const lines = answer.headers['set-cookie']
  return (Array.isArray(lines) ? lines : lines === undefined ? [] : [lines]).find(l => l.startsWith('acn_session='))
}

/** A cookie value as @fastify/cookie would set it, signed with the sandbox's COOKIE_SECRET. */
function signed (value: string, secret = SANDBOX_COOKIE_SECRET): string {
  return encodeURIComponent(signerFactory(secret).sign(value))
}

/**
 * Signs in through the stand-in's login page as a patron would, starting from a path on the service: the
 * stand-in's own gate or the service sends the browser to the login page, then getToken, /auth/ezproxy, the page.
 */
async function signIn (stack: TestStack, browser: Browser, username: string, path = '/'): Promise<{ first: Answer, landed: Answer, cookie: string | undefined, visited: string[] }> {
  const first = await browser.get(path)
  const loginPage = await browser.follow(first, stack.publicUrl)
  const action = new URL(/action="([^"]*)"/.exec(loginPage.body)?.[1]?.replace(/&amp;/g, '&') ?? '', stack.publicUrl).toString()
  let answer = await browser.request(action, { method: 'POST', body: form({ user: username }) })
  let at = action
  let cookie: string | undefined
  const visited: string[] = []
  for (let i = 0; i < 8 && answer.status >= 300 && answer.status < 400; i++) {
    cookie ??= sessionCookie(answer)
    at = new URL(String(answer.headers.location), at).toString()
    visited.push(at)
    answer = await browser.request(at)
  }
  return { first, landed: answer, cookie, visited }
}

/** Starts a sign-in in a browser logged in at EZproxy: the state nonce the service put in the return URL. */
async function startSignIn (stack: TestStack, browser: Browser): Promise<string> {
  const answer = await browser.get('/')
  if (answer.status !== 302) throw new Error(`expected a redirect to EZproxy, got ${answer.status}`)
  const returnUrl = decodeURIComponent(String(answer.headers.location).split('returnURL=')[1] ?? '')
  return new URL(returnUrl).searchParams.get('state') ?? ''
}

/** A stranger's server: records every request made to it. */
async function captureServer (t: Test): Promise<{ url: string, seen: IncomingMessage[] }> {
  const seen: IncomingMessage[] = []
  const server = createServer((request, response) => {
    seen.push(request)
    response.writeHead(200, { 'content-type': 'text/xml' })
    response.end('<?xml version="1.0"?><userObjectResponse><serviceStatus>OK</serviceStatus><userDocument><uid>mallory</uid></userDocument></userObjectResponse>')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

t.test('happy path: unknown browser → EZproxy login → getToken → /auth/ezproxy → session cookie → fines page', async t => {
  const stack = await build(t, { env: USEROBJECT })

  // The service itself sends a browser without a session to EZproxy's login, with a getToken return URL that
  // carries a state nonce, also kept in a short-lived cookie.
  const direct = await send(`${stack.serviceUrl}/`, { from: UNTRUSTED_PEER })
  t.equal(direct.status, 302, 'patron routes need not come from EZproxy: an unknown browser is redirected, not refused')
  const prefix = `${stack.publicUrl}/login?url=${stack.publicUrl}/userObject?service=getToken&returnURL=`
  const location = String(direct.headers.location)
  t.ok(location.startsWith(prefix), 'to EZproxy login, then getToken')
  const returnUrl = new URL(decodeURIComponent(location.slice(prefix.length)))
  t.equal(`${returnUrl.origin}${returnUrl.pathname}`, `${stack.publicUrl}/auth/ezproxy`, 'back to PUBLIC_URL/auth/ezproxy')
  t.equal(returnUrl.searchParams.get('next'), '/')
  t.match(returnUrl.searchParams.get('state'), /^[A-Za-z0-9_-]{22}$/)
  t.match(String(direct.headers['set-cookie']), /^acn_signin=[^;]+; Max-Age=900; Path=\/; HttpOnly; SameSite=Lax$/)
  t.notMatch(location, SANDBOX_WSKEY, 'the wskey never goes to the browser')

  // The patron's browser, through EZproxy: log in, the service sends it to getToken, back to /auth/ezproxy.
  const browser = new Browser(stack)
  const gate = await browser.get('/')
  t.equal(gate.status, 302, 'EZproxy sends a browser that has not logged in to its login page')
  const loginPage = await browser.follow(gate, stack.publicUrl)
  t.equal(loginPage.status, 200, 'EZproxy asks the patron to log in')
  const action = new URL(/action="([^"]*)"/.exec(loginPage.body)?.[1]?.replace(/&amp;/g, '&') ?? '', stack.publicUrl).toString()
  const posted = await browser.request(action, { method: 'POST', body: form({ user: 'alice' }) })
  t.equal(posted.status, 303)
  const service = await browser.request(new URL(String(posted.headers.location), action).toString())
  t.equal(service.status, 302, 'the service has no session for this browser yet')
  t.ok(String(service.headers.location).startsWith(prefix), 'so it sends the browser to EZproxy for a token')
  const ezproxyLogin = await browser.request(String(service.headers.location))
  t.equal(ezproxyLogin.status, 302, 'already logged in at EZproxy: straight on to getToken')
  const getToken = await browser.request(new URL(String(ezproxyLogin.headers.location), stack.publicUrl).toString())
  t.equal(getToken.status, 302, 'getToken redirects to the return URL with a token')
  const back = new URL(String(getToken.headers.location))
  t.equal(back.pathname, '/auth/ezproxy')
  t.equal(back.searchParams.get('next'), '/')
  t.match(back.searchParams.get('token'), /^http:\/\/127\.0\.0\.1:\d+\/userObject\?token=[0-9a-f]+$/, 'the token is a URL at EZproxy')

  const auth = await browser.request(back.toString())
  t.equal(auth.status, 302)
  t.equal(auth.headers.location, '../', 'on to the page first asked for, relative to /auth/ezproxy')
  const cookie = sessionCookie(auth)
  t.ok(cookie, 'a session cookie is set')
  t.match(cookie, /; HttpOnly/i)
  t.match(cookie, /; SameSite=Lax/i)
  t.match(cookie, /; Path=\//)
  t.notMatch(cookie, /Max-Age|Expires/i, 'no Max-Age or Expires: the cookie dies with the browser')
  t.notMatch(cookie, /Domain=/i, 'no Domain attribute: EZproxy rewrites hosts')
  t.notMatch(cookie, /; Secure/i, 'not Secure on the plain-HTTP sandbox')
  t.equal(stack.ezproxy.tokens.size, 0, 'the token was redeemed at EZproxy')

  const fines = await browser.follow(auth, back.toString())
  t.equal(fines.status, 200)
  t.match(fines.body, 'Library fines and fees for Alice')
  const again = await browser.get('/')
  t.equal(again.status, 200, 'the session carries the next request without EZproxy')

  const started = stack.logLines().filter(l => l.event === 'auth.session_started')
  t.equal(started.length, 1, 'one auth.session_started line')
  t.equal(started[0].user, 'alice')
  t.notMatch(stack.logs.join('\n'), SANDBOX_WSKEY, 'the wskey is in no log line')
  t.notMatch(stack.logs.join('\n'), /userObject\?token=[0-9a-f]{8}/, 'the token is in no log line')
})

t.test('after sign-in the browser goes to the page it asked for, never off-site', async t => {
  const stack = await build(t, { env: USEROBJECT })
  const browser = new Browser(stack)
  // Primo may add its own parameters to the "pay fines" link: they survive the trip through EZproxy.
  const { landed, visited } = await signIn(stack, browser, 'alice', '/?from=primo&lang=en')
  t.equal(landed.status, 200)
  t.match(landed.body, 'Library fines and fees for Alice')
  const auth = visited.find(u => new URL(u).pathname === '/auth/ezproxy')
  t.equal(new URL(String(auth)).searchParams.get('next'), '/?from=primo&lang=en', 'next carries the path first asked for')
  t.equal(visited.at(-1), `${stack.publicUrl}/?from=primo&lang=en`, 'and the browser lands there')

  t.equal(afterSignIn('/'), '../')
  t.equal(afterSignIn('/cashnet/return?x=1'), '../cashnet/return?x=1')
  t.equal(afterSignIn('/history?back=../x'), '../history?back=../x', 'a query is not a path')
  for (const bad of ['//evil.example/', '/\\evil.example', 'https://evil.example/', 'evil', '/a//b', '/\t/evil.example', '/auth/ezproxy?token=x',
    '/../x', '/a/../../x', '/./x', '/%2e%2e/x', '/%2E./x', '/%2f/evil.example', '/%61uth/ezproxy', '/%', '', undefined, ['/']]) {
    t.equal(afterSignIn(bad), '../', `${JSON.stringify(bad)} goes to the service root`)
  }
})

t.test('a bad, used or missing token gets a calm 401 and one operator line; no session', async t => {
  const stack = await build(t, { env: USEROBJECT })
  const browser = new Browser(stack).login('alice')
  const state = await startSignIn(stack, browser)
  const bogus = await browser.get(`/auth/ezproxy?next=%2F&state=${state}&token=${encodeURIComponent(`${stack.publicUrl}/userObject?token=00000000000000000000000000000000`)}`)
  t.equal(bogus.status, 401)
  t.match(bogus.body, 'We could not confirm your sign-in')
  t.notMatch(bogus.body, /serviceStatus|INVALID|Error|\.ts:\d+/, 'no internals on the page')
  t.equal(sessionCookie(bogus), undefined, 'no session cookie')
  t.match(bogus.headers['cache-control'], /no-store/)
  const rejected = stack.logLines().filter(l => l.event === 'auth.token_rejected')
  t.equal(rejected.length, 1)
  t.match(rejected[0].msg, 'EZPROXY_WSKEY', 'the operator line names the likely causes')

  const bare = await browser.get(`/auth/ezproxy?state=${state}&token=not-a-real-token`)
  t.equal(bare.status, 401, 'a token that is not a URL is sent to EZPROXY_URL/userObject and refused there')
  const none = await browser.get(`/auth/ezproxy?next=%2F&state=${state}`)
  t.equal(none.status, 401, 'no token')

  // A real token, but brought to the service by another browser (a link someone was sent): refused unseen.
  const victim = new Browser(stack).login('carol')
  const attacker = new Browser(stack).login('mallory')
  await startSignIn(stack, attacker)
  const attackerStart = await attacker.get('/')
  const toEzproxy = await attacker.request(String(attackerStart.headers.location))
  const attackerToken = await attacker.request(new URL(String(toEzproxy.headers.location), stack.publicUrl).toString())
  const link = String(attackerToken.headers.location)
  t.match(link, '/auth/ezproxy?')
  t.equal(stack.ezproxy.tokens.size, 1, 'the attacker holds an unredeemed token')
  const forced = await victim.request(link)
  t.equal(forced.status, 401, 'the victim is not signed in as the attacker')
  t.equal(sessionCookie(forced), undefined)
  t.equal(stack.ezproxy.tokens.size, 1, 'the token was not even sent to EZproxy')
  await startSignIn(stack, victim)
  const stillForced = await victim.request(link)
  t.equal(stillForced.status, 401, 'nor once the victim has a sign-in of their own under way')
  t.match(stack.logLines().filter(l => l.event === 'auth.token_rejected').at(-1)?.reason, 'not started in this browser')
  const own = await attacker.request(link)
  t.equal(own.status, 302, 'the browser that started the sign-in is signed in')
  t.ok(sessionCookie(own))
  const replay = await attacker.request(link)
  t.equal(replay.status, 401, 'a token is redeemed once only')
})

t.test('a token URL at another origin is refused and the wskey is not sent there', async t => {
  const stack = await build(t, { env: USEROBJECT })
  const stranger = await captureServer(t)
  const ezproxyPort = new URL(stack.publicUrl).port
  const tricks = [
    `${stranger.url}/userObject?token=abc`,
    `http://127.0.0.1:${ezproxyPort}@${stranger.url.slice('http://'.length)}/userObject?token=abc`,
    `https://127.0.0.1:${ezproxyPort}/userObject?token=abc`,
    `${stack.publicUrl}/login?url=${stranger.url}/userObject?token=abc`,
    `${stack.publicUrl}/userObject?token=abc&wskey=guess`,
    'file:///etc/passwd'
  ]
  for (const token of tricks) {
    const browser = new Browser(stack).login('alice')
    const state = await startSignIn(stack, browser)
    const answer = await browser.get(`/auth/ezproxy?next=%2F&state=${state}&token=${encodeURIComponent(token)}`)
    t.equal(answer.status, 401, `refused: ${token}`)
    t.equal(sessionCookie(answer), undefined)
  }
  t.equal(stranger.seen.length, 0, 'the stranger received no request at all, so never the wskey')
  const refused = stack.logLines().filter(l => l.event === 'auth.token_refused')
  t.equal(refused.length, tricks.length, 'one auth.token_refused line each')
  t.match(refused[0].msg, 'EZPROXY_URL')
  t.notMatch(stack.logs.join('\n'), SANDBOX_WSKEY)

  // What would be requested, without sending anything
  const options = { ezproxyUrl: 'https://ezproxy.example.edu', wskey: 'k&y' }
  t.same(userObjectRequestUrl('https://ezproxy.example.edu/userObject?token=abc', options), { url: 'https://ezproxy.example.edu/userObject?token=abc&service=getUserObject&wskey=k%26y' })
  t.same(Object.hasOwn(userObjectRequestUrl('abc def', options), 'refused'), true)
  t.same(userObjectRequestUrl('a+b/c', options), { url: 'https://ezproxy.example.edu/userObject?token=a%2Bb%2Fc&service=getUserObject&wskey=k%26y' })
  t.ok('refused' in userObjectRequestUrl('https://ezproxy.example.edu.evil.example/userObject?token=abc', options))
  t.ok('refused' in userObjectRequestUrl('https://ezproxy.example.edu:8443/userObject?token=abc', options))
})

t.test('EZproxy unreachable: a calm 503 page and one auth.ezproxy_unreachable line', async t => {
  const stack = await build(t, { env: USEROBJECT })
  const browser = new Browser(stack)
  await signIn(stack, browser, 'alice')
  stack.ezproxy.userObjectDown = true
  const other = new Browser(stack).login('bob')
  const first = await other.get('/')
  t.equal(first.status, 302)
  const token = await other.follow(first, stack.publicUrl, 3) // login (already logged in) → getToken → /auth/ezproxy
  t.equal(token.status, 503)
  t.match(token.body, 'Sign-in is not available right now')
  t.match(token.body, 'Nothing was charged')
  t.notMatch(token.body, /ECONNRESET|socket|Error|\.ts:\d+/, 'no internals on the page')
  const lines = stack.logLines().filter(l => l.event === 'auth.ezproxy_unreachable')
  t.equal(lines.length, 1)
  t.equal(lines[0].level, 50, 'logged as an error')
  t.match(lines[0].msg, stack.publicUrl, 'names the EZproxy it could not reach')
  t.equal(sessionCookie(token), undefined)
  const stillIn = await browser.get('/')
  t.equal(stillIn.status, 200, 'patrons with a session carry on while EZproxy is down')
})

t.test('session expiry: SESSION_TTL_MINUTES sets the absolute lifetime, an expired session is sent to sign in again', async t => {
  let now = Date.now()
  const stack = await build(t, { env: { ...USEROBJECT, SESSION_TTL_MINUTES: '30', SESSION_IDLE_MINUTES: '20' }, app: { now: () => now } })
  const browser = new Browser(stack)
  const { landed, cookie } = await signIn(stack, browser, 'alice')
  t.equal(landed.status, 200)
  const started = stack.logLines().find(l => l.event === 'auth.session_started')
  t.equal(Date.parse(started?.expiresAt), now + 30 * 60_000, 'the session lasts SESSION_TTL_MINUTES at most')
  const session = String(cookie).split(';')[0]

  // kept alive by use every 15 minutes (under the idle limit) it still ends at 30 minutes
  now += 15 * 60_000
  t.equal((await send(`${stack.serviceUrl}/`, { headers: { cookie: session } })).status, 200, 'at 15 minutes: served')
  now += 14 * 60_000
  t.equal((await send(`${stack.serviceUrl}/`, { headers: { cookie: session } })).status, 200, 'at 29 minutes: served')
  now += 2 * 60_000
  const expired = await send(`${stack.serviceUrl}/`, { headers: { cookie: session } })
  t.equal(expired.status, 302, 'at 31 minutes: sent to EZproxy to sign in again')
  t.match(String(expired.headers.location), `${stack.publicUrl}/login?url=`)
  t.notMatch(expired.body, 'Alice')
  const post = await send(`${stack.serviceUrl}/checkout`, { method: 'POST', body: 'fee=1', headers: { cookie: session } })
  t.equal(post.status, 401, 'a form post with an expired session is refused, not redirected')
  t.match(post.body, 'Your session has ended')
})

t.test('a tampered, foreign-signed or never-issued session cookie is not accepted', async t => {
  const stack = await build(t, { env: USEROBJECT })
  const real = (await signIn(stack, new Browser(stack), 'bob')).cookie
  t.ok(real)
  const value = decodeURIComponent(String(real).split(';')[0].slice('acn_session='.length))
  const [id, signature] = [value.slice(0, value.lastIndexOf('.')), value.slice(value.lastIndexOf('.') + 1)]
  t.match(id, /^[A-Za-z0-9_-]{43}$/, 'the cookie carries only a random session id')
  t.notMatch(Buffer.from(id, 'base64url').toString('latin1'), 'bob', 'not the username')
  const altered = (id[0] === 'A' ? 'B' : 'A') + id.slice(1)

  stack.alma.calls.length = 0
  for (const [what, cookie] of [
    ['id changed, signature kept', encodeURIComponent(`${altered}.${signature}`)],
    ['unsigned id', id],
    ['signed with another secret', signed(id, 'some-other-secret-0123456789abcdef0123')],
    ['garbage', 'x.y']
  ]) {
    const answer = await send(`${stack.serviceUrl}/`, { headers: { cookie: `acn_session=${cookie}` } })
    t.equal(answer.status, 302, `${what}: sent to sign in`)
    t.notMatch(answer.body, 'Bob')
  }
  t.ok(stack.logLines().filter(l => l.event === 'access.bad_session').length >= 4, 'each logged as access.bad_session')
  const neverIssued = await send(`${stack.serviceUrl}/`, { headers: { cookie: `acn_session=${signed(altered)}` } })
  t.equal(neverIssued.status, 302, 'a correctly signed id the service never issued: sent to sign in')
  t.equal(stack.alma.calls.length, 0, 'Alma was never asked about anyone')
  t.equal((await send(`${stack.serviceUrl}/`, { headers: { cookie: String(real).split(';')[0] } })).status, 200, 'the real cookie still works')
})

t.test('in header mode /auth/ezproxy does not exist', async t => {
  const stack = await build(t)
  const answer = await new Browser(stack).login('alice').get('/auth/ezproxy?token=abc')
  t.equal(answer.status, 404)
})
