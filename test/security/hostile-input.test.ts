// Hostile input from every side: forged forms (CSRF), markup in what Alma returns (XSS), redirect targets
// smuggled into the return route (open redirect).

import t from 'tap'
import { Browser, build, readForm, send } from '../helper.ts'
import type { SeedUser } from '../../src/sandbox/seed.ts'
import { DirectClient } from './direct.ts'

t.test('POST /checkout without the CSRF token, or with a wrong one, is 403 and records nothing', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const fines = await alice.get('/')
  const token = readForm(fines.body, 'pay-form').fields.find(([k]) => k === '_csrf')?.[1] ?? ''
  t.ok(token.length >= 20, 'the page carries a token')
  const bob = new Browser(stack).login('bob')
  const bobToken = readForm((await new Browser(stack).login('alice').get('/')).body, 'pay-form').fields.find(([k]) => k === '_csrf')?.[1] ?? ''
  await bob.get('/')
  stack.alma.calls.length = 0
  const attempts: Array<[string, Browser, Array<[string, string]>]> = [
    ['no token', alice, [['fee', '100001']]],
    ['empty token', alice, [['_csrf', ''], ['fee', '100001']]],
    ['a made-up token', alice, [['_csrf', 'x'.repeat(token.length)], ['fee', '100001']]],
    ['a token altered by one character', alice, [['_csrf', token.slice(0, -1) + (token.endsWith('a') ? 'b' : 'a')], ['fee', '100001']]],
    ['another browser\'s token', bob, [['_csrf', token], ['fee', '100001']]],
    ['a token from another session of the same patron', alice, [['_csrf', bobToken === token ? 'nope' : bobToken], ['fee', '100001']]],
    ['the token twice with different values', alice, [['_csrf', token], ['_csrf', 'other'], ['fee', '100001']]]
  ]
  for (const [what, browser, fields] of attempts) {
    const answer = await browser.post('checkout', fields)
    t.equal(answer.status, 403, `${what}: 403`)
    t.match(answer.body, 'Please start again', `${what}: a calm page`)
  }
  const cookieless = await send(`${stack.serviceUrl}/checkout`, { method: 'POST', headers: { 'x-ezproxy-user': 'alice' }, body: `_csrf=${encodeURIComponent(token)}&fee=100001` })
  t.equal(cookieless.status, 403, 'the token without its cookie (a cross-site post): 403')
  t.equal(stack.alma.calls.length, 0, 'Alma was not asked')
  t.equal(await stack.app.ledger.latestCheckoutForUser('alice'), undefined, 'no checkout for alice')
  t.equal(await stack.app.ledger.latestCheckoutForUser('bob'), undefined, 'no checkout for bob')
  t.ok(stack.logLines().filter(l => l.event === 'access.csrf').length >= attempts.length, 'each refusal logged')
  const real = await alice.post('checkout', [['_csrf', token], ['fee', '100001']])
  t.equal(real.status, 200, 'the real form still works')
})

const PAYLOADS = {
  script: '<script>alert("xss")</script>',
  attribute: '"><img src=x onerror=alert(1)>',
  single: '\'><svg onload=alert(1)>',
  url: 'javascript:alert(1)',
  closeTitle: '</title><script>alert(2)</script>',
  style: '<style>body{display:none}</style>',
  entity: '&lt;script&gt;alert(3)&lt;/script&gt;'
}

function hostileUser (): SeedUser {
  const all = Object.values(PAYLOADS).join(' ')
  return {
    primaryId: 'mallory',
    firstName: PAYLOADS.script,
    lastName: PAYLOADS.attribute,
    email: 'mallory@example.edu',
    userGroup: 'UNDERGRAD',
    identifiers: [{ type: 'UNIV_ID', value: '9000001' }],
    blocks: [{ type: 'GENERAL', typeDesc: PAYLOADS.closeTitle, code: 'FINE', codeDesc: PAYLOADS.single, status: 'ACTIVE', note: all }],
    fees: [
      { id: '990001', type: 'OVERDUEFINE', typeDesc: PAYLOADS.single, balance: '3.00', owner: 'MAIN', ownerDesc: PAYLOADS.style, title: all, barcode: PAYLOADS.attribute, comment: all, created: '2026-10-01T14:30:00Z' },
      { id: '990002', type: 'LOSTITEMREPLACEMENTFEE', typeDesc: PAYLOADS.url, balance: '4.00', owner: 'MAIN', ownerDesc: 'Main', title: PAYLOADS.entity, barcode: '', comment: PAYLOADS.script, created: '2026-10-02T14:30:00Z' }
    ],
    story: 'hostile'
  }
}

/**
 * What would run or restyle the page: tags the payloads carry (script, img, svg, style) and event-handler or
 * javascript: attributes, read off the real tags of the page (an escaped payload inside text or an attribute
 * value is not a tag).
 */
function live (page: string): string[] {
  const found: string[] = []
  for (const tag of page.matchAll(/<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=>"']+(?:="[^"]*")?)*)\s*\/?>/g)) {
    const [, name, attributes] = tag
    if (/^(svg|img)$/i.test(name)) found.push(tag[0])
    for (const attribute of attributes.matchAll(/([^\s=]+)(?:="([^"]*)")?/g)) {
      if (/^on/i.test(attribute[1]) || /^style$/i.test(attribute[1])) found.push(tag[0])
      if (/^(href|src|action|formaction)$/i.test(attribute[1]) && /^\s*javascript:/i.test(attribute[2] ?? '')) found.push(tag[0])
    }
  }
  const scripts = [...page.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/gi)].filter(m => m[1].trim() !== '')
  found.push(...scripts.map(m => m[0]))
  const styles = [...page.matchAll(/<style>([\s\S]*?)<\/style>/gi)].filter(m => !/^:root\{[^{}<]*\}$/.test(m[1]))
  found.push(...styles.map(m => m[0]))
  return found
}

t.test('markup in Alma\'s names, titles, comments, descriptions and block notes is rendered inert on every page', async t => {
  const stack = await build(t)
  stack.alma.addUser(hostileUser())
  const mallory = new Browser(stack).login('mallory')
  const fines = await mallory.get('/')
  t.equal(fines.status, 200)
  t.same(live(fines.body), [], 'fines page: nothing live')
  t.match(fines.body, '&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;', 'the name is shown as text')
  t.match(fines.body, '&amp;lt;script&amp;gt;', 'entities from Alma are shown as typed, not decoded into markup')
  const { handoff, fields, action } = await mallory.checkout()
  t.equal(handoff.status, 200)
  t.same(live(handoff.body), [], 'hand-off page: nothing live')
  t.ok(fields.some(([k, v]) => k === 'desc1' && v.includes('<')), 'the CashNet description carries the text, escaped into the attribute')
  const receipt = await mallory.payOnCashnet(action, fields)
  t.same(live(receipt.body), [], 'receipt page: nothing live')
  await stack.app.worker.idle()
  const later = await mallory.get('cashnet/return')
  t.same(live(later.body), [], 'receipt after posting: nothing live')
})

t.test('the return route never redirects off the site, whatever the parameters say', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout(['100001'])
  await alice.payOnCashnet(action, fields)
  const targets = ['https://evil.example/', '//evil.example/', '/\\evil.example', 'javascript:alert(1)', `${stack.serviceUrl}@evil.example`]
  const answers = []
  for (const target of targets) {
    const encoded = encodeURIComponent(target)
    for (const query of [`url=${encoded}`, `next=${encoded}`, `returnURL=${encoded}`, `signouturl=${encoded}`, `redirect=${encoded}`, `ref=${encoded}`]) {
      answers.push([query, await alice.get(`cashnet/return?${query}`)] as const)
      answers.push([`POST ${query}`, await alice.request('cashnet/return', { method: 'POST', body: query })] as const)
    }
  }
  answers.push(['//evil path', await send(`${stack.serviceUrl}//evil.example/cashnet/return`, { headers: { 'x-ezproxy-user': 'alice' } })] as const)
  answers.push(['/\\ path', await send(`${stack.serviceUrl}/%5Cevil.example`, { headers: { 'x-ezproxy-user': 'alice' } })] as const)
  for (const [what, answer] of answers) {
    const location = answer.headers.location
    if (location !== undefined) {
      const resolved = new URL(String(location), `${stack.serviceUrl}/cashnet/return`)
      t.equal(resolved.origin, stack.serviceUrl, `${what}: a redirect stays on the service (${String(location)})`)
    }
    t.notMatch(answer.body, /evil\.example|javascript:alert/, `${what}: the target is not echoed`)
    t.ok(answer.status < 500, `${what}: no error`)
  }
})

t.test('in userobject mode, the sign-in redirect goes only to EZproxy and carries only a local path', async t => {
  const stack = await build(t, { env: { AUTH_MODE: 'userobject' } })
  for (const path of ['/?next=https://evil.example/', '/cashnet/return?url=//evil.example', '/cashnet/return?next=%2F%2Fevil.example']) {
    const answer = await send(`${stack.serviceUrl}${path}`)
    t.equal(answer.status, 302, `${path}: sent to sign in`)
    const location = new URL(String(answer.headers.location))
    t.equal(location.origin, new URL(stack.config.ezproxyUrl).origin, `${path}: to EZproxy`)
    const returnUrl = new URL(decodeURIComponent(location.search.split('returnURL=')[1] ?? ''))
    t.equal(returnUrl.origin, new URL(stack.config.publicUrl).origin, `${path}: back to the service`)
    const next = returnUrl.searchParams.get('next') ?? ''
    t.ok(next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\'), `${path}: next is a local path (${next})`)
  }
  const direct = new DirectClient(stack, null)
  const posted = await direct.post('cashnet/return', { url: 'https://evil.example/' })
  if (posted.headers.location !== undefined) {
    t.equal(new URL(String(posted.headers.location), `${stack.serviceUrl}/cashnet/return`).origin, stack.serviceUrl, 'the POST bounce stays on the service')
  }
})
