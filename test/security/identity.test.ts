// Who a request is: usernames made only of dots (issue 13 item 10), the user header in base64 and twice
// (issue 20), and CSRF tokens bound to the identity they were issued to (issue 13 item 14). Over real HTTP,
// with the Alma sandbox's record as the judge of what reached Alma.

import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { type Answer, Browser, build, checkoutIdFrom, form, send, type TestStack, UNTRUSTED_PEER } from '../helper.ts'
import { DirectClient, EZPROXY_PEER } from './direct.ts'

/** A GET from the EZproxy address with a header sent as several separate header lines. */
async function getWithRepeatedHeader (url: string, name: string, values: string[]): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const target = new URL(url)
    const req = httpRequest({ host: target.hostname, port: target.port, path: target.pathname + target.search, localAddress: EZPROXY_PEER, headers: { [name]: values } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
    })
    req.on('error', reject)
    req.end()
  })
}

const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64')

function almaSawUserPath (stack: TestStack, fragment: RegExp): boolean {
  return stack.alma.calls.some(c => fragment.test(c.path))
}

t.test('usernames made only of dots are refused with the same 401 as other malformed names; Alma never sees them', async t => {
  const stack = await build(t)
  const malformed = await new DirectClient(stack, 'alice/bob').get('/')
  t.equal(malformed.status, 401, 'a malformed name: 401')
  for (const username of ['.', '..', '...', '....']) {
    const answer = await new DirectClient(stack, username).get('/')
    t.equal(answer.status, 401, `${JSON.stringify(username)}: 401`)
    t.equal(answer.body, malformed.body, `${JSON.stringify(username)}: the same page as other malformed names`)
    const posted = await new DirectClient(stack, username).post('checkout', [['fee', '100001']])
    t.equal(posted.status, 401, `${JSON.stringify(username)}: POST /checkout refused before anything else`)
  }
  for (const fine of ['a.', '.a', 'j.doe', 'a..b']) {
    const answer = await new DirectClient(stack, fine).get('/ezproxy-check?format=json')
    t.equal(JSON.parse(answer.body).userHeader.usable, true, `${fine}: dots with other characters are still a usable name`)
  }
  const check = JSON.parse((await new DirectClient(stack, '..').get('/ezproxy-check?format=json')).body)
  t.equal(check.resolvedUser, null, '/ezproxy-check does not resolve ".." either')
  t.same(check.problems.map((p: { code: string }) => p.code), ['user_header_unusable'])
  t.notOk(almaSawUserPath(stack, /\/users\/\.+(\/|$)/), 'the Alma sandbox never saw a /users/<dots> path')
  t.equal(stack.alma.calls.length, 0, 'nor any call at all')
  t.ok(stack.logLines().filter(l => l.event === 'access.no_user').length >= 8, 'each refusal logged as access.no_user')
})

t.test('userobject mode: a UserObject uid made only of dots starts no session', async t => {
  // a ledger file, to look into its sessions table
  const stack = await build(t, { env: { AUTH_MODE: 'userobject', DATABASE_PATH: join(t.testdir(), 'payments.sqlite') } })
  const browser = new Browser(stack)
  const signedIn = await browser.signIn('..')
  const landed = await browser.follow(signedIn, stack.publicUrl, 8)
  t.equal(landed.status, 401, 'refused at /auth/ezproxy')
  t.match(landed.body, 'We could not confirm your sign-in')
  const ledgerFile = new Database(stack.app.config.databasePath, { readonly: true })
  t.equal((ledgerFile.prepare('SELECT COUNT(*) AS n FROM sessions').get() as { n: number }).n, 0, 'no session was started (none in the ledger)')
  ledgerFile.close()
  t.notOk(stack.logLines().some(l => l.event === 'auth.session_started'), 'none logged')
  t.notOk(almaSawUserPath(stack, /\/users\/\.+(\/|$)/), 'the Alma sandbox never saw a /users/<dots> path')
})

t.test('EZPROXY_USER_HEADER_ENCODING=base64: AddUserHeader -base64 values are decoded; plain or broken values are refused', async t => {
  const stack = await build(t, { env: { EZPROXY_USER_HEADER_ENCODING: 'base64' } })
  // the EZproxy stand-in plays AddUserHeader -base64
  const page = await new Browser(stack).login('alice').get('/')
  t.equal(page.status, 200, 'through the stand-in (which sends base64): served')
  t.match(page.body, 'Alice')
  const direct = await new DirectClient(stack, base64('alice')).get('/')
  t.equal(direct.status, 200, `${base64('alice')} decodes to alice`)
  t.match(direct.body, 'Alice')
  const padded = await new DirectClient(stack, ` ${base64('carol')} `).get('/')
  t.equal(padded.status, 200, 'surrounding spaces are ignored')

  const refused: Array<[string, string]> = [
    ['the plain name (a header in another encoding than configured)', 'alice'],
    ['a plain name that happens to be valid base64', 'bobbob12'],
    ['not base64 at all', 'al!ce'],
    ['base64 without its padding', base64('alice').replace(/=+$/, '')],
    ['base64url alphabet', base64('??>>').replace(/\+/g, '-').replace(/\//g, '_')],
    ['base64 of bytes that are not UTF-8', Buffer.from([0xff, 0xfe, 0x41]).toString('base64')],
    ['base64 of a name with a slash', base64('alice/../bob')],
    ['base64 of ".."', base64('..')],
    ['base64 of an empty name', base64(' ')]
  ]
  const first = await new DirectClient(stack, 'alice/bob').get('/')
  for (const [what, value] of refused) {
    const answer = await new DirectClient(stack, value).get('/')
    t.equal(answer.status, 401, `${what}: 401`)
    t.equal(answer.body, first.body, `${what}: the same page as a malformed name`)
  }
  t.notOk(stack.alma.calls.some(c => /\/users\/(alice|bobbob12)\/|\.\./.test(c.path) && !/\/users\/alice\/fees|\/users\/alice$/.test(c.path)), 'no refused value reached Alma')
  const check = JSON.parse((await new DirectClient(stack, 'alice').get('/ezproxy-check?format=json')).body)
  t.equal(check.resolvedUser, null)
  t.same(check.problems.map((p: { code: string }) => p.code), ['user_header_undecodable'], '/ezproxy-check says the encodings disagree')
  const ok = JSON.parse((await new DirectClient(stack, base64('alice')).get('/ezproxy-check?format=json')).body)
  t.equal(ok.resolvedUser, 'alice', '/ezproxy-check decodes it the same way')
})

t.test('EZPROXY_USER_HEADER_ENCODING=plain (the default): a base64 value is not decoded, and one with padding is refused', async t => {
  const stack = await build(t)
  const answer = await new DirectClient(stack, base64('alice')).get('/')
  t.equal(answer.status, 401, `${base64('alice')} is refused (= is not a username character)`)
  t.notMatch(answer.body, 'Alice')
  const check = JSON.parse((await new DirectClient(stack, base64('alice')).get('/ezproxy-check?format=json')).body)
  t.match(check.problems[0].text, 'EZPROXY_USER_HEADER_ENCODING=base64', '/ezproxy-check suggests the setting')
})

t.test('a user header that arrives twice is refused, in either encoding, even with the same value twice', async t => {
  for (const encoding of ['plain', 'base64'] as const) {
    const stack = await build(t, { env: { EZPROXY_USER_HEADER_ENCODING: encoding } })
    const encode = (name: string): string => encoding === 'base64' ? base64(name) : name
    const single = await getWithRepeatedHeader(`${stack.serviceUrl}/`, 'x-ezproxy-user', [encode('alice')])
    t.equal(single.status, 200, `${encoding}: once, served`)
    for (const values of [[encode('alice'), encode('mallory')], [encode('alice'), encode('alice')], [encode('mallory'), encode('alice'), encode('alice')]]) {
      const answer = await getWithRepeatedHeader(`${stack.serviceUrl}/`, 'x-ezproxy-user', values)
      t.equal(answer.status, 401, `${encoding}: ${values.length} times (${values.join(' / ')}): 401`)
      t.notMatch(answer.body, 'Alice')
    }
    const lines = stack.logLines().filter(l => l.event === 'access.user_header_repeated')
    t.equal(lines.length, 3, `${encoding}: logged as access.user_header_repeated`)
    t.match(lines[0].reason, 'AddUserHeader', 'the operator line names the fix')
    const check = await getWithRepeatedHeader(`${stack.serviceUrl}/ezproxy-check?format=json`, 'x-ezproxy-user', [encode('alice'), encode('alice')])
    t.equal(JSON.parse(check.body).resolvedUser, null, `${encoding}: /ezproxy-check does not resolve it either`)
    t.same(JSON.parse(check.body).problems.map((p: { code: string }) => p.code), ['user_header_repeated'])
  }
})

/** The CSRF token in a page's first form. */
function csrfOf (body: string): string {
  return /name="_csrf" value="([^"]+)"/.exec(body)?.[1] ?? ''
}

t.test('a CSRF token issued to one patron is refused for another, even in the same browser', async t => {
  const stack = await build(t)
  const alice = new DirectClient(stack, 'alice')
  const { csrf } = await alice.finesForm()
  t.ok(csrf.length > 10, 'alice has a token')
  // Carol at the same computer after Alice: the same browser, so the same CSRF cookie, and Alice's page still open.
  const carol = new DirectClient(stack, 'carol')
  for (const [name, value] of alice.cookies) carol.cookies.set(name, value)
  stack.alma.calls.length = 0
  const forged = await carol.post('checkout', [['_csrf', csrf], ['fee', '100001']])
  t.equal(forged.status, 403, 'Alice\'s token is refused for Carol')
  t.match(forged.body, 'Please start again')
  t.equal(await stack.app.ledger.latestCheckoutForUser('carol'), undefined, 'no checkout for Carol')
  t.equal(await stack.app.ledger.latestCheckoutForUser('alice'), undefined, 'nor for Alice')
  t.equal(stack.alma.calls.length, 0, 'Alma was not asked')
  t.ok(stack.logLines().some(l => l.event === 'access.csrf' && l.user === 'carol'), 'logged as access.csrf for carol')

  const own = await carol.finesForm()
  const mine = await carol.post('checkout', [['_csrf', own.csrf], ['fee', own.fees[0]]])
  t.equal(mine.status, 200, 'Carol\'s own token, in the same browser, works')
  const back = await alice.post('checkout', [['_csrf', own.csrf], ['fee', '100001']])
  t.equal(back.status, 403, 'and Carol\'s is refused for Alice')
  const aliceOwn = await alice.post('checkout', [['_csrf', csrf], ['fee', '100001']])
  t.equal(aliceOwn.status, 200, 'Alice\'s token still works for Alice')
})

t.test('a CSRF token issued to one staff member is refused for another', async t => {
  const stack = await build(t, { env: { ADMIN_USERS: 'staff,staff2' } })
  const alice = new Browser(stack).login('alice')
  const { fields } = await alice.checkout(['100001'])
  const id = checkoutIdFrom(fields)
  // CashNet reports less than the checkout: it needs attention, and its page offers staff actions
  await stack.cashnet.sendPostback({ result: '0', tx: '770001', itemcnt: '1', itemcode1: 'LIB-FINE', amount1: '0.01', ref1type1: 'ALMACHECKOUT', ref1val1: id })
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'NEEDS_ATTENTION')
  const staff = new DirectClient(stack, 'staff')
  const detail = await staff.get(`/admin/payments/${id}`)
  t.equal(detail.status, 200)
  const token = csrfOf(detail.body)
  t.ok(token.length > 10, 'the payment page carries a token')
  const staff2 = new DirectClient(stack, 'staff2')
  for (const [name, value] of staff.cookies) staff2.cookies.set(name, value)
  for (const action of ['retry', 'resolve']) {
    const answer = await staff2.post(`/admin/payments/${id}/${action}`, [['_csrf', token], ['resolution', 'refunded in CashNet']])
    t.equal(answer.status, 403, `${action} with another staff member's token: 403`)
    t.match(answer.body, 'Please start again')
  }
  t.equal((await stack.app.ledger.history(id))?.events.filter(e => /staff2/.test(JSON.stringify(e))).length ?? 0, 0, 'nothing was done by staff2 with the borrowed token')
  t.equal((await stack.app.ledger.getCheckout(id))?.resolvedAt, null, 'the payment is not marked settled')
  const own = csrfOf((await staff2.get(`/admin/payments/${id}`)).body)
  const withOwn = await staff2.post(`/admin/payments/${id}/resolve`, [['_csrf', own], ['resolution', 'refunded in CashNet']])
  t.not(withOwn.status, 403, 'with their own token the action is judged on its merits (not a CSRF refusal)')
  t.ok(((await stack.app.ledger.history(id))?.events.filter(e => /staff2/.test(JSON.stringify(e))).length ?? 0) > 0, 'and recorded under staff2\'s name')
})

t.test('the fines page is not served to a stranger who forges the user header and a borrowed CSRF cookie', async t => {
  const stack = await build(t)
  const alice = new DirectClient(stack, 'alice')
  const { csrf } = await alice.finesForm()
  const stranger = new DirectClient(stack, 'alice', UNTRUSTED_PEER)
  for (const [name, value] of alice.cookies) stranger.cookies.set(name, value)
  const answer = await stranger.post('checkout', [['_csrf', csrf], ['fee', '100001']])
  t.equal(answer.status, 403)
  t.equal(await stack.app.ledger.latestCheckoutForUser('alice'), undefined)
  t.equal((await send(`${stack.serviceUrl}/`, { from: UNTRUSTED_PEER, method: 'POST', body: form({ _csrf: csrf }) })).status, 404, 'no POST / route')
})
