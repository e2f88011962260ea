// Security headers on every page: a Content-Security-Policy that lets the hand-off form reach CashNet's origin
// and nothing else, with no inline script and no inline style except the accent colour allowed by its hash;
// Cache-Control: no-store wherever patron data is shown; cookies per SPEC 10.

import { createHash } from 'node:crypto'
import t from 'tap'
import { accentCss as accentRule } from '../../src/web/views/layout.ts'
import { build, readForm, send, UNTRUSTED_PEER } from '../helper.ts'
import { cookieAttributes, DirectClient } from './direct.ts'

function csp (header: unknown): Map<string, string[]> {
  const directives = new Map<string, string[]>()
  for (const part of String(header ?? '').split(';')) {
    const [name, ...values] = part.trim().split(/\s+/)
    if (name !== '') directives.set(name, values)
  }
  return directives
}

/** Markup the policy would block, or that would need 'unsafe-inline': inline scripts, style and event attributes. */
function inlineCode (page: string): string[] {
  const found: string[] = []
  for (const match of page.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) if (!/\bsrc=/.test(match[1]) || match[2].trim() !== '') found.push(match[0])
  for (const match of page.matchAll(/<[a-z][^>]*\s(style|on[a-z]+)\s*=/gi)) found.push(match[0])
  for (const match of page.matchAll(/javascript:/gi)) found.push(match[0])
  return found
}

t.test('every kind of page carries the headers, and the policy allows CashNet for forms and nothing else', async t => {
  const stack = await build(t, { env: { ACCENT_COLOR: '#8a2be2' } })
  const alice = new DirectClient(stack, 'alice')
  const { csrf, page: fines } = await alice.finesForm()
  const handoff = await alice.post('checkout', [['_csrf', csrf], ['fee', '100001']])
  t.equal(handoff.status, 200, 'the hand-off page')
  const receipt = await alice.get('cashnet/return')
  const notFound = await alice.get('no-such-page')
  const refused = await send(`${stack.serviceUrl}/`, { from: UNTRUSTED_PEER, headers: { 'x-ezproxy-user': 'alice' } })
  const cashnetOrigin = new URL(stack.config.cashnetCheckoutUrl).origin
  const accentCss = accentRule('#8a2be2')
  t.match(accentCss, /^:root\{--accent:#8a2be2[;}]/, 'the rule carries the configured colour')
  t.notMatch(accentCss, /[<>]/, 'and nothing that could close the style element')
  const accentHash = `'sha256-${createHash('sha256').update(accentCss).digest('base64')}'`

  for (const [name, answer] of Object.entries({ fines, handoff, receipt, notFound, refused })) {
    const policy = csp(answer.headers['content-security-policy'])
    t.same(policy.get('default-src'), ["'self'"], `${name}: default-src 'self'`)
    t.same(policy.get('script-src'), ["'self'"], `${name}: scripts only from the service`)
    t.same(policy.get('script-src-attr'), ["'none'"], `${name}: no event-handler attributes`)
    t.same(policy.get('style-src'), ["'self'", accentHash], `${name}: styles from the service and the accent colour by hash`)
    t.same(policy.get('style-src-attr'), ["'none'"], `${name}: no style attributes`)
    t.same(policy.get('form-action'), ["'self'", cashnetOrigin], `${name}: forms go to the service or CashNet only`)
    t.same(policy.get('frame-ancestors'), ["'none'"], `${name}: not framed`)
    t.same(policy.get('base-uri'), ["'none'"], `${name}: no <base> hijack`)
    t.same(policy.get('object-src'), ["'none'"], `${name}: no plugins`)
    t.notMatch(String(answer.headers['content-security-policy']), /unsafe-inline|unsafe-eval|\*/, `${name}: no unsafe keyword, no wildcard`)
    t.equal(answer.headers['x-content-type-options'], 'nosniff', `${name}: nosniff`)
    t.equal(answer.headers['referrer-policy'], 'no-referrer', `${name}: no referrer leaks the checkout reference`)
    t.match(answer.headers['cache-control'], /no-store/, `${name}: no-store`)
    t.match(answer.headers['content-type'], /^text\/html; charset=utf-8/, `${name}: HTML`)
    t.same(inlineCode(answer.body), [], `${name}: no inline script, style attribute or event handler`)
    t.equal(answer.body.match(/<style>([\s\S]*?)<\/style>/g)?.length, 1, `${name}: one style element`)
    t.match(answer.body, `<style>${accentCss}</style>`, `${name}: the style element is exactly the hashed accent rule`)
    t.equal(answer.headers['strict-transport-security'], undefined, `${name}: no HSTS on the plain-HTTP demo`)
  }
  t.equal(new URL(readForm(handoff.body, 'cashnet-form').action).origin, cashnetOrigin, 'the hand-off form posts to the allowed origin')
})

t.test('the stylesheet and scripts carry no patron data and may be cached; health answers are not cached', async t => {
  const stack = await build(t)
  const css = await send(`${stack.serviceUrl}/assets/style.css`, { from: UNTRUSTED_PEER })
  t.equal(css.status, 200)
  t.match(css.headers['cache-control'], /max-age/)
  t.equal(css.headers['x-content-type-options'], 'nosniff')
  t.match(css.body, 'var(--accent)', 'the accent colour still reaches the stylesheet through the custom property')
  const health = await send(`${stack.serviceUrl}/healthz`, { from: UNTRUSTED_PEER })
  t.match(health.headers['cache-control'], /no-store/)
})

t.test('cookies are HttpOnly, SameSite=Lax, path-wide and without Domain; Secure only off the plain-HTTP demo', async t => {
  for (const publicUrl of ['plain', 'https://fines.example.edu']) {
    const stack = await build(t, publicUrl === 'plain' ? {} : { env: { PUBLIC_URL: publicUrl } })
    const alice = new DirectClient(stack, 'alice')
    const { csrf } = await alice.finesForm()
    const handoff = await alice.post('checkout', [['_csrf', csrf], ['fee', '100001']])
    t.equal(handoff.status, 200)
    const names = new Set<string>()
    for (const line of alice.setCookies) {
      const cookie = cookieAttributes(line)
      names.add(cookie.name)
      t.ok('httponly' in cookie, `${cookie.name}: HttpOnly`)
      t.equal(cookie.samesite?.toLowerCase(), 'lax', `${cookie.name}: SameSite=Lax`)
      t.equal(cookie.path, '/', `${cookie.name}: Path=/`)
      t.notOk('domain' in cookie, `${cookie.name}: no Domain (EZproxy rewrites hosts)`)
      t.equal('secure' in cookie, publicUrl !== 'plain', `${cookie.name}: Secure ${publicUrl !== 'plain' ? 'over HTTPS' : 'left off on plain HTTP'}`)
      t.match(cookie.value, /\./, `${cookie.name}: signed`)
    }
    t.same([...names].sort(), ['acn_checkout', 'acn_csrf'], 'the CSRF and checkout cookies were both set')
    if (publicUrl !== 'plain') t.match(handoff.headers['strict-transport-security'], /max-age=31536000/, 'HSTS over HTTPS')
  }
})
