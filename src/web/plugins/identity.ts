// The trust boundaries, read off each route's `access`: patron routes only from EZproxy (or, in userobject
// mode, with our own signed session), admin routes from EZproxy and ADMIN_USERS, the postback only from
// CashNet's addresses, health and diagnostics from anyone. The peer is the TCP peer unless TRUST_PROXY names a
// front proxy, in which case Fastify reads X-Forwarded-For from that proxy only.

import { randomBytes, timingSafeEqual } from 'node:crypto'
import '@fastify/cookie'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../../config.ts'
import { allowList } from '../trust.ts'
import { messagePage } from '../views/fines.ts'

export type Access = 'patron' | 'admin' | 'cashnet' | 'public'

export interface Patron {
  username: string
  isAdmin: boolean
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
}

export const SESSION_COOKIE = 'acn_session'
/** What the service accepts as a username, from the EZproxy header, a UserObject uid or a session. */
export const USERNAME = /^[\p{L}\p{N}._@+\-]{1,128}$/u

function sameSecret (given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

export interface SessionValue { username: string, expires: number }

export function encodeSession (value: SessionValue): string {
  return Buffer.from(JSON.stringify({ u: value.username, e: value.expires })).toString('base64url')
}

export function decodeSession (raw: string): SessionValue | null {
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'))
    if (typeof parsed?.u !== 'string' || typeof parsed?.e !== 'number') return null
    return { username: parsed.u, expires: parsed.e }
  } catch {
    return null
  }
}

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

export default fp(async function identity (fastify, options: { config: Config }) {
  const { config } = options
  const fromEzproxy = allowList(config.ezproxyAllow)
  const fromCashnet = allowList(config.cashnetPostbackAllow)
  fastify.decorateRequest('patron', null)

  const refuse = (request: FastifyRequest, reply: FastifyReply, status: 401 | 403, heading: string, message: string, fields: { event: string }): FastifyReply => {
    request.log.warn({ ...fields, peer: request.ip, path: request.routeOptions.url }, `${status} ${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]} from ${request.ip}: ${heading}`)
    return reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store')
      .send(messagePage(config, { title: heading, heading, message, root: request.routeOptions.config.root, tone: 'bad' }))
  }

  const fromHeader = (request: FastifyRequest, reply: FastifyReply): string | FastifyReply => {
    if (!fromEzproxy(request.ip)) {
      return refuse(request, reply, 403, 'Please use the library link', 'This page can only be opened through the library’s sign-in (EZproxy). Use the “pay fines” link on the library website.', { event: 'access.untrusted_peer' })
    }
    if (config.ezproxySecretHeader !== '') {
      const given = request.headers[config.ezproxySecretHeader]
      if (typeof given !== 'string' || !sameSecret(given, config.ezproxySecret)) {
        return refuse(request, reply, 403, 'Please use the library link', 'This request did not come through the library’s sign-in as expected. Use the “pay fines” link on the library website.', { event: 'access.bad_secret' })
      }
    }
    const header = request.headers[config.ezproxyUserHeader]
    const username = typeof header === 'string' ? header.trim() : ''
    if (username === '' || !USERNAME.test(username)) {
      return refuse(request, reply, 401, 'Please sign in', 'We could not tell who you are. Sign in through the library’s “pay fines” link and try again.', { event: 'access.no_user' })
    }
    return username
  }

  const fromSession = (request: FastifyRequest, reply: FastifyReply): string | FastifyReply => {
    const raw = request.cookies[SESSION_COOKIE]
    const unsigned = raw === undefined ? null : request.unsignCookie(raw)
    const session = unsigned?.valid === true && unsigned.value !== null ? decodeSession(unsigned.value) : null
    if (session !== null && session.expires > Date.now() && USERNAME.test(session.username)) return session.username
    if (raw !== undefined && (session === null || unsigned?.valid !== true)) request.log.warn({ event: 'access.bad_session', peer: request.ip }, 'session cookie invalid or tampered with')
    if (request.method === 'GET' || request.method === 'HEAD') {
      const next = request.url.startsWith('/') && !request.url.startsWith('//') ? request.url : '/'
      const state = signInState(request) ?? randomBytes(16).toString('base64url')
      reply.setCookie(SIGN_IN_STATE_COOKIE, state, { signed: true, httpOnly: true, secure: config.secureCookies, sameSite: 'lax', path: '/', maxAge: 15 * 60 })
      const returnUrl = `${config.publicUrl}/auth/ezproxy?next=${encodeURIComponent(next)}&state=${state}`
      const target = `${config.ezproxyUrl}/login?url=${config.ezproxyUrl}/userObject?service=getToken&returnURL=${encodeURIComponent(returnUrl)}`
      return reply.redirect(target, 302)
    }
    if (request.routeOptions.url === '/cashnet/return') {
      // CashNet's "redirect using HTTP post" is cross-site: SameSite=Lax keeps our cookie off it. Bounce to
      // GET, where the cookie comes along; the receipt then shows the patron's latest checkout.
      return reply.redirect('return', 303)
    }
    return refuse(request, reply, 401, 'Please sign in', 'Your session has ended. Open the library’s “pay fines” link again.', { event: 'access.no_session' })
  }

  fastify.addHook('onRequest', async (request, reply) => {
    const access = request.routeOptions.config?.access ?? 'public'
    if (access === 'public') return
    if (access === 'cashnet') {
      if (!fromCashnet(request.ip)) {
        request.log.warn({ event: 'postback.rejected', peer: request.ip, reason: 'peer not in CASHNET_POSTBACK_ALLOW' }, `postback refused: ${request.ip} is not in CASHNET_POSTBACK_ALLOW`)
        return reply.code(403).type('text/plain; charset=utf-8').send('forbidden\n')
      }
      return
    }
    const resolved = config.authMode === 'userobject' ? fromSession(request, reply) : fromHeader(request, reply)
    if (typeof resolved !== 'string') return resolved
    request.patron = { username: resolved, isAdmin: config.adminUsers.has(resolved) }
    request.log = request.log.child({ user: resolved })
    if (access === 'admin' && !request.patron.isAdmin) {
      return refuse(request, reply, 403, 'Staff only', 'This page is for library staff. If you are staff, ask the systems librarian to add your username to ADMIN_USERS.', { event: 'access.not_admin' })
    }
  })
}, { name: 'identity', dependencies: ['@fastify/cookie'] })
