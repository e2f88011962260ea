// The Primo VE stand-in: publishes an institution's signing keys (one RSA, one EC) at /auth/<INST>/jwks.json, as
// Ex Libris does, and signs "Pay fines" tokens with them for the demo and the tests. It counts the fetches of its
// key set so tests can see the service's key cache at work, and it can rotate a key or stop answering.

import Fastify, { type FastifyInstance } from 'fastify'
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { randomBytes } from 'node:crypto'
import type { SeedUser } from './seed.ts'
import { xmlEscape as escape } from './xml-escape.ts'

export type PrimoSigningAlgorithm = 'RS256' | 'ES256'

interface SigningKey {
  kid: string
  alg: PrimoSigningAlgorithm
  privateKey: CryptoKey
  publicJwk: JWK
}

export interface PrimoTokenRequest {
  /** the Primo user name; pass '' or omit the claim with `null` to test refusals */
  userName: string | null
  /** seconds until `exp` (negative: already expired); default 600; null: no exp claim */
  expiresIn?: number | null
  /** sign with this algorithm's current key (default RS256) */
  alg?: PrimoSigningAlgorithm
  /** name this kid in the header instead of the signing key's own (for unknown-key tests) */
  kid?: string
  issuer?: string
  /** more or other claims, e.g. { signedIn: false } */
  claims?: Record<string, unknown>
}

async function newKey (alg: PrimoSigningAlgorithm): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const kid = `primaPrivateKey-${alg}-${randomBytes(4).toString('hex')}`
  const publicJwk = { ...await exportJWK(publicKey), kid, alg, use: 'sig' }
  return { kid, alg, privateKey, publicJwk }
}

export class PrimoJwksStandIn {
  readonly institution: string
  readonly #app: FastifyInstance
  #url = ''
  #keys: SigningKey[] = []
  #fetches = 0
  #failing = false
  #target = ''
  #users: SeedUser[] = []

  constructor (institution = '01SANDBOX_INST') {
    this.institution = institution
    this.#app = Fastify({ logger: false, forceCloseConnections: true })
    this.#app.get(`/auth/${institution}/jwks.json`, async (_request, reply) => {
      this.#fetches++
      if (this.#failing) return await reply.code(503).send({ error: 'unavailable' })
      return await reply.header('cache-control', 'max-age=3600').send({ keys: this.#keys.map(k => k.publicJwk) })
    })
    // Primo VE's "My Library Card" for the demo: a "Pay fine" link per seeded patron, freshly signed at each load,
    // pointing at the service root with ?jwt=… as the Payment Link Configuration with "Use jwt Token" makes it.
    this.#app.get('/primo/library-card', async (_request, reply) => {
      const links = await Promise.all(this.#users.map(async u => {
        const token = await this.signPrimoToken({ userName: u.primaryId })
        return `<li><strong>${escape(`${u.firstName} ${u.lastName}`)}</strong> (${escape(u.primaryId)}): <a href="${escape(this.payFineUrl(token))}">Pay fine</a></li>`
      }))
      const forged = await this.signPrimoToken({ userName: this.#users[0]?.primaryId ?? 'alice', expiresIn: -3600 })
      return await reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>My Library Card – Primo VE stand-in</title>
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.5}li{margin:.5rem 0}.note{background:#fff4ce;padding:.5rem 1rem;border-left:4px solid #b58100}</style></head>
<body><main><h1>My Library Card (Primo VE stand-in)</h1>
<p class="note">This is the demo's stand-in for Primo VE. Each "Pay fine" link carries a token signed with the institution's key (${escape(this.institution)}), valid for 10 minutes, as Primo VE adds it when "Use jwt Token" is on.</p>
<ul>${links.join('\n')}</ul>
<h2>To see a refusal</h2>
<p><a href="${escape(this.payFineUrl(forged))}">Pay fine with an expired token</a></p></main></body></html>`)
    })
  }

  /** Where the library card's links go: the service's root (PUBLIC_URL) and the patrons to list. */
  setTarget (serviceUrl: string, users: SeedUser[]): void {
    this.#target = serviceUrl.replace(/\/+$/, '')
    this.#users = users
  }

  /** The "Pay fine" link as Primo VE builds it: the configured URL with jwt=<token> appended. */
  payFineUrl (token: string): string {
    return `${this.#target}/?jwt=${token}`
  }

  /** the library card page (the demo's starting point in primo mode) */
  get libraryCardUrl (): string { return `${this.#url}/primo/library-card` }

  async start (port = 0, host = '127.0.0.1'): Promise<string> {
    if (this.#keys.length === 0) this.#keys = [await newKey('RS256'), await newKey('ES256')]
    this.#url = await this.#app.listen({ port, host })
    return this.#url
  }

  async close (): Promise<void> { await this.#app.close() }

  get url (): string { return this.#url }
  /** what PRIMO_JWKS_URL is set to */
  get jwksUrl (): string { return `${this.#url}/auth/${this.institution}/jwks.json` }
  /** what PRIMO_ISSUER is set to */
  get issuer (): string { return `${this.#url}/auth/${this.institution}` }
  /** how many times the key set was fetched */
  get fetches (): number { return this.#fetches }
  /** the kids published now */
  get kids (): string[] { return this.#keys.map(k => k.kid) }

  /** While true the key set answers 503, as during an outage. */
  get failing (): boolean { return this.#failing }
  set failing (value: boolean) { this.#failing = value }

  /** Replaces the current key for `alg` with a new one (new kid); tokens signed before no longer verify. */
  async rotate (alg: PrimoSigningAlgorithm = 'RS256'): Promise<string> {
    const key = await newKey(alg)
    this.#keys = [...this.#keys.filter(k => k.alg !== alg), key]
    return key.kid
  }

  /** A token as Primo VE puts in the "Pay fines" link's `jwt` parameter. */
  async signPrimoToken (request: PrimoTokenRequest): Promise<string> {
    const alg = request.alg ?? 'RS256'
    const key = this.#keys.find(k => k.alg === alg)
    if (key === undefined) throw new Error(`no ${alg} key; start() the stand-in first`)
    const now = Math.floor(Date.now() / 1000)
    const claims: Record<string, unknown> = {
      institution: this.institution,
      userGroup: '01',
      signedIn: true,
      onCampus: false,
      language: 'en',
      ...(request.userName === null ? {} : { userName: request.userName, user: request.userName, displayName: request.userName }),
      ...request.claims
    }
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg, kid: request.kid ?? key.kid, typ: 'JWT' })
      .setIssuer(request.issuer ?? this.issuer)
      .setIssuedAt(now)
    if (request.expiresIn !== null) jwt.setExpirationTime(now + (request.expiresIn ?? 600))
    return await jwt.sign(key.privateKey)
  }
}
