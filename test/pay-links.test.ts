// Pay-link tokens: a link opens the fines page of the one patron it was issued for, until it expires; any change to
// the token, a token signed with another secret, or a cookie-style signature made with the same secret is refused.

import t from 'tap'
import fc from 'fast-check'
import { createHmac } from 'node:crypto'
import { issuePayLink, MAX_PAY_LINK_TTL_HOURS, verifyPayLink } from '../src/payments/pay-links.ts'

const SECRET = 'pay-link-test-secret-0123456789abcdef0123'
const OTHER_SECRET = 'another-deployment-secret-9876543210fedcba'
const NOW = new Date('2026-03-02T15:04:05.678Z')
const hours = (n: number): number => n * 3600_000

function issue (overrides: Partial<Parameters<typeof issuePayLink>[0]> = {}): ReturnType<typeof issuePayLink> {
  return issuePayLink({ patronId: 'dana', primaryId: '2900012345', issuedBy: 'circdesk', ttlHours: 72, secret: SECRET, now: NOW, ...overrides })
}

t.test('a link verifies for its patron until it expires, and says who and which link', async t => {
  const link = issue()
  t.equal(link.expiresAt.toISOString(), '2026-03-05T15:04:05.000Z', '72 hours, to the second')
  t.equal(link.issuedAt.toISOString(), '2026-03-02T15:04:05.000Z')
  t.same({ patronId: link.patronId, primaryId: link.primaryId, issuedBy: link.issuedBy }, { patronId: 'dana', primaryId: '2900012345', issuedBy: 'circdesk' }, 'the record for the ledger')
  t.match(link.token, /^pl1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/, 'URL-safe: base64url throughout')
  const verified = verifyPayLink(link.token, SECRET, new Date(NOW.getTime() + hours(71)))
  t.same(verified, { ok: true, linkId: link.linkId, patronId: 'dana', primaryId: '2900012345', issuedAt: link.issuedAt, expiresAt: link.expiresAt })
  t.same(verifyPayLink(link.token, SECRET, new Date(link.expiresAt.getTime() - 1)), { ok: true, linkId: link.linkId, patronId: 'dana', primaryId: '2900012345', issuedAt: link.issuedAt, expiresAt: link.expiresAt }, 'the last millisecond')
})

t.test('an expired link is refused, with its id and when it expired so the page and the audit can say so', async t => {
  const link = issue({ ttlHours: 1 })
  t.same(verifyPayLink(link.token, SECRET, link.expiresAt), { ok: false, reason: 'expired', linkId: link.linkId, expiresAt: link.expiresAt }, 'at the expiry instant')
  t.match(verifyPayLink(link.token, SECRET, new Date(NOW.getTime() + hours(24 * 365))), { ok: false, reason: 'expired' })
})

t.test('the link id is 128 random bits and differs every time', async t => {
  const ids = Array.from({ length: 2000 }, () => issue().linkId)
  t.same(ids.filter(id => Buffer.from(id, 'base64url').length !== 16), [], 'each is 16 bytes')
  t.equal(new Set(ids).size, 2000, 'no repeats')
  const tokens = new Set([issue().token, issue().token])
  t.equal(tokens.size, 2, 'two links for the same patron at the same second differ')
})

t.test('the staff username is not in the link the patron receives', async t => {
  const link = issue({ issuedBy: 'circ-desk-supervisor' })
  const payload = Buffer.from(link.token.split('.')[1], 'base64url').toString()
  t.notMatch(payload, 'circ-desk-supervisor')
  t.notMatch(link.token, 'circ-desk-supervisor')
})

t.test('a tampered link is refused: another patron, a later expiry, a changed signature', async t => {
  const link = issue()
  const [prefix, payload, mac] = link.token.split('.')
  const body = JSON.parse(Buffer.from(payload, 'base64url').toString())
  const reencode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  t.same(verifyPayLink(`${prefix}.${reencode({ ...body, p: 'erin' })}.${mac}`, SECRET, NOW), { ok: false, reason: 'tampered' }, 'another patron')
  t.same(verifyPayLink(`${prefix}.${reencode({ ...body, e: body.e + 86400 * 365 })}.${mac}`, SECRET, NOW), { ok: false, reason: 'tampered' }, 'a later expiry')
  const flipped = mac[0] === 'A' ? `B${mac.slice(1)}` : `A${mac.slice(1)}`
  t.same(verifyPayLink(`${prefix}.${payload}.${flipped}`, SECRET, NOW), { ok: false, reason: 'tampered' }, 'a changed signature')
  t.same(verifyPayLink(link.token, OTHER_SECRET, NOW), { ok: false, reason: 'tampered' }, 'another deployment\'s secret')
})

t.test('a signature made with the raw secret (as a cookie might be) does not pass for a pay link', async t => {
  const link = issue()
  const [prefix, payload] = link.token.split('.')
  for (const data of [payload, `${prefix}.${payload}`]) {
    const rawMac = createHmac('sha256', SECRET).update(data).digest('base64url')
    t.same(verifyPayLink(`${prefix}.${payload}.${rawMac}`, SECRET, NOW), { ok: false, reason: 'tampered' })
  }
})

t.test('any single-character change to a link is refused', async t => {
  const link = issue()
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.'
  fc.assert(fc.property(fc.nat(link.token.length - 1), fc.constantFrom(...alphabet), (at, c) => {
    fc.pre(link.token[at] !== c)
    const changed = link.token.slice(0, at) + c + link.token.slice(at + 1)
    const result = verifyPayLink(changed, SECRET, NOW)
    // A change in the last character's unused low bits can decode to the same bytes; the MAC is compared as text, so even that is refused.
    return !result.ok && (result.reason === 'tampered' || result.reason === 'malformed')
  }), { numRuns: 500 })
})

t.test('malformed links are refused as malformed', async t => {
  const link = issue()
  const [, payload, mac] = link.token.split('.')
  const cases: unknown[] = [
    undefined, null, 42, '', 'pl1', 'pl1..', `pl2.${payload}.${mac}`, `${payload}.${mac}`, `pl1.${payload}`, `pl1.${payload}.${mac}.x`,
    `pl1.${payload}.${mac}=`, `pl1.${payload}.${mac.slice(1)}`, `pl1.${'a'.repeat(5000)}.${mac}`, ` ${link.token}`, `${link.token}\n`, `pl1.${payload}/.${mac}`
  ]
  for (const token of cases) t.same(verifyPayLink(token, SECRET, NOW), { ok: false, reason: 'malformed' }, JSON.stringify(token)?.slice(0, 40))
})

t.test('a payload we signed but cannot read is malformed, not trusted', async t => {
  const key = createHmac('sha256', SECRET).update('alma-cashnet pay-link key v1').digest()
  const signed = (body: unknown): string => {
    const payload = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)).toString('base64url')
    return `pl1.${payload}.${createHmac('sha256', key).update(`pl1.${payload}`).digest('base64url')}`
  }
  const good = { l: 'AAAAAAAAAAAAAAAAAAAAAA', p: 'dana', a: '29', i: 1_700_000_000, e: 1_900_000_000 }
  t.same(verifyPayLink(signed(good), SECRET, NOW), { ok: true, linkId: good.l, patronId: 'dana', primaryId: '29', issuedAt: new Date(good.i * 1000), expiresAt: new Date(good.e * 1000) }, 'the control case verifies')
  for (const body of ['not json', [], null, { ...good, l: 'short' }, { ...good, p: '' }, { ...good, p: 7 }, { ...good, a: undefined }, { ...good, e: '1900000000' }, { ...good, e: good.i }, { ...good, i: 1.5 }]) {
    t.same(verifyPayLink(signed(body), SECRET, NOW), { ok: false, reason: 'malformed' }, JSON.stringify(body))
  }
})

t.test('issuing refuses nonsense: bad lifetimes, empty names, a short secret', async t => {
  for (const ttlHours of [0, -1, 1.5, Number.NaN, MAX_PAY_LINK_TTL_HOURS + 1]) t.throws(() => issue({ ttlHours }), RangeError, `ttlHours ${ttlHours}`)
  t.ok(issue({ ttlHours: MAX_PAY_LINK_TTL_HOURS }).token)
  for (const field of ['patronId', 'primaryId', 'issuedBy'] as const) {
    t.throws(() => issue({ [field]: '' }), RangeError, `empty ${field}`)
    t.throws(() => issue({ [field]: 'x'.repeat(256) }), RangeError, `long ${field}`)
  }
  t.throws(() => issue({ secret: 'short' }), RangeError)
  t.throws(() => verifyPayLink(issue().token, 'short', NOW), RangeError, 'a misconfigured secret is a fault, not a refusal')
})
