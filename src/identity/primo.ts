// Primo VE sign-in: the "Pay fines" link carries `?jwt=…`, a token Ex Libris signed for the signed-in patron.
// It is trusted only after its signature checks against the institution's published keys (JWKS), its algorithm
// is one Ex Libris uses, its issuer is the institution's and it has not expired; the patron is its `userName`.
// The answer is a value (never an exception) whose refusal reason is fit for the operator log: no token in it.

import { createLocalJWKSet, type CryptoKey, decodeProtectedHeader, errors, jwtVerify, type JSONWebKeySet, type JWTHeaderParameters } from 'jose'

/** Ex Libris signs Primo VE tokens with RS256 (Berkeley) or ES256 (Pitt); everything else, `none` and HS* above all, is refused. */
export const PRIMO_ALGORITHMS = ['RS256', 'ES256'] as const

export type PrimoRefusalReason =
  | 'malformed' // not a compact JWS, or far too long
  | 'algorithm' // alg not RS256/ES256 (`none`, HS256 with some shared secret, …)
  | 'unknown_key' // no key in the JWKS (even after one refetch) matches the token's kid
  | 'signature' // a key matched but the signature does not verify: tampered or forged
  | 'expired'
  | 'not_yet_valid'
  | 'issuer' // signed, but for another institution or region
  | 'institution' // the `institution` claim names another institution than ALMA_INSTITUTION_CODE
  | 'claims' // another registered claim is missing or wrong (no exp, a non-numeric exp, …)
  | 'not_signed_in' // a guest token: Primo says the user is not signed in
  | 'username' // userName missing, empty or not a username we accept
  | 'jwks_unavailable' // the institution's keys could not be fetched: not the patron's fault; try again later

export type PrimoVerification =
  | { ok: true, username: string }
  | { ok: false, reason: PrimoRefusalReason, detail: string }

export type PrimoVerifier = (token: unknown) => Promise<PrimoVerification>

export interface PrimoVerifierOptions {
  /** the institution's JWKS, e.g. https://api-na.hosted.exlibrisgroup.com/auth/01ABC_INST/jwks.json */
  jwksUrl: string
  /** the expected `iss`, e.g. https://api-na.hosted.exlibrisgroup.com/auth/01ABC_INST */
  issuer: string
  /**
   * ALMA_INSTITUTION_CODE: when given, a token whose `institution` claim names another institution is refused.
   * Ex Libris's example token has the issuer "Prima", the same for everyone; this keeps the check per institution.
   */
  institution?: string
  /** abort a JWKS fetch after this long (default 5000) */
  fetchTimeoutMs?: number
  /** the least time between two JWKS fetches, whatever tokens arrive (default 30000) */
  refetchCooldownMs?: number
  /** how long fetched keys are used before they are fetched again (default 4 hours, as Berkeley does) */
  cacheMaxAgeMs?: number
  /** tolerance for clocks that disagree, applied to exp and nbf (default 30 seconds) */
  clockToleranceSeconds?: number
  /** the usernames the service accepts; defaults to `isAcceptableUsername` */
  acceptUsername?: (username: string) => boolean
  /** for tests: the current time */
  now?: () => number
}

/** What the service accepts as a username elsewhere: letters, digits and . _ @ + -, at most 128, not only dots. */
const USERNAME = /^[\p{L}\p{N}._@+-]{1,128}$/u

export function isAcceptableUsername (username: string): boolean {
  return USERNAME.test(username) && !/^\.+$/.test(username)
}

export function defaultPrimoIssuer (institutionCode: string): string {
  return `https://api-na.hosted.exlibrisgroup.com/auth/${institutionCode}`
}

export function defaultPrimoJwksUrl (institutionCode: string): string {
  return `${defaultPrimoIssuer(institutionCode)}/jwks.json`
}

/** Longer than any real Primo token by far; refuse before parsing anything bigger. */
const MAX_TOKEN_LENGTH = 8192
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/
const MAX_JWKS_BYTES = 256 * 1024

class JwksUnavailable extends Error {}

/** Shown in a log line: a claim or header value from an unverified token, made short and printable. */
function quoted (value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value)
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text)
}

/**
 * The institution's keys, fetched at first use and again when they are older than `cacheMaxAgeMs` or a token
 * names a kid they lack (key rotation). Any fetch, whether it worked or not, starts a cooldown during which no
 * other fetch is made: tokens with made-up kids cannot make us hammer Ex Libris, nor can an outage. If a
 * scheduled refresh fails, the keys we have go on being used.
 */
class InstitutionKeys {
  #local: ReturnType<typeof createLocalJWKSet> | undefined
  #fetchedAt = -Infinity
  #attemptedAt = -Infinity
  #pending: Promise<void> | undefined

  constructor (
    private readonly url: URL,
    private readonly timeoutMs: number,
    private readonly cooldownMs: number,
    private readonly maxAgeMs: number,
    private readonly now: () => number
  ) {}

  async #fetch (): Promise<void> {
    this.#attemptedAt = this.now()
    let response: Response
    try {
      response = await fetch(this.url, { redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs), headers: { accept: 'application/json, application/jwk-set+json' } })
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError'
      throw new JwksUnavailable(timedOut ? `no answer within ${this.timeoutMs} ms` : (error as Error).message)
    }
    if (response.status !== 200) {
      await response.body?.cancel()
      throw new JwksUnavailable(`HTTP ${response.status}`)
    }
    const text = await response.text()
    if (text.length > MAX_JWKS_BYTES) throw new JwksUnavailable('the key set is implausibly large')
    try {
      this.#local = createLocalJWKSet(JSON.parse(text) as JSONWebKeySet)
    } catch (error) {
      throw new JwksUnavailable(`not a JSON Web Key Set (${(error as Error).message})`)
    }
    this.#fetchedAt = this.now()
  }

  /** One fetch at a time, and none during the cooldown; resolves true when fresh keys were loaded. */
  async #refresh (): Promise<boolean> {
    if (this.#pending === undefined) {
      if (this.now() - this.#attemptedAt < this.cooldownMs) return false
      this.#pending = this.#fetch().finally(() => { this.#pending = undefined })
    }
    await this.#pending
    return true
  }

  readonly getKey = async (header: JWTHeaderParameters, token: Parameters<ReturnType<typeof createLocalJWKSet>>[1]): Promise<CryptoKey> => {
    if (this.#local === undefined || this.now() - this.#fetchedAt > this.maxAgeMs) {
      try {
        await this.#refresh()
      } catch (error) {
        if (this.#local === undefined) throw error
      }
      if (this.#local === undefined) throw new JwksUnavailable('the last fetch failed; waiting before trying again')
    }
    try {
      return await this.#local(header, token)
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error
      if (!await this.#refresh()) throw error
      return await this.#local(header, token)
    }
  }
}

function refusal (reason: PrimoRefusalReason, detail: string): PrimoVerification {
  return { ok: false, reason, detail }
}

export function createPrimoVerifier (options: PrimoVerifierOptions): PrimoVerifier {
  const now = options.now ?? Date.now
  const keys = new InstitutionKeys(
    new URL(options.jwksUrl),
    options.fetchTimeoutMs ?? 5000,
    options.refetchCooldownMs ?? 30_000,
    options.cacheMaxAgeMs ?? 4 * 3600_000,
    now
  )
  const accept = options.acceptUsername ?? isAcceptableUsername
  const clockTolerance = options.clockToleranceSeconds ?? 30

  return async function verifyPrimoToken (token) {
    if (typeof token !== 'string' || token.length === 0) return refusal('malformed', 'no token')
    if (token.length > MAX_TOKEN_LENGTH) return refusal('malformed', `token of ${token.length} characters`)
    if (!COMPACT_JWS.test(token)) return refusal('malformed', 'not a compact JWS')
    let header: ReturnType<typeof decodeProtectedHeader>
    try {
      header = decodeProtectedHeader(token)
    } catch {
      return refusal('malformed', 'the header is not JSON')
    }
    let payload: Record<string, unknown>
    try {
      ({ payload } = await jwtVerify(token, keys.getKey, {
        algorithms: [...PRIMO_ALGORITHMS],
        issuer: options.issuer,
        requiredClaims: ['exp'],
        clockTolerance,
        currentDate: new Date(now())
      }))
    } catch (error) {
      return explain(error, header, options.issuer)
    }
    // Primo also issues tokens to guests; whether it writes the flag as a boolean or a string, a guest is no patron.
    if (payload.signedIn === false || payload.signedIn === 'false') return refusal('not_signed_in', 'a guest token (signedIn false)')
    if (options.institution !== undefined && options.institution !== '' && payload.institution !== undefined && payload.institution !== options.institution) {
      return refusal('institution', `institution ${quoted(payload.institution)}, expected ${quoted(options.institution)}`)
    }
    const username = payload.userName
    if (typeof username !== 'string' || username.trim() === '') return refusal('username', 'no userName claim')
    if (!accept(username)) return refusal('username', `userName ${quoted(username)} is not a username we accept`)
    return { ok: true, username }
  }
}

function explain (error: unknown, header: { alg?: unknown, kid?: unknown }, issuer: string): PrimoVerification {
  const kid = header.kid === undefined ? 'no kid' : `kid ${quoted(header.kid)}`
  if (error instanceof JwksUnavailable) return refusal('jwks_unavailable', `the institution's keys could not be fetched: ${error.message}`)
  if (error instanceof errors.JOSEAlgNotAllowed) return refusal('algorithm', `alg ${quoted(header.alg)} is not one of ${PRIMO_ALGORITHMS.join(', ')}`)
  if (error instanceof errors.JWKSNoMatchingKey) return refusal('unknown_key', `${kid} is not in the institution's key set`)
  if (error instanceof errors.JWKSMultipleMatchingKeys) return refusal('unknown_key', `${kid} matches several keys in the institution's key set`)
  if (error instanceof errors.JWSSignatureVerificationFailed) return refusal('signature', `the signature does not verify with ${kid}`)
  if (error instanceof errors.JWTExpired) return refusal('expired', `expired at ${new Date(Number(error.payload.exp) * 1000).toISOString()}`)
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') return refusal('issuer', `iss ${quoted(error.payload.iss)}, expected ${quoted(issuer)}`)
    if (error.claim === 'nbf') return refusal('not_yet_valid', `not valid before ${new Date(Number(error.payload.nbf) * 1000).toISOString()}`)
    return refusal('claims', `${error.claim}: ${error.message}`)
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported || error instanceof errors.JWKInvalid) {
    return refusal('malformed', error.message)
  }
  // Anything else is a fault on our side (a bug, a runtime without Web Crypto): say so rather than blame the token.
  return refusal('jwks_unavailable', `verification failed unexpectedly: ${(error as Error)?.message ?? String(error)}`)
}
