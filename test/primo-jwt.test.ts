// Primo VE tokens: a token is trusted only when it is signed by a key the institution publishes, with RS256 or
// ES256, by the institution's issuer, and not expired; its userName must be a username we accept. The keys come
// over real HTTP from the JWKS stand-in, which counts fetches: a rotation costs one fetch, made-up kids cost at
// most one per cooldown.

import t, { type Test } from 'tap'
import { SignJWT } from 'jose'
import { createPrimoVerifier, defaultPrimoIssuer, defaultPrimoJwksUrl, type PrimoVerification, type PrimoVerifierOptions } from '../src/identity/primo.ts'
import { PrimoJwksStandIn } from '../src/sandbox/jwks.ts'
import { SANDBOX_COOKIE_SECRET } from '../src/sandbox/stack.ts'

async function standIn (t: Test): Promise<PrimoJwksStandIn> {
  const jwks = new PrimoJwksStandIn('01TEST_INST')
  await jwks.start()
  t.teardown(async () => { await jwks.close() })
  return jwks
}

/** A verifier against the stand-in with a clock the test moves. */
function verifierFor (jwks: PrimoJwksStandIn, options: Partial<PrimoVerifierOptions> = {}): { verify: ReturnType<typeof createPrimoVerifier>, advance: (ms: number) => void } {
  let now = Date.now()
  const verify = createPrimoVerifier({ jwksUrl: jwks.jwksUrl, issuer: jwks.issuer, fetchTimeoutMs: 2000, now: () => now, ...options })
  return { verify, advance: ms => { now += ms } }
}

function b64 (value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

function refusedFor (t: Test, result: PrimoVerification, reason: string, token: string): void {
  t.same({ ok: result.ok, reason: result.ok ? undefined : result.reason }, { ok: false, reason }, `refused: ${reason}`)
  if (!result.ok) {
    t.notMatch(result.detail, token, 'the detail does not carry the token')
    const signature = token.split('.')[2]
    if (signature !== undefined && signature.length > 8) t.notMatch(result.detail, signature, 'nor its signature')
  }
}

t.test('the default URLs are the North American region of the institution', async t => {
  t.equal(defaultPrimoJwksUrl('01ABC_INST'), 'https://api-na.hosted.exlibrisgroup.com/auth/01ABC_INST/jwks.json')
  t.equal(defaultPrimoIssuer('01ABC_INST'), 'https://api-na.hosted.exlibrisgroup.com/auth/01ABC_INST')
})

t.test('a valid token verifies, RS256 and ES256 alike, and the keys are fetched once for both', async t => {
  const jwks = await standIn(t)
  const { verify } = verifierFor(jwks)
  t.same(await verify(await jwks.signPrimoToken({ userName: 'alice' })), { ok: true, username: 'alice' })
  t.same(await verify(await jwks.signPrimoToken({ userName: 'bob@example.edu', alg: 'ES256' })), { ok: true, username: 'bob@example.edu' })
  t.same(await verify(await jwks.signPrimoToken({ userName: 'Åsa.Öberg' })), { ok: true, username: 'Åsa.Öberg' })
  t.equal(jwks.fetches, 1, 'one fetch of the key set')
})

t.test('an expired token is refused; one a few seconds past exp is within the clock tolerance', async t => {
  const jwks = await standIn(t)
  const { verify } = verifierFor(jwks)
  const expired = await jwks.signPrimoToken({ userName: 'alice', expiresIn: -120 })
  const result = await verify(expired)
  refusedFor(t, result, 'expired', expired)
  t.match(result, { detail: /^expired at \d{4}-/ })
  t.same(await verify(await jwks.signPrimoToken({ userName: 'alice', expiresIn: -5 })), { ok: true, username: 'alice' })
  const longAgo = verifierFor(jwks, { clockToleranceSeconds: 0 })
  const justExpired = await jwks.signPrimoToken({ userName: 'alice', expiresIn: -5 })
  refusedFor(t, await longAgo.verify(justExpired), 'expired', justExpired)
})

t.test('a token without an expiry is refused', async t => {
  const jwks = await standIn(t)
  const { verify } = verifierFor(jwks)
  const token = await jwks.signPrimoToken({ userName: 'alice', expiresIn: null })
  refusedFor(t, await verify(token), 'claims', token)
})

t.test('a token from another issuer is refused even though the key is right', async t => {
  const jwks = await standIn(t)
  const { verify } = verifierFor(jwks)
  const token = await jwks.signPrimoToken({ userName: 'alice', issuer: 'https://api-eu.hosted.exlibrisgroup.com/auth/01OTHER_INST' })
  const result = await verify(token)
  refusedFor(t, result, 'issuer', token)
  t.match(result, { detail: /01OTHER_INST.*expected/ }, 'the operator sees which issuer came')
})

t.test('with the institution code given, a token for another institution is refused', async t => {
  const jwks = await standIn(t)
  const { verify } = verifierFor(jwks, { institution: '01TEST_INST' })
  t.same(await verify(await jwks.signPrimoToken({ userName: 'alice' })), { ok: true, username: 'alice' }, 'its own institution')
  t.same(await verify(await jwks.signPrimoToken({ userName: 'alice', claims: { institution: undefined } })), { ok: true, username: 'alice' }, 'no institution claim: the issuer and the keys decide')
  const other = await jwks.signPrimoToken({ userName: 'alice', claims: { institution: '01OTHER_INST' } })
  const result = await verify(other)
  refusedFor(t, result, 'institution', other)
  t.match(result, { detail: /01OTHER_INST.*expected.*01TEST_INST/ })
  const unchecked = verifierFor(jwks)
  t.same(await unchecked.verify(other), { ok: true, username: 'alice' }, 'without the option the claim is not looked at')
})

t.test('a token naming a kid the institution does not publish is refused after one refetch', async t => {
  const jwks = await standIn(t)
  const { verify, advance } = verifierFor(jwks)
  t.ok((await verify(await jwks.signPrimoToken({ userName: 'alice' }))).ok)
  t.equal(jwks.fetches, 1)
  advance(31_000)
  const token = await jwks.signPrimoToken({ userName: 'alice', kid: 'primaPrivateKey-made-up' })
  const result = await verify(token)
  refusedFor(t, result, 'unknown_key', token)
  t.match(result, { detail: /made-up/ })
  t.equal(jwks.fetches, 2, 'exactly one refetch')
})

t.test('alg none is refused without fetching any key', async t => {
  const jwks = await standIn(t)
  const { verify } = verifierFor(jwks)
  const now = Math.floor(Date.now() / 1000)
  const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ userName: 'alice', iss: jwks.issuer, exp: now + 600 })}.`
  refusedFor(t, await verify(token), 'algorithm', token)
  const noneWithSignature = `${b64({ alg: 'none' })}.${b64({ userName: 'alice', iss: jwks.issuer, exp: now + 600 })}.c2lnbmF0dXJl`
  refusedFor(t, await verify(noneWithSignature), 'algorithm', noneWithSignature)
  t.equal(jwks.fetches, 0)
})

t.test('a token signed HS256 with our own cookie secret is refused, even naming a published kid', async t => {
  const jwks = await standIn(t)
  const { verify } = verifierFor(jwks)
  for (const kid of [undefined, jwks.kids[0]]) {
    const token = await new SignJWT({ userName: 'alice' })
      .setProtectedHeader(kid === undefined ? { alg: 'HS256' } : { alg: 'HS256', kid })
      .setIssuer(jwks.issuer).setExpirationTime('10m')
      .sign(new TextEncoder().encode(SANDBOX_COOKIE_SECRET))
    refusedFor(t, await verify(token), 'algorithm', token)
  }
  t.equal(jwks.fetches, 0)
})

t.test('a tampered payload is refused: the signature does not verify', async t => {
  const jwks = await standIn(t)
  const { verify } = verifierFor(jwks)
  for (const alg of ['RS256', 'ES256'] as const) {
    const [header, payload, signature] = (await jwks.signPrimoToken({ userName: 'alice', alg })).split('.')
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
    const tampered = `${header}.${b64({ ...claims, userName: 'bob' })}.${signature}`
    refusedFor(t, await verify(tampered), 'signature', tampered)
    const resigned = `${header}.${payload}.${signature.slice(0, -4)}AAAA`
    refusedFor(t, await verify(resigned), 'signature', resigned)
  }
})

t.test('key rotation: the first token with the new kid costs exactly one refetch, then verifies', async t => {
  const jwks = await standIn(t)
  const { verify, advance } = verifierFor(jwks)
  const before = await jwks.signPrimoToken({ userName: 'alice' })
  t.ok((await verify(before)).ok)
  t.equal(jwks.fetches, 1)
  advance(60_000)
  await jwks.rotate('RS256')
  const after = await jwks.signPrimoToken({ userName: 'alice' })
  t.same(await verify(after), { ok: true, username: 'alice' })
  t.equal(jwks.fetches, 2, 'one refetch for the new kid')
  t.same(await verify(await jwks.signPrimoToken({ userName: 'bob' })), { ok: true, username: 'bob' })
  t.equal(jwks.fetches, 2, 'and none for the next token')
  refusedFor(t, await verify(before), 'unknown_key', before)
  t.equal(jwks.fetches, 2, 'a token with the retired kid, within the cooldown, fetches nothing')
})

t.test('many tokens with made-up kids do not cause a refetch storm', async t => {
  const jwks = await standIn(t)
  const { verify, advance } = verifierFor(jwks)
  t.ok((await verify(await jwks.signPrimoToken({ userName: 'alice' }))).ok)
  advance(31_000)
  const forged = await Promise.all(Array.from({ length: 40 }, async (_, i) => await jwks.signPrimoToken({ userName: 'alice', kid: `forged-${i}` })))
  const results = await Promise.all(forged.map(async token => await verify(token)))
  t.ok(results.every(r => !r.ok && r.reason === 'unknown_key'), 'all refused')
  for (const token of forged) t.match(await verify(token), { ok: false, reason: 'unknown_key' })
  t.equal(jwks.fetches, 2, 'one refetch for 80 unknown kids')
  advance(31_000)
  await Promise.all(forged.map(async token => await verify(token)))
  t.equal(jwks.fetches, 3, 'at most one more per cooldown')
})

t.test('a userName we would not accept as a username is refused', async t => {
  const jwks = await standIn(t)
  const { verify } = verifierFor(jwks)
  const cases: Array<[string | null, string]> = [
    [null, 'missing'], ['', 'empty'], ['   ', 'blank'], ['..', 'only dots'], ['.', 'one dot'], ['ali\u0000ce', 'a NUL'],
    ['alice\n', 'a newline'], ['ali\u001bce', 'an escape'], ['alice smith', 'a space'], ['a'.repeat(129), 'too long'], ['<script>', 'markup']
  ]
  for (const [userName, label] of cases) {
    const token = await jwks.signPrimoToken({ userName })
    const result = await verify(token)
    t.match(result, { ok: false, reason: 'username' }, label)
  }
  const numeric = await jwks.signPrimoToken({ userName: null, claims: { userName: 12345 } })
  t.match(await verify(numeric), { ok: false, reason: 'username' }, 'a number')
  t.same(await verify(await jwks.signPrimoToken({ userName: 'a'.repeat(128) })), { ok: true, username: 'a'.repeat(128) }, '128 characters is fine')
  t.same(await verify(await jwks.signPrimoToken({ userName: '...x' })), { ok: true, username: '...x' }, 'dots with something else is fine')
})

t.test('a guest token (signedIn false) is refused', async t => {
  const jwks = await standIn(t)
  const { verify } = verifierFor(jwks)
  for (const signedIn of [false, 'false']) {
    t.match(await verify(await jwks.signPrimoToken({ userName: 'guest', claims: { signedIn } })), { ok: false, reason: 'not_signed_in' })
  }
})

t.test('malformed tokens are refused before anything is fetched', async t => {
  const jwks = await standIn(t)
  const { verify } = verifierFor(jwks)
  for (const token of [undefined, 42, '', 'abc', 'a.b', 'a.b.c.d', '!!.??.**', `${'a'.repeat(9000)}.b.c`, `${b64('x')}.${b64({})}.`, 'bm90IGpzb24.e30.c2ln']) {
    t.match(await verify(token), { ok: false, reason: 'malformed' }, JSON.stringify(token)?.slice(0, 30))
  }
  t.equal(jwks.fetches, 0)
})

t.test('the key set unavailable: refused as our problem, not hammered, and fine once it is back', async t => {
  const jwks = await standIn(t)
  const { verify, advance } = verifierFor(jwks)
  jwks.failing = true
  const token = await jwks.signPrimoToken({ userName: 'alice' })
  const first = await verify(token)
  refusedFor(t, first, 'jwks_unavailable', token)
  t.match(first, { detail: /HTTP 503/ })
  for (let i = 0; i < 20; i++) t.match(await verify(token), { ok: false, reason: 'jwks_unavailable' })
  t.equal(jwks.fetches, 1, 'one attempt per cooldown, however many patrons arrive')
  jwks.failing = false
  advance(31_000)
  t.same(await verify(token), { ok: true, username: 'alice' })
  t.equal(jwks.fetches, 2)
})

t.test('keys past their age are refreshed; if that fails the known keys go on working', async t => {
  const jwks = await standIn(t)
  const { verify, advance } = verifierFor(jwks, { cacheMaxAgeMs: 60_000 })
  t.ok((await verify(await jwks.signPrimoToken({ userName: 'alice' }))).ok)
  advance(61_000)
  t.ok((await verify(await jwks.signPrimoToken({ userName: 'alice' }))).ok)
  t.equal(jwks.fetches, 2, 'stale keys were fetched again')
  advance(61_000)
  jwks.failing = true
  t.same(await verify(await jwks.signPrimoToken({ userName: 'alice' })), { ok: true, username: 'alice' }, 'the last good keys still verify')
  t.equal(jwks.fetches, 3)
})

t.test('a JWKS address that does not answer in time is reported as unavailable', async t => {
  const { createServer } = await import('node:net')
  const silent = createServer(() => {})
  await new Promise<void>(resolve => { silent.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { silent.close() })
  const port = (silent.address() as { port: number }).port
  const verify = createPrimoVerifier({ jwksUrl: `http://127.0.0.1:${port}/jwks.json`, issuer: 'https://example.test/auth/X', fetchTimeoutMs: 200 })
  const jwks = await standIn(t)
  const result = await verify(await jwks.signPrimoToken({ userName: 'alice' }))
  t.match(result, { ok: false, reason: 'jwks_unavailable', detail: /no answer within 200 ms/ })
})
