// Issue 13 item 9, shared library computers: the service's own session (userobject mode) dies with the browser
// (no Max-Age/Expires), ends after SESSION_IDLE_MINUTES without a request, and ends for good at /logout, which
// then sends the browser on to EZproxy's logout. Over real HTTP; the clock the sessions are timed by is moved
// by the test instead of waiting.

import t from 'tap'
import { STANDIN_LOGOUT_PATH } from '../../src/sandbox/ezproxy.ts'
import { type Answer, Browser, build, form, send, type TestStack } from '../helper.ts'
import { cookieAttributes } from './direct.ts'

const USEROBJECT = { AUTH_MODE: 'userobject' }

function setCookies (answer: Answer): string[] {
  const lines = answer.headers['set-cookie']
  return Array.isArray(lines) ? lines : lines === undefined ? [] : [lines]
}

/** Signs a browser in through the stand-in (login page, getToken, /auth/ezproxy); the Set-Cookie of our session. */
async function signIn (stack: TestStack, browser: Browser, username: string): Promise<{ landed: Answer, sessionLine: string }> {
  let answer = await browser.signIn(username)
  let at = `${stack.publicUrl}/login?url=/`
  let sessionLine = ''
  for (let i = 0; i < 8 && answer.status >= 300 && answer.status < 400; i++) {
    sessionLine = setCookies(answer).find(l => l.startsWith('acn_session=')) ?? sessionLine
    at = new URL(String(answer.headers.location), at).toString()
    answer = await browser.request(at)
  }
  return { landed: answer, sessionLine }
}

t.test('the session cookie has no Max-Age or Expires: it dies with the browser', async t => {
  const stack = await build(t, { env: USEROBJECT })
  const { landed, sessionLine } = await signIn(stack, new Browser(stack), 'alice')
  t.equal(landed.status, 200)
  t.match(landed.body, 'Alice')
  const cookie = cookieAttributes(sessionLine)
  t.equal(cookie.name, 'acn_session')
  t.notOk('max-age' in cookie, 'no Max-Age')
  t.notOk('expires' in cookie, 'no Expires')
  t.ok('httponly' in cookie)
  t.equal(cookie.samesite?.toLowerCase(), 'lax')
})

t.test('after /logout the old session cookie gets no fines, and the browser goes on to EZproxy\'s logout', async t => {
  const stack = await build(t, { env: USEROBJECT })
  const browser = new Browser(stack)
  const { landed, sessionLine } = await signIn(stack, browser, 'alice')
  t.equal(landed.status, 200)
  const oldCookie = sessionLine.split(';')[0]
  t.equal((await send(`${stack.serviceUrl}/`, { headers: { cookie: oldCookie } })).status, 200, 'the cookie works before sign-out')

  // the patron pages link to the relative URL "logout"
  const out = await browser.get(new URL('logout', `${stack.publicUrl}/`).toString())
  t.equal(out.status, 302)
  t.equal(out.headers.location, `${stack.publicUrl}${STANDIN_LOGOUT_PATH}`, 'on to EZproxy\'s logout (EZPROXY_LOGOUT_URL)')
  const cleared = setCookies(out).map(cookieAttributes).find(c => c.name === 'acn_session')
  t.ok(cleared, 'the session cookie is cleared')
  t.equal(cleared?.value, '')
  t.match(out.headers['cache-control'], /no-store/)
  const ezproxy = await browser.follow(out, `${stack.publicUrl}/logout`)
  t.match(ezproxy.body, 'Library sign-in', 'EZproxy signed the browser out too: its login page')

  stack.alma.calls.length = 0
  const replay = await send(`${stack.serviceUrl}/`, { headers: { cookie: oldCookie } })
  t.equal(replay.status, 302, 'a copy of the old cookie is sent to sign in again')
  t.notMatch(replay.body, 'Alice')
  const post = await send(`${stack.serviceUrl}/checkout`, { method: 'POST', body: form({ fee: '100001' }), headers: { cookie: oldCookie } })
  t.equal(post.status, 401, 'and cannot start a checkout')
  const check = JSON.parse((await send(`${stack.serviceUrl}/ezproxy-check?format=json`, { headers: { cookie: oldCookie } })).body)
  t.equal(check.resolvedUser, null, '/ezproxy-check agrees')
  t.equal(stack.alma.calls.length, 0, 'Alma was not asked about Alice')
  const line = stack.logLines().find(l => l.event === 'auth.signed_out')
  t.equal(line?.user, 'alice')
  t.equal(line?.session, 'ended')

  // the next person at the computer signs in as themselves
  const next = await signIn(stack, browser, 'carol')
  t.equal(next.landed.status, 200)
  t.match(next.landed.body, 'Carol')
  t.notMatch(next.landed.body, 'Alice')
})

t.test('a session ends after SESSION_IDLE_MINUTES without a request; each request moves the limit on', async t => {
  let now = Date.now()
  const stack = await build(t, { env: { ...USEROBJECT, SESSION_IDLE_MINUTES: '5', SESSION_TTL_MINUTES: '60' }, app: { now: () => now } })
  const browser = new Browser(stack)
  const { landed, sessionLine } = await signIn(stack, browser, 'alice')
  t.equal(landed.status, 200)
  const cookie = sessionLine.split(';')[0]
  const fines = async (): Promise<Answer> => await send(`${stack.serviceUrl}/`, { headers: { cookie } })

  now += 4 * 60_000
  t.equal((await fines()).status, 200, '4 idle minutes: served')
  now += 4 * 60_000
  t.equal((await fines()).status, 200, '4 more (8 since sign-in, 4 since the last request): served')
  now += 5 * 60_000 + 1
  const idle = await fines()
  t.equal(idle.status, 302, '5 idle minutes: sent to sign in again')
  t.notMatch(idle.body, 'Alice')
  t.ok(stack.logLines().some(l => l.event === 'access.session_idle'), 'logged as access.session_idle')
  now -= 60_000
  t.equal((await fines()).status, 302, 'an idle session is gone for good, not revived')
})

t.test('header mode: /logout sends the browser to EZproxy\'s logout; without a logout URL, a calm page', async t => {
  const stack = await build(t)
  const browser = new Browser(stack).login('alice')
  t.equal((await browser.get('/')).status, 200)
  const out = await browser.get('logout')
  t.equal(out.status, 302, 'through the EZproxy stand-in, /logout reaches the service')
  t.equal(out.headers.location, `${stack.publicUrl}${STANDIN_LOGOUT_PATH}`)
  await browser.follow(out, `${stack.publicUrl}/logout`)
  const after = await browser.get('/')
  t.equal(after.status, 302, 'signed out at EZproxy: the next request goes to its login page')
  t.match(String(after.headers.location), '/login')

  const bare = await build(t, { env: { EZPROXY_URL: '', EZPROXY_LOGOUT_URL: '' } })
  const page = await send(`${bare.serviceUrl}/logout`)
  t.equal(page.status, 200)
  t.match(page.body, 'You are signed out')
  t.match(page.body, 'close the browser')
  t.match(page.headers['cache-control'], /no-store/)

  const derived = await build(t, { env: { EZPROXY_URL: 'https://ezproxy.example.edu/', EZPROXY_LOGOUT_URL: '' } })
  t.equal((await send(`${derived.serviceUrl}/logout`)).headers.location, 'https://ezproxy.example.edu/logout', 'EZPROXY_LOGOUT_URL defaults to EZPROXY_URL/logout')
})
