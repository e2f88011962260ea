// SPEC 12 with AUTH_MODE=userobject: a patron's whole sign-in at a campus, through its EZproxy stand-in (the
// login page, getToken, /{campus}/auth/ezproxy), ends on the page they first asked for at that campus, for
// every campus; the page to go on to after sign-in never leaves the service, nor the campus.

import t from 'tap'
import type { SandboxCampus } from '../src/sandbox/stack.ts'
import { type Answer, Browser, buildCampuses, form, readForm, send } from './helper.ts'

const BOTH_USEROBJECT = { campuses: [{ id: 'springfield', env: { AUTH_MODE: 'userobject' } }, { id: 'shelbyville', env: { AUTH_MODE: 'userobject' } }] }

/** A patron's browser at a campus: through its EZproxy stand-in, the service's paths under the campus's prefix. */
function browserAt (campus: SandboxCampus): Browser {
  return new Browser({ publicUrl: campus.ezproxyUrl, ezproxy: campus.ezproxy }, { prefix: `/${campus.id}` })
}

/**
 * Signs in as a patron would, starting from a path of the campus: the stand-in's gate sends the browser to its
 * login page, the patron chooses a name, and the redirects are followed (the service's to getToken, getToken's
 * to /auth/ezproxy, the service's to the page), each URL visited recorded. `next`: the return to /auth/ezproxy
 * carries this page to go on to instead (a crafted sign-in link), and the walk stops at its answer.
 */
async function signIn (campus: SandboxCampus, browser: Browser, username: string, path: string, next?: string): Promise<{ landed: Answer, at: string, visited: string[] }> {
  const gate = await browser.get(path)
  const loginPage = await browser.follow(gate, campus.ezproxyUrl)
  if (loginPage.status !== 200) throw new Error(`the stand-in's login page answered ${loginPage.status}`)
  let at = new URL(/action="([^"]*)"/.exec(loginPage.body)?.[1]?.replace(/&amp;/g, '&') ?? '', campus.ezproxyUrl).toString()
  let answer = await browser.request(at, { method: 'POST', body: form({ user: username }) })
  const visited: string[] = []
  for (let i = 0; i < 10 && answer.status >= 300 && answer.status < 400; i++) {
    const url = new URL(String(answer.headers.location), at)
    const returning = url.pathname.endsWith('/auth/ezproxy') && url.searchParams.has('token')
    if (returning && next !== undefined) url.searchParams.set('next', next)
    at = url.toString()
    visited.push(at)
    answer = await browser.request(at)
    if (returning && next !== undefined) break
  }
  return { landed: answer, at, visited }
}

for (const [index, expected] of [[0, 'The Name of the Rose</'], [1, 'The Name of the Rose (shelbyville)']] as const) {
  t.test(`campus ${index + 1}: the whole userobject sign-in ends on the patron's fines at that campus (200)`, async t => {
    const stack = await buildCampuses(t, BOTH_USEROBJECT)
    const campus = stack.campuses[index]
    const { landed, at, visited } = await signIn(campus, browserAt(campus), 'alice', '/')
    const auth = visited.map(u => new URL(u)).find(u => u.searchParams.has('token'))
    t.equal(auth?.pathname, `/${campus.id}/auth/ezproxy`, 'EZproxy sends the browser back to the campus\'s /auth/ezproxy')
    t.equal(new URL(at).pathname, `/${campus.id}/`, 'and the service on to the campus\'s fines page')
    t.equal(landed.status, 200, `the last page is not a ${landed.status}`)
    t.match(landed.body, 'Library fines and fees for Alice')
    t.match(landed.body, expected, 'the fees of this campus\'s Alma')
    t.equal(stack.logLines().filter(l => l.event === 'auth.session_started' && l.campus === campus.id).length, 1, 'a session at this campus')

    // a deeper page with a query: the patron lands on it
    const history = await signIn(campus, browserAt(campus), 'alice', '/history?from=primo')
    t.equal(`${new URL(history.at).pathname}${new URL(history.at).search}`, `/${campus.id}/history?from=primo`, 'on the page first asked for')
    t.equal(history.landed.status, 200, `the last page is not a ${history.landed.status}`)
  })
}

t.test('the page after sign-in stays on the service and in the campus, whatever `next` a crafted link carries', async t => {
  const stack = await buildCampuses(t, BOTH_USEROBJECT)
  const [springfield] = stack.campuses
  const campusRoot = `${springfield.publicUrl}/`
  const hostile = [
    '//evil.example/', 'https://evil.example/', '/\\evil.example', '/\t/evil.example', 'evil',
    '/../shelbyville/', '/%2e%2e/shelbyville/', '/./../shelbyville/', '/history/../../shelbyville/', '/auth/ezproxy?token=x'
  ]
  for (const next of hostile) {
    const { landed, at } = await signIn(springfield, browserAt(springfield), 'alice', '/', next)
    t.equal(new URL(at).pathname, '/springfield/auth/ezproxy')
    t.equal(landed.status, 302, `${JSON.stringify(next)}: signed in`)
    const target = new URL(String(landed.headers.location), at)
    t.equal(target.origin, new URL(campusRoot).origin, `${JSON.stringify(next)}: stays on the service's origin`)
    t.ok(target.pathname.startsWith('/springfield/'), `${JSON.stringify(next)}: stays under /springfield/ (went to ${target.pathname})`)
    t.notOk(target.pathname.startsWith('/springfield/auth/'), `${JSON.stringify(next)}: not back into /auth/`)
  }
  t.equal(stack.campuses[1].alma.calls.length, 0, 'Shelbyville\'s Alma was never asked about Springfield\'s patron')
})

t.test('the whole userobject pay journey at a campus reaches the receipt, though CashNet\'s POST back comes without the cookie', async t => {
  const stack = await buildCampuses(t, BOTH_USEROBJECT)
  const [springfield, shelbyville] = stack.campuses
  springfield.cashnet.behaviour.returnMode = 'post'
  const browser = browserAt(springfield)
  const { landed } = await signIn(springfield, browser, 'alice', '/')
  t.equal(landed.status, 200, 'alice\'s fines at Springfield')

  const { fields, action } = await browser.checkout()
  t.match(action, /\/LIBFINESSPRINGFIELD$/, 'handed to Springfield\'s CashNet store')
  const page = await browser.request(action, { method: 'POST', body: form(fields) })
  const sessionAction = new URL(readForm(page.body).action, action).toString()
  const done = await browser.request(sessionAction, { method: 'POST', body: form({ action: 'pay' }) })
  const back = readForm(done.body, 'back')
  t.equal(new URL(back.action).pathname, '/springfield/cashnet/return', 'CashNet sends the browser back to the campus\'s return')

  // cross-site: SameSite=Lax keeps the session cookie off CashNet's POST (as it reaches the service through EZproxy)
  const posted = await send(`${stack.serviceUrl}${new URL(back.action).pathname}`, { method: 'POST', body: form(back.fields) })
  t.equal(posted.status, 303, `bounced to GET, not a ${posted.status}`)
  const receipt = await browser.follow(posted, back.action)
  t.equal(receipt.status, 200)
  t.match(receipt.body, /Payment received/)
  const paid = await browser.getUntil('/', 'Nothing to pay')
  t.match(paid.body, 'Nothing to pay', 'Springfield\'s fees are paid in its Alma')
  t.equal(shelbyville.alma.calls.filter(r => r.method === 'POST').length, 0, 'nothing posted to Shelbyville\'s Alma')
})
