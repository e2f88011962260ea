// The trust boundaries, read off each route's `access`: patron routes only from EZproxy (or, in userobject
// mode, with our own session), admin routes from EZproxy and ADMIN_USERS, the postback only from CashNet's
// addresses, health and diagnostics from anyone. A route that does not say is patron-only: access fails
// closed. The peer is the TCP peer unless TRUST_PROXY names a front proxy, in which case Fastify reads
// X-Forwarded-For from that proxy only.
//
// Who a request is comes from one pure function, resolveIdentity, which /ezproxy-check uses as well, so the
// diagnostic page can never believe a username the patron pages would refuse (or the other way round). Its
// input is read off the request by identityInput, which awaits the session lookup in the ledger first (sessions
// are shared by every process and instance: src/web/sessions.ts).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import '@fastify/cookie'
import '@fastify/csrf-protection'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../../config.ts'
import { loggablePath } from '../../log.ts'
import { madeWithPayLink, type Payer } from '../../payments/checkout.ts'
import { pathInCampus, routeInCampus } from '../campus-path.ts'
import { type SessionLookup, SESSION_ID, SessionStore } from '../sessions.ts'
import { allowList, type PeerCheck } from '../trust.ts'
import { messagePage } from '../views/message.ts'
import { createPrimoVerifier } from '../../identity/primo.ts'
import { openFromPrimoPage, type PrimoSignIn, primoSignIn } from '../primo-sign-in.ts'

/** metrics: only peers in METRICS_ALLOW (Prometheus), nobody when it is empty */
export type Access = 'patron' | 'admin' | 'cashnet' | 'public' | 'metrics'

/** What a route without `config.access` gets: patron-only. Never 'public' by omission. */
export const DEFAULT_ACCESS: Access = 'patron'

export interface Patron {
  username: string
  isAdmin: boolean
  /** userobject and primo modes, and pay links: the session this request was made in */
  sessionId?: string
  /** the pay link whose session this is: this patron's own pages only, never /admin */
  payLink?: string
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access
    /** relative path from the route to the service root, for pages rendered by hooks */
    root?: string
  }
  interface FastifyRequest {
    patron: Patron | null
  }
  interface FastifyInstance {
    sessions: SessionStore
    /** opens one of our sessions for a username in this browser (Primo sign-in, pay links) and sets its cookie */
    startSession: (request: FastifyRequest, reply: FastifyReply, username: string, options?: { payLink?: string, notAfter?: number }) => Promise<void>
    /** every route registered, with the access rule it is served under ("GET /admin" → admin) */
    routeAccess: Map<string, Access>
    /**
     * For a request served to a pay-link session: whether staff have revoked its link since the request began (it
     * looks again now); false for any other request. A use case that hands the patron on (a checkout) asks last.
     */
    payLinkRevokedSince: (request: FastifyRequest) => Promise<boolean>
    /** The calm 403 for a revoked pay link's session (access.pay_link_revoked), as every request of it gets. */
    refusePayLinkRevoked: (request: FastifyRequest, reply: FastifyReply, reason: string) => FastifyReply
  }
}

/** The patron as the payment rules know them: a pay-link session's username is an Alma primary id. */
export function payerOf (patron: Patron | null): Payer {
  if (patron === null) throw new Error('no patron on a patron route')
  return { username: patron.username, byPrimaryId: patron.payLink !== undefined }
}

/** Where the browser of this patron reaches the service: PAY_LINK_URL for a pay-link session (its cookie lives there), else PUBLIC_URL. */
export function baseUrlFor (patron: Patron | null, config: Pick<Config, 'publicUrl' | 'payLinkUrl'>): string {
  return patron?.payLink !== undefined ? config.payLinkUrl : config.publicUrl
}

export const SESSION_COOKIE = 'acn_session'
/** What the service accepts as a username, from the EZproxy header, a UserObject uid or a session. */
export const USERNAME = /^[\p{L}\p{N}._@+-]{1,128}$/u

/**
 * A username the service will use: the USERNAME characters, and not made only of dots ('.', '..'), which
 * would reach Alma as path segments (/users/../fees).
 */
export function usableUsername (value: string): boolean {
  return USERNAME.test(value) && !/^\.+$/.test(value)
}

/** Equal-length digests compared in constant time: neither the value nor its length leaks through timing. */
export function sameSecret (given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const UTF8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The username carried by one user-header value, in the configured encoding (EZPROXY_USER_HEADER_ENCODING):
 * `plain` as sent (trimmed), `base64` as `AddUserHeader -base64` sends it (standard alphabet, padded, UTF-8).
 * Null when the value does not decode; the username rules are applied by the caller.
 */
export function decodeUserHeader (value: string, encoding: 'plain' | 'base64'): string | null {
  const trimmed = value.trim()
  if (encoding === 'plain') return trimmed
  if (trimmed === '' || !BASE64.test(trimmed)) return null
  const bytes = Buffer.from(trimmed, 'base64')
  if (bytes.toString('base64') !== trimmed) return null
  try {
    return UTF8.decode(bytes).trim()
  } catch {
    return null
  }
}

/** Everything resolveIdentity looks at, read off a request (see identityInput). */
export interface IdentityInput {
  /** the peer is in EZPROXY_ALLOW */
  peerTrusted: boolean
  /** every value the user header arrived with (a header sent twice arrives as two values) */
  userHeader: readonly string[]
  /** every value the secret header arrived with (empty when none is configured) */
  secretHeader: readonly string[]
  /** userobject mode: the session cookie */
  session: { cookie: 'none' } | { cookie: 'invalid' } | { cookie: 'valid', id: string, lookup: SessionLookup }
}

export type IdentityRefusal =
  | 'untrusted_peer' | 'bad_secret' | 'no_user' | 'repeated_user' | 'undecodable_user' | 'bad_username'
  | 'no_session' | 'bad_session' | 'unknown_session' | 'session_expired' | 'session_idle' | 'pay_link_ended' | 'pay_link_revoked'

export type Identity =
  | { ok: true, username: string, sessionId?: string, payLink?: string }
  | { ok: false, status: 401 | 403, refusal: IdentityRefusal, reason: string }

/**
 * Who a request is, by SPEC section 3's rules; the same answer for the patron pages and /ezproxy-check.
 * A session a pay link opened (section 14) is its own authentication in every mode: it holds one patron, and
 * ends with the link. Otherwise header mode believes EZproxy's header, userobject and primo modes our session.
 */
export function resolveIdentity (input: IdentityInput, config: Pick<Config, 'authMode' | 'ezproxySecretHeader' | 'ezproxySecret' | 'ezproxyUserHeaderEncoding'>): Identity {
  const { session } = input
  if (session.cookie === 'valid' && session.lookup.kind !== 'unknown' && session.lookup.session.payLink !== undefined) {
    const { kind, session: state } = session.lookup
    if (kind === 'revoked') return { ok: false, status: 403, refusal: 'pay_link_revoked', reason: `staff revoked the pay link ${state.payLink ?? ''} that opened this session` }
    if (kind !== 'live') return { ok: false, status: 401, refusal: 'pay_link_ended', reason: `the pay-link session ${kind === 'idle' ? 'was idle for SESSION_IDLE_MINUTES' : 'reached its end (SESSION_TTL_MINUTES or the link\'s expiry)'}` }
    if (!usableUsername(state.username)) return { ok: false, status: 401, refusal: 'bad_username', reason: 'the session holds an unusable username' }
    return { ok: true, username: state.username, sessionId: session.id, payLink: state.payLink }
  }
  if (config.authMode !== 'header') {
    if (session.cookie === 'none') return { ok: false, status: 401, refusal: 'no_session', reason: 'no session cookie' }
    if (session.cookie === 'invalid') return { ok: false, status: 401, refusal: 'bad_session', reason: 'session cookie invalid or tampered with' }
    // a session opened under another AUTH_MODE (the setting changed since) is not one of this mode's
    const lookup = session.lookup.kind !== 'unknown' && session.lookup.session.kind !== config.authMode ? { kind: 'unknown' as const } : session.lookup
    switch (lookup.kind) {
      case 'unknown':
      case 'revoked': return { ok: false, status: 401, refusal: 'unknown_session', reason: 'no such session (signed out, ended and removed, or never issued here)' }
      case 'expired': return { ok: false, status: 401, refusal: 'session_expired', reason: 'the session reached SESSION_TTL_MINUTES' }
      case 'idle': return { ok: false, status: 401, refusal: 'session_idle', reason: 'the session was idle for SESSION_IDLE_MINUTES' }
      case 'live': break
    }
    if (!usableUsername(lookup.session.username)) return { ok: false, status: 401, refusal: 'bad_username', reason: 'the session holds an unusable username' }
    return { ok: true, username: lookup.session.username, sessionId: session.id }
  }

  if (!input.peerTrusted) return { ok: false, status: 403, refusal: 'untrusted_peer', reason: 'peer not in EZPROXY_ALLOW' }
  if (config.ezproxySecretHeader !== '') {
    if (input.secretHeader.length !== 1 || !sameSecret(input.secretHeader[0], config.ezproxySecret)) {
      return { ok: false, status: 403, refusal: 'bad_secret', reason: 'the secret header is missing, repeated or wrong' }
    }
  }
  if (input.userHeader.length === 0) return { ok: false, status: 401, refusal: 'no_user', reason: 'no user header' }
  if (input.userHeader.length > 1) {
    return { ok: false, status: 401, refusal: 'repeated_user', reason: `the user header arrived ${input.userHeader.length} times: EZproxy may be passing on a header the browser sent (the stanza must use AddUserHeader, with no -process line for this header)` }
  }
  const username = decodeUserHeader(input.userHeader[0], config.ezproxyUserHeaderEncoding)
  if (username === null) {
    return { ok: false, status: 401, refusal: 'undecodable_user', reason: 'the user header is not valid base64 of UTF-8 text (EZPROXY_USER_HEADER_ENCODING=base64: does the stanza say AddUserHeader -base64?)' }
  }
  if (username === '') return { ok: false, status: 401, refusal: 'no_user', reason: 'empty user header' }
  if (!usableUsername(username)) return { ok: false, status: 401, refusal: 'bad_username', reason: 'the user header is not a usable username' }
  return { ok: true, username }
}

/** The values a header arrived with, one per occurrence. */
export function headerValues (request: FastifyRequest, name: string): string[] {
  const distinct = request.raw.headersDistinct?.[name]
  if (distinct !== undefined) return distinct
  const value = request.headers[name]
  return value === undefined ? [] : Array.isArray(value) ? value : [value]
}

/** The session cookie's id, if it carries a valid signature and the shape of an id. */
export function readSessionCookie (request: FastifyRequest): { cookie: 'none' } | { cookie: 'invalid' } | { cookie: 'valid', id: string } {
  const raw = request.cookies[SESSION_COOKIE]
  if (raw === undefined || raw === '') return { cookie: 'none' }
  const unsigned = request.unsignCookie(raw)
  if (unsigned.valid !== true || unsigned.value === null || !SESSION_ID.test(unsigned.value)) return { cookie: 'invalid' }
  return { cookie: 'valid', id: unsigned.value }
}

/**
 * resolveIdentity's input for a request; the session cookie's session is looked up in the ledger (and, when
 * live, marked as used: the idle timeout slides).
 */
export async function identityInput (request: FastifyRequest, config: Config, checks: { fromEzproxy: PeerCheck, sessions: SessionStore }): Promise<IdentityInput> {
  // header mode has sessions only for pay links
  const cookie = config.authMode !== 'header' || config.payLinks ? readSessionCookie(request) : { cookie: 'none' as const }
  return {
    peerTrusted: checks.fromEzproxy(request.ip),
    userHeader: headerValues(request, config.ezproxyUserHeader),
    secretHeader: config.ezproxySecretHeader === '' ? [] : headerValues(request, config.ezproxySecretHeader),
    session: cookie.cookie === 'valid' ? { ...cookie, lookup: await checks.sessions.lookup(cookie.id) } : cookie
  }
}

/**
 * What a CSRF token is bound to: the username, and in userobject mode the session too. A token issued to one
 * patron (or one sign-in) is refused for another, even in the same browser with the same CSRF cookie.
 */
export function csrfUserInfo (request: FastifyRequest): string {
  const patron = request.patron
  if (patron === null) return ''
  return `${patron.username}\u0000${patron.sessionId ?? ''}`
}

/**
 * The path of the service's cookies: '/' for the one campus of an environment configuration; a campus of a system
 * deployment (SPEC 12) keeps its cookies to its own prefix as the browser sees it (PUBLIC_URL's path), so a
 * sign-in, checkout or CSRF cookie of one campus is never sent to another.
 */
export function cookiePath (config: Pick<Config, 'publicUrl' | 'campus'>): string {
  if (config.campus === undefined) return '/'
  return `${new URL(config.publicUrl).pathname.replace(/\/+$/, '')}/`
}

/**
 * The path of the cookies of a pay-link session (its session, CSRF and checkout cookies): the browser reaches it at
 * PAY_LINK_URL, so PAY_LINK_URL's path when it is set apart from PUBLIC_URL; else the service's cookiePath.
 */
export function payLinkCookiePath (config: Pick<Config, 'publicUrl' | 'payLinkUrl' | 'campus'>): string {
  if (config.payLinkUrl === config.publicUrl) return cookiePath(config)
  return `${new URL(config.payLinkUrl).pathname.replace(/\/+$/, '')}/`
}

/** The path of the cookies set for this patron: a pay-link session's own, or the service's. */
export function cookiePathFor (patron: Patron | null, config: Pick<Config, 'publicUrl' | 'payLinkUrl' | 'campus'>): string {
  return patron?.payLink !== undefined ? payLinkCookiePath(config) : cookiePath(config)
}

/** Every path the service sets a cookie on: a cookie is cleared on each, as the one set is on one of them. */
export function cookiePaths (config: Pick<Config, 'publicUrl' | 'payLinkUrl' | 'campus'>): string[] {
  return [...new Set([cookiePath(config), payLinkCookiePath(config)])]
}

export const SESSION_COOKIE_OPTIONS = (config: Pick<Config, 'secureCookies' | 'publicUrl' | 'campus'>, path = cookiePath(config)): { signed: true, httpOnly: true, secure: boolean, sameSite: 'lax', path: string } =>
  // No maxAge and no expires: the cookie dies with the browser. The session's real limits are kept server side.
  ({ signed: true, httpOnly: true, secure: config.secureCookies, sameSite: 'lax', path })

/**
 * Userobject mode: a nonce in a short-lived signed cookie and in the return URL given to EZproxy, so that
 * /auth/ezproxy only accepts a token from a sign-in this browser started (no signing a patron in as someone
 * else with a link). An existing nonce is reused (its cookie renewed), so two tabs signing in at once both succeed.
 */
export const SIGN_IN_STATE_COOKIE = 'acn_signin'

export function signInState (request: FastifyRequest): string | null {
  const raw = request.cookies[SIGN_IN_STATE_COOKIE]
  const unsigned = raw === undefined ? null : request.unsignCookie(raw)
  return unsigned?.valid === true && unsigned.value !== null && /^[A-Za-z0-9_-]{22}$/.test(unsigned.value) ? unsigned.value : null
}

export function sameSignInState (given: unknown, expected: string | null): boolean {
  return typeof given === 'string' && expected !== null && sameSecret(given, expected)
}

/** What a patron of a pay link is told when their session ended: they have no sign-in, only the e-mailed link. */
const PAY_LINK_ENDED = {
  heading: 'Your session has ended',
  message: 'For your security, your session ended. Open the payment link in the library’s e-mail again to continue.'
}

/** ... and when they open their receipt's link without that session (it ended, or another browser). */
const PAY_LINK_RECEIPT = {
  heading: 'Please open your payment link again',
  message: 'For your security, a receipt opens only after you open the payment link the library e-mailed you. Open that link again, then this receipt link, or find the receipt under “Your payment history and receipts”. If the link has expired, ask the library to send you a new one.'
}

const EVENT: Record<IdentityRefusal, { event: string }> = {
  untrusted_peer: { event: 'access.untrusted_peer' },
  bad_secret: { event: 'access.bad_secret' },
  no_user: { event: 'access.no_user' },
  repeated_user: { event: 'access.user_header_repeated' },
  undecodable_user: { event: 'access.no_user' },
  bad_username: { event: 'access.no_user' },
  no_session: { event: 'access.no_session' },
  bad_session: { event: 'access.bad_session' },
  unknown_session: { event: 'access.no_session' },
  session_expired: { event: 'access.no_session' },
  session_idle: { event: 'access.session_idle' },
  pay_link_ended: { event: 'access.pay_link_ended' },
  pay_link_revoked: { event: 'access.pay_link_revoked' }
}

export default fp(async function identity (fastify, options: { config: Config, now?: () => number }) {
  const { config } = options
  const fromEzproxy = allowList(config.ezproxyAllow)
  const fromCashnet = allowList(config.cashnetPostbackAllow)
  const fromMetrics = allowList(config.metricsAllow)
  // a system deployment's campus is served under /{campus} (src/app.ts); '' for the one campus at /
  const campusPrefix = fastify.prefix
  const sessions = new SessionStore({ ledger: fastify.ledger, ttlMs: config.sessionTtlMinutes * 60_000, idleMs: config.sessionIdleMinutes * 60_000, now: options.now })
  fastify.decorate('sessions', sessions)
  fastify.decorateRequest('patron', null)
  // The rule each route is served under, as the onRequest hook below will apply it; logged at start-up and
  // checked against an explicit table by test/security/routes.test.ts.
  // (a system deployment's process part keeps one table for every campus, with full paths: see plugins/process.ts)
  if (!fastify.hasDecorator('routeAccess')) {
    const routeAccess = new Map<string, Access>()
    fastify.decorate('routeAccess', routeAccess)
    fastify.addHook('onRoute', (route) => {
      const access = (route.config as { access?: Access } | undefined)?.access ?? DEFAULT_ACCESS
      for (const method of Array.isArray(route.method) ? route.method : [route.method]) routeAccess.set(`${method} ${route.url}`, access)
    })
  }
  const routeAccess = fastify.routeAccess
  fastify.addHook('onReady', async () => {
    fastify.log.debug({ event: 'access.routes', routes: Object.fromEntries(routeAccess) }, `access rules for ${routeAccess.size} routes`)
  })

  const refuse = (request: FastifyRequest, reply: FastifyReply, status: 401 | 403, heading: string, message: string, fields: { event: string, reason: string }, tone: 'warn' | 'bad' = 'bad'): FastifyReply => {
    request.log.warn({ ...fields, peer: request.ip, path: request.routeOptions.url }, `${status} ${request.method} ${request.routeOptions.url ?? loggablePath(request.url)} from ${request.ip}: ${heading} (${fields.reason})`)
    return reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store')
      .send(messagePage(config, { title: heading, heading, message, root: request.routeOptions.config.root, tone }))
  }

  /** Userobject mode without a usable session: a page load goes to EZproxy for a token, anything else is refused. */
  const signInAgain = async (request: FastifyRequest, reply: FastifyReply, identity: { refusal: IdentityRefusal, reason: string }): Promise<FastifyReply> => {
    if (identity.refusal !== 'no_session') request.log.warn({ event: EVENT[identity.refusal].event, reason: identity.reason, peer: request.ip }, `session refused: ${identity.reason}`)
    if (identity.refusal !== 'no_session') clearSessionCookie(reply)
    // an idle or expired session is gone for good (moving the clock back, or a late request, cannot revive it)
    const cookie = readSessionCookie(request)
    if (cookie.cookie === 'valid') await sessions.end(cookie.id)
    if (request.method === 'GET' || request.method === 'HEAD') {
      // `next` is a path under PUBLIC_URL, which is the campus's own root: without the campus's prefix
      // (/{campus}/history would come back as /{campus}/{campus}/history)
      const url = pathInCampus(request.url, campusPrefix)
      const next = url.startsWith('/') && !url.startsWith('//') ? url : '/'
      const state = signInState(request) ?? randomBytes(16).toString('base64url')
      reply.setCookie(SIGN_IN_STATE_COOKIE, state, { signed: true, httpOnly: true, secure: config.secureCookies, sameSite: 'lax', path: cookiePath(config), maxAge: 15 * 60 })
      const returnUrl = `${config.publicUrl}/auth/ezproxy?next=${encodeURIComponent(next)}&state=${state}`
      const target = `${config.ezproxyUrl}/login?url=${config.ezproxyUrl}/userObject?service=getToken&returnURL=${encodeURIComponent(returnUrl)}`
      return reply.redirect(target, 302)
    }
    if (routeInCampus(request, campusPrefix) === '/cashnet/return') {
      // CashNet's "redirect using HTTP post" is cross-site: SameSite=Lax keeps our cookie off it. Bounce to
      // GET, where the cookie comes along; the receipt then shows the patron's latest checkout.
      return reply.redirect('return', 303)
    }
    return refuse(request, reply, 401, 'Please sign in', 'Your session has ended. Open the library’s “pay fines” link again.', { event: 'access.no_session', reason: identity.reason })
  }

  /** Clears the session cookie on every path it may have been set on (a pay-link session's is PAY_LINK_URL's). */
  const clearSessionCookie = (reply: FastifyReply): void => {
    for (const path of cookiePaths(config)) reply.clearCookie(SESSION_COOKIE, { path })
  }

  /** Opens a session for a username (Primo, a pay link): a session this browser already had ends first. */
  const startSession = async (request: FastifyRequest, reply: FastifyReply, username: string, options: { payLink?: string, notAfter?: number } = {}): Promise<void> => {
    const previous = readSessionCookie(request)
    if (previous.cookie === 'valid') await sessions.end(previous.id)
    const session = await sessions.start(username, options.payLink !== undefined ? 'pay-link' : config.authMode === 'primo' ? 'primo' : 'userobject', options)
    // a pay link's session lives where the link is opened: PAY_LINK_URL, whose path may not be PUBLIC_URL's
    reply.setCookie(SESSION_COOKIE, session.id, SESSION_COOKIE_OPTIONS(config, options.payLink !== undefined ? payLinkCookiePath(config) : cookiePath(config)))
  }
  fastify.decorate('startSession', startSession)

  const primo: PrimoSignIn | null = config.authMode !== 'primo'
    ? null
    : { verify: createPrimoVerifier({ jwksUrl: config.primoJwksUrl, issuer: config.primoIssuer, institution: config.almaInstitutionCode }), sessions, startSession }

  const refusePayLinkRevoked = (request: FastifyRequest, reply: FastifyReply, reason: string): FastifyReply =>
    refuse(request, reply, 403, 'This payment link was withdrawn', `The library withdrew the payment link you used, so it and the pages it opened no longer work. If you still need to pay, please ask the library (${config.libraryName}) for a new link.`, { event: EVENT.pay_link_revoked.event, reason }, 'warn')
  fastify.decorate('refusePayLinkRevoked', refusePayLinkRevoked)
  fastify.decorate('payLinkRevokedSince', async (request: FastifyRequest): Promise<boolean> => {
    const sessionId = request.patron?.sessionId
    if (request.patron?.payLink === undefined || sessionId === undefined) return false
    return (await sessions.lookup(sessionId)).kind === 'revoked'
  })

  /** A pay link's session that ended: the way back is the link in the e-mail, not a sign-in. */
  const payLinkEnded = async (request: FastifyRequest, reply: FastifyReply, reason: string, page: { heading: string, message: string } = PAY_LINK_ENDED): Promise<FastifyReply> => {
    const cookie = readSessionCookie(request)
    if (cookie.cookie === 'valid') await sessions.end(cookie.id)
    clearSessionCookie(reply)
    return refuse(request, reply, 401, page.heading, page.message, { event: 'access.pay_link_ended', reason }, 'warn')
  }

  /**
   * A receipt page opened (GET) for a checkout made with a pay link, by a request with no identity: the receipt link
   * of the patron's e-mail, after their pay-link session ended or in another browser. Only a pay-link session owns
   * that receipt, so neither EZproxy nor a sign-in can show it: the way back is the pay link. The reference is only
   * looked up, never shown; an unknown one, or another patron's, keeps the mode's own refusal.
   */
  const opensPayLinkReceipt = async (request: FastifyRequest): Promise<boolean> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false
    const route = routeInCampus(request, campusPrefix)
    if (route !== '/cashnet/return' && route !== '/paypal/return') return false
    const ref = (request.query as Record<string, unknown>).ref
    if (typeof ref !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(ref)) return false
    const checkout = await fastify.ledger.getCheckout(ref)
    return checkout !== undefined && madeWithPayLink(checkout)
  }

  fastify.addHook('onRequest', async (request, reply) => {
    // Unknown paths get the generic 404 page from anyone: it shows nothing.
    if (request.is404) return
    // Primo VE's "Pay fines" link: the service root with ?jwt=… signs the patron in (src/web/primo-sign-in.ts)
    if (primo !== null && routeInCampus(request, campusPrefix) === '/' && (request.method === 'GET' || request.method === 'HEAD') &&
        Object.hasOwn(request.query as object, 'jwt')) {
      return await primoSignIn(request, reply, config, primo)
    }
    // Fail closed: a route that does not declare its access is patron-only.
    const access = request.routeOptions.config?.access ?? DEFAULT_ACCESS
    if (access === 'public') return
    if (access === 'metrics') {
      if (fromMetrics(request.ip)) return
      request.log.warn({ event: 'access.metrics_refused', peer: request.ip, reason: 'peer not in METRICS_ALLOW' }, `/metrics refused: ${request.ip} is not in METRICS_ALLOW`)
      return reply.code(403).type('text/plain; charset=utf-8').send('forbidden\n')
    }
    if (access === 'cashnet') {
      if (!fromCashnet(request.ip)) {
        request.log.warn({ event: 'postback.rejected', peer: request.ip, reason: 'peer not in CASHNET_POSTBACK_ALLOW' }, `postback refused: ${request.ip} is not in CASHNET_POSTBACK_ALLOW`)
        return reply.code(403).type('text/plain; charset=utf-8').send('forbidden\n')
      }
      return
    }
    const identity = resolveIdentity(await identityInput(request, config, { fromEzproxy, sessions }), config)
    if (!identity.ok) {
      // the session stays as it is (marked ended by the revocation), and so does its cookie: every request of it
      // is told the same, never sent to a sign-in this patron may not have
      if (identity.refusal === 'pay_link_revoked') return refusePayLinkRevoked(request, reply, identity.reason)
      if (identity.refusal === 'pay_link_ended') return await payLinkEnded(request, reply, identity.reason)
      if (await opensPayLinkReceipt(request)) return await payLinkEnded(request, reply, `a pay-link payment's receipt opened without its pay-link session (${identity.reason})`, PAY_LINK_RECEIPT)
      if (config.authMode === 'userobject') return await signInAgain(request, reply, identity)
      if (request.method === 'POST' && routeInCampus(request, campusPrefix) === '/cashnet/return') {
        // CashNet's "redirect using HTTP post" is cross-site: SameSite=Lax keeps a pay-link session's cookie off it
        // (and a Primo session's), and the patron of a pay link has no EZproxy. Bounce to GET, where the cookie
        // comes along and identity is decided again; CashNet's fields are never believed, so nothing is lost.
        request.log.info({ event: 'access.return_bounced', reason: identity.reason }, `CashNet's POST return came without an identity (${identity.reason}): bounced to GET`)
        return reply.redirect('return', 303)
      }
      if (config.authMode === 'primo') {
        if (identity.refusal !== 'no_session') {
          request.log.warn({ event: EVENT[identity.refusal].event, reason: identity.reason, peer: request.ip }, `session refused: ${identity.reason}`)
          clearSessionCookie(reply)
          const cookie = readSessionCookie(request)
          if (cookie.cookie === 'valid') await sessions.end(cookie.id)
        }
        return reply.code(401).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(openFromPrimoPage(config, request.routeOptions.config.root))
      }
      const fields = { event: EVENT[identity.refusal].event, reason: identity.reason }
      if (identity.status === 403) {
        return refuse(request, reply, 403, 'Please use the library link', identity.refusal === 'bad_secret'
          ? 'This request did not come through the library’s sign-in as expected. Use the “pay fines” link on the library website.'
          : 'This page can only be opened through the library’s sign-in (EZproxy). Use the “pay fines” link on the library website.', fields)
      }
      return refuse(request, reply, 401, 'Please sign in', 'We could not tell who you are. Sign in through the library’s “pay fines” link and try again.', fields)
    }
    // a pay link opens one patron's pages, never staff pages, whoever the patron is
    request.patron = { username: identity.username, isAdmin: identity.payLink === undefined && config.adminUsers.has(identity.username), sessionId: identity.sessionId }
    if (identity.payLink !== undefined) request.patron.payLink = identity.payLink
    request.log = request.log.child({ user: identity.username })
    // CSRF tokens made for this reply are bound to this patron (and session); see csrfUserInfo.
    const generate = reply.generateCsrf
    if (typeof generate === 'function') {
      const userInfo = csrfUserInfo(request)
      // the CSRF cookie must come back where this patron's pages are (a pay-link session: PAY_LINK_URL's path)
      const path = cookiePathFor(request.patron, config)
      reply.generateCsrf = function (this: FastifyReply, opts) { return generate.call(this, { ...opts, userInfo, path }) }
    }
    if (access === 'admin' && !request.patron.isAdmin) {
      if (identity.payLink !== undefined) {
        return refuse(request, reply, 403, 'Staff only', 'This page is for library staff. The payment link the library e-mailed you opens your own fines only.', { event: 'access.not_admin', reason: 'a pay-link session' })
      }
      return refuse(request, reply, 403, 'Staff only', 'This page is for library staff. If you are staff, ask the systems librarian to add your username to ADMIN_USERS.', { event: 'access.not_admin', reason: 'not in ADMIN_USERS' })
    }
  })
}, { name: 'identity', dependencies: ['@fastify/cookie'] })
