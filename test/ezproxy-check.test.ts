// /ezproxy-check: the librarian's view of what the service received from EZproxy on this request. Open to
// anyone, so it must never show a secret, nor present an untrusted peer's claimed username as resolved.

import t from 'tap'
import { Browser, build, send, UNTRUSTED_PEER } from './helper.ts'

const SECRET = { EZPROXY_SECRET_HEADER: 'X-EZproxy-Secret', EZPROXY_SECRET: 'correct-horse-battery-staple' }

async function check (url: string, options: { from?: string, headers?: Record<string, string> } = {}): Promise<Record<string, any>> {
  const answer = await send(`${url}/ezproxy-check?format=json`, options)
  if (answer.status !== 200) throw new Error(`ezproxy-check answered ${answer.status}`)
  return JSON.parse(answer.body)
}

const codes = (findings: Array<{ code: string }>): string[] => findings.map(f => f.code)

t.test('trusted: through the EZproxy stand-in, the page shows the peer, the header and the resolved user', async t => {
  const stack = await build(t)
  const page = await new Browser(stack).login('alice').get('/ezproxy-check')
  t.equal(page.status, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.headers['cache-control'], /no-store/)
  t.match(page.body, '<code>127.0.0.1</code>', 'the peer address')
  t.match(page.body, /Peer trusted \(in EZPROXY_ALLOW\)<\/th><td>Yes/)
  t.match(page.body, /User header <code>X-EZproxy-User<\/code><\/th><td>Arrived</)
  t.match(page.body, /Resolved username<\/th><td><strong>alice<\/strong>/)
  t.match(page.body, 'Check that this is <em>your own</em> username')
  t.notMatch(page.body, 'What to fix')

  const json = await send(`${stack.publicUrl}/ezproxy-check`, { headers: { accept: 'application/json', cookie: stack.ezproxy.login('carol') } })
  t.match(json.headers['content-type'], /application\/json/)
  t.match(json.headers['cache-control'], /no-store/)
  const body = JSON.parse(json.body)
  t.match(body, {
    authMode: 'header',
    peer: { address: '127.0.0.1', socketAddress: '127.0.0.1', trusted: true },
    trustProxy: { configured: false },
    userHeader: { name: 'X-EZproxy-User', arrived: true, usable: true },
    secretHeader: { configured: false, arrived: false, matches: null },
    resolvedUser: 'carol',
    ok: true,
    problems: []
  })
  t.ok(codes(body.notes).includes('all_good'))
})

t.test('untrusted peer: not trusted, what to fix, and the claimed username is neither resolved nor echoed', async t => {
  const stack = await build(t)
  const body = await check(stack.serviceUrl, { from: UNTRUSTED_PEER, headers: { 'x-ezproxy-user': 'mallory-claims-this', 'x-forwarded-for': '127.0.0.1' } })
  t.match(body, { peer: { address: UNTRUSTED_PEER, socketAddress: UNTRUSTED_PEER, trusted: false }, userHeader: { arrived: true }, resolvedUser: null, ok: false })
  t.same(codes(body.problems), ['peer_untrusted'])
  t.match(body.problems[0].text, 'not in EZPROXY_ALLOW')
  t.match(body.problems[0].text, 'ExcludeIP', 'names the on-campus bypass')
  t.match(body.problems[0].text, 'set TRUST_PROXY', 'an X-Forwarded-For arrived: perhaps a proxy in front')
  t.ok(codes(body.notes).includes('user_header_ignored'))
  const page = await send(`${stack.serviceUrl}/ezproxy-check`, { from: UNTRUSTED_PEER, headers: { 'x-ezproxy-user': 'mallory-claims-this' } })
  t.equal(page.status, 200, 'anyone may open the page')
  t.notMatch(page.body, 'mallory-claims-this', 'the claimed username is not shown anywhere')
  t.notMatch(JSON.stringify(body), 'mallory-claims-this')
  t.match(page.body, /Resolved username<\/th><td>None/)
  t.match(page.body, 'What to fix')
  t.match(page.body, 'move the stanza above the first ExcludeIP line')
})

t.test('header missing: a trusted peer without the user header is told to check the stanza', async t => {
  const stack = await build(t)
  const body = await check(stack.serviceUrl, { from: '127.0.0.1' })
  t.match(body, { peer: { trusted: true }, userHeader: { arrived: false }, resolvedUser: null, ok: false })
  t.same(codes(body.problems), ['user_header_missing'])
  t.match(body.problems[0].text, '"AddUserHeader X-EZproxy-User" on a line before its Title line', 'the hint names the documented directive')
  t.match(body.problems[0].text, 'userobject mode')

  const expression = await check(stack.serviceUrl, { from: '127.0.0.1', headers: { 'x-ezproxy-user': 'login:user' } })
  t.same(codes(expression.problems), ['user_header_expression'], 'EZproxy sent the expression text, not its value')
  t.equal(expression.resolvedUser, null)
  t.match(expression.problems[0].text, 'AddUserHeader', 'use AddUserHeader')
  t.match(expression.problems[0].text, 'session:user', 'and session:user, not login:user, in an expression')
  const empty = await check(stack.serviceUrl, { from: '127.0.0.1', headers: { 'x-ezproxy-user': ' ' } })
  t.same(codes(empty.problems), ['user_header_empty'])
  const odd = await check(stack.serviceUrl, { from: '127.0.0.1', headers: { 'x-ezproxy-user': 'a b<c>' } })
  t.same(codes(odd.problems), ['user_header_unusable'])
})

t.test('the same header twice (browser and EZproxy) is a problem, not a username', async t => {
  const stack = await build(t)
  const answer = await new Promise<Record<string, any>>((resolve, reject) => {
    import('node:http').then(({ request }) => {
      const url = new URL(`${stack.serviceUrl}/ezproxy-check?format=json`)
      const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, localAddress: '127.0.0.1', headers: ['Host', url.host, 'X-EZproxy-User', 'someone-else', 'X-EZproxy-User', 'alice'] as unknown as Record<string, string> }, res => {
        let text = ''
        res.on('data', c => { text += c })
        res.on('end', () => { resolve(JSON.parse(text)) })
      })
      req.on('error', reject)
      req.end()
    }, reject)
  })
  t.same(codes(answer.problems), ['user_header_repeated'])
  t.equal(answer.resolvedUser, null)
})

t.test('wrong secret: arrived but does not match; missing secret; right secret resolves; the secret is never shown', async t => {
  const stack = await build(t, { env: SECRET })
  const wrong = await check(stack.serviceUrl, { from: '127.0.0.1', headers: { 'x-ezproxy-user': 'alice', 'x-ezproxy-secret': 'wrong-horse-battery-staple' } })
  t.match(wrong, { secretHeader: { configured: true, name: 'X-EZproxy-Secret', arrived: true, matches: false }, resolvedUser: null, ok: false })
  t.same(codes(wrong.problems), ['secret_mismatch'])
  t.match(wrong.problems[0].text, 'checking quotes and spaces')

  const missing = await check(stack.serviceUrl, { from: '127.0.0.1', headers: { 'x-ezproxy-user': 'alice' } })
  t.match(missing, { secretHeader: { arrived: false, matches: null }, resolvedUser: null })
  t.same(codes(missing.problems), ['secret_header_missing'])
  t.match(missing.problems[0].text, 'unset EZPROXY_SECRET_HEADER and EZPROXY_SECRET')

  const untrusted = await check(stack.serviceUrl, { from: UNTRUSTED_PEER, headers: { 'x-ezproxy-user': 'alice', 'x-ezproxy-secret': 'guess' } })
  t.equal(untrusted.secretHeader.matches, null, 'an untrusted peer cannot use the page to test guesses')

  const browser = new Browser(stack).login('alice')
  const right = await browser.get('/ezproxy-check?format=json')
  t.match(JSON.parse(right.body), { secretHeader: { arrived: true, matches: true }, resolvedUser: 'alice', ok: true })
  const html = await browser.get('/ezproxy-check')
  t.match(html.body, 'Arrived and matches EZPROXY_SECRET')
  for (const answer of [right, html]) {
    t.notMatch(answer.body, SECRET.EZPROXY_SECRET, 'the secret value is never shown')
    t.notMatch(answer.body, 'wrong-horse', 'nor a wrong one')
  }
  t.notMatch(stack.logs.join('\n'), SECRET.EZPROXY_SECRET, 'nor logged')
})

t.test('every value on the page is escaped', async t => {
  const stack = await build(t, { env: { EZPROXY_ALLOW: '127.0.0.1', LIBRARY_NAME: '<script>alert(1)</script> Library' } })
  const page = await send(`${stack.serviceUrl}/ezproxy-check`, { from: '127.0.0.1', headers: { 'x-ezproxy-user': '<img src=x onerror=alert(1)>' } })
  t.notMatch(page.body, '<script>alert(1)</script>')
  t.notMatch(page.body, '<img src=x')
  t.match(page.body, '&lt;script&gt;alert(1)&lt;/script&gt; Library')
})

t.test('TRUST_PROXY: a front proxy is followed through X-Forwarded-For, and EZproxy in TRUST_PROXY is flagged', async t => {
  const stack = await build(t, { env: { TRUST_PROXY: '127.0.0.3', EZPROXY_ALLOW: '127.0.0.1,127.0.0.3' } })
  const viaProxy = await check(stack.serviceUrl, { from: '127.0.0.3', headers: { 'x-forwarded-for': '127.0.0.1', 'x-ezproxy-user': 'alice' } })
  t.match(viaProxy, { peer: { address: '127.0.0.1', socketAddress: '127.0.0.3', trusted: true }, trustProxy: { configured: true, socketPeerIsFrontProxy: true, forwardedForArrived: true } })
  t.ok(codes(viaProxy.problems).includes('ezproxy_in_trust_proxy'), '127.0.0.3 is in both lists')
  const noXff = await check(stack.serviceUrl, { from: '127.0.0.3', headers: { 'x-ezproxy-user': 'alice' } })
  t.ok(codes(noXff.problems).includes('proxy_sent_no_forwarded_for'))
})

t.test('userobject mode: the session is what counts, and the page says whose it is', async t => {
  const stack = await build(t, { env: { AUTH_MODE: 'userobject' } })
  const browser = new Browser(stack).login('alice')
  const before = JSON.parse((await browser.get('/ezproxy-check?format=json')).body)
  t.match(before, { authMode: 'userobject', userobject: { wskeyConfigured: true }, session: { present: false }, resolvedUser: null, ok: false })
  t.same(before.problems, [])
  t.ok(codes(before.notes).includes('no_session'))
  t.notMatch(JSON.stringify(before), 'sandbox-ezproxy-wskey', 'the wskey is never shown')

  // sign in: the fines page sends the browser through EZproxy's getToken and back
  const fines = await browser.follow(await browser.get('/'), stack.publicUrl, 6)
  t.equal(fines.status, 200)
  const after = JSON.parse((await browser.get('/ezproxy-check?format=json')).body)
  t.match(after, { session: { present: true, valid: true, expired: false }, resolvedUser: 'alice', ok: true })
  const page = await browser.get('/ezproxy-check')
  t.match(page.body, /Your session with the service<\/th><td>Valid until/)
  t.match(page.body, /Resolved username<\/th><td><strong>alice<\/strong>/)

  const tampered = await check(stack.serviceUrl, { headers: { cookie: 'acn_session=eyJ1IjoiYWxpY2UiLCJlIjo5OTk5OTk5OTk5OTk5fQ.AAAA' } })
  t.match(tampered, { session: { present: true, valid: false }, resolvedUser: null })
  t.same(codes(tampered.problems), ['session_invalid'])
})
