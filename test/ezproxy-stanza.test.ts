// Issue 20: the header-mode stanza a library pastes into production sends the username the documented way
// (AddUserHeader before Title, closed by a bare AddUserHeader) and has no line that would pass on a header
// the browser sent. The shipped files are read as EZproxy would read them.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../src/config.ts'

const read = (name: string): string => readFileSync(fileURLToPath(new URL(`../ezproxy-config/${name}`, import.meta.url)), 'utf8')
/** config.txt directives: non-empty lines that are not comments */
const directives = (text: string): string[] => text.split('\n').map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#'))
/** directive-shaped lines inside comments (the optional and fallback lines a librarian may uncomment) */
const commentedDirectives = (text: string): string[] => text.split('\n').map(l => l.trim())
  .filter(l => l.startsWith('#')).map(l => l.replace(/^#\s*/, '')).filter(l => /^(HTTPHeader|AddUserHeader|NeverProxy|Option)\b/.test(l))

t.test('header mode: AddUserHeader before Title, a bare AddUserHeader after the stanza, no -process line for the user header', async t => {
  const text = read('stanza-header-mode.txt')
  const lines = directives(text)
  const userHeader = loadConfig({
    PUBLIC_URL: 'https://fines.example.edu',
    ALMA_API_KEY: 'k',
    CASHNET_CHECKOUT_URL: 'https://train.cashnet.com/X',
    CASHNET_ITEM_CODE: 'X',
    CASHNET_POSTBACK_ALLOW: '192.0.2.1',
    EZPROXY_ALLOW: '192.0.2.2',
    COOKIE_SECRET: 'x'.repeat(32)
  }).ezproxyUserHeader
  const add = lines.findIndex(l => /^AddUserHeader(\s+-base64)?\s+\S+$/i.test(l))
  const title = lines.findIndex(l => /^(T|Title)\s/.test(l))
  const url = lines.findIndex(l => /^(U|URL)\s/.test(l))
  const lastHost = Math.max(...lines.map((l, i) => /^(H|HJ|Host|HostJavaScript|D|DJ|Domain|DomainJavaScript|U|URL)\s/i.test(l) ? i : -1))
  const close = lines.findIndex(l => /^AddUserHeader$/i.test(l))
  t.ok(add >= 0, 'an AddUserHeader line with a header name')
  t.equal(lines[add].split(/\s+/).at(-1)?.toLowerCase(), userHeader, 'naming the default EZPROXY_USER_HEADER')
  t.ok(title > add, 'before the Title line')
  t.ok(url > title, 'the URL line follows Title')
  t.ok(close > lastHost, 'a bare AddUserHeader after the stanza\'s last URL/Host line turns it off')
  for (const line of [...lines, ...commentedDirectives(text)]) {
    t.notOk(/^HTTPHeader\b/i.test(line) && /-process/i.test(line) && new RegExp(userHeader, 'i').test(line), `no -process line for the user header: ${line}`)
    t.notOk(/^HTTPHeader\b/i.test(line) && /-global/i.test(line), `no -global: ${line}`)
    t.notOk(/login:user/i.test(line), `no login:user in an expression evaluated while proxying: ${line}`)
    t.notOk(/^HTTPHeader(\s+-request)?\s+(\*|X-\*)/i.test(line), `no wildcard pass-through: ${line}`)
  }
  t.notOk(lines.some(l => /^HTTPHeader\b/i.test(l) && new RegExp(userHeader, 'i').test(l)), 'no active HTTPHeader line for the user header at all')
  const secret = commentedDirectives(text).find(l => /^HTTPHeader\b.*secret/i.test(l))
  t.match(secret, /^HTTPHeader -request -inject X-EZproxy-Secret "[^"]+"$/, 'the optional secret header is injected, a quoted fixed value')
  const fallback = commentedDirectives(text).find(l => /^HTTPHeader\b/i.test(l) && new RegExp(userHeader, 'i').test(l))
  t.match(fallback, /^HTTPHeader -request -inject X-EZproxy-User session:user$/, 'the commented fallback injects session:user')
  t.ok(lines.includes('NeverProxy cashnet.com'), 'NeverProxy cashnet.com (covers commerce. and train.)')
})

t.test('userobject mode: NeverProxy cashnet.com, RedirectSafe for both hosts, no user header lines', async t => {
  const text = read('stanza-userobject-mode.txt')
  const lines = directives(text)
  t.ok(lines.includes('NeverProxy cashnet.com'))
  t.ok(lines.includes('Option UserObject'))
  t.ok(lines.some(l => /^RedirectSafe ezproxy\.example\.edu$/.test(l)))
  t.notOk(lines.some(l => /^(AddUserHeader|HTTPHeader)\b/i.test(l)), 'no header lines: identity comes from UserObject')
  t.notMatch(text, /not documented|verify on your system whether/i, 'RedirectSafe\'s subdomain matching is stated, not left open')
})
