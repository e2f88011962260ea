// GET /auth/ezproxy (AUTH_MODE=userobject only): where EZproxy sends the browser back with a UserObject token.
// The token is exchanged server to server for the patron's uid, which becomes our own session (kept server side,
// carried by a signed cookie that dies with the browser); then the browser goes on to the page it first asked
// for. Only a sign-in this browser started is accepted (the state nonce set by the identity plugin). In header
// mode the route does not exist.
//
// GET /logout (both modes): for shared library computers. Ends our session (removed from the ledger, so a copy
// of the cookie is worthless on every process and instance), clears our cookies, and sends the browser on to EZproxy's logout; with no
// logout URL known, or for a pay-link session (no EZproxy), a calm page saying the patron is signed out here and should close the browser.

import type { FastifyPluginAsync } from 'fastify'
import { cookiePaths, readSessionCookie, sameSignInState, SESSION_COOKIE, SESSION_COOKIE_OPTIONS, SIGN_IN_STATE_COOKIE, signInState, usableUsername } from '../plugins/identity.ts'
import { CHECKOUT_COOKIE } from './checkout.ts'
import { UserObjectClient } from '../userobject.ts'
import { messagePage } from '../views/message.ts'

/** The service root seen from /auth/ezproxy, relative so it survives EZproxy's host rewriting. */
const ROOT = '../'

/**
 * Where to send the browser after sign-in: the path the patron first asked for (relative to PUBLIC_URL, a
 * campus's own root) when it is a plain path on this service (one leading '/', no '//', no backslash, no
 * control characters or spaces, no '.' or '..' segment, not back into /auth/), else the service root. Its path
 * is checked decoded, as the browser and the router read it (%2e%2e is '..'). Relative to /auth/ezproxy, so it
 * also works when the service is mounted under a path, and cannot climb out of it (nor out of a campus's /{campus}/).
 */
export function afterSignIn (next: unknown): string {
  if (typeof next !== 'string' || next.length > 2048) return ROOT
  let path: string
  try {
    path = decodeURIComponent(next.split(/[?#]/, 1)[0])
  } catch {
    return ROOT
  }
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  const unsafe = (text: string): boolean => text.includes('//') || text.includes('\\') || /[\s\x00-\x1f\x7f]/.test(text)
  if (!next.startsWith('/') || unsafe(next) || unsafe(path)) return ROOT
  if (/\/\.{1,2}(\/|$)/.test(path)) return ROOT
  if (/^\/auth(\/|$)/i.test(path)) return ROOT
  return ROOT + next.slice(1)
}

/** EZproxy's return to /auth/ezproxy: its UserObject token, and the page and sign-in state we gave it. */
const SIGN_IN_RETURN = {
  type: 'object',
  properties: { token: { type: 'string', maxLength: 4096 }, next: { type: 'string', maxLength: 2048 }, state: { type: 'string', maxLength: 64 } }
} as const

const auth: FastifyPluginAsync = async (fastify) => {
  const { config, sessions } = fastify

  fastify.get('/logout', {
    // public: signing out must work without a session (and never send the browser to sign in first)
    config: { access: 'public', root: './' }
  }, async (request, reply) => {
    const cookie = readSessionCookie(request)
    const ended = cookie.cookie === 'valid' ? await sessions.end(cookie.id) : undefined
    // cleared where they were set: the service's path, or PAY_LINK_URL's for a pay-link session's
    for (const name of [SESSION_COOKIE, SIGN_IN_STATE_COOKIE, CHECKOUT_COOKIE, 'acn_csrf']) {
      if (request.cookies[name] !== undefined) for (const path of cookiePaths(config)) reply.clearCookie(name, { path })
    }
    // a pay-link patron came without EZproxy: EZproxy's logout is no page of theirs, and their way back is the link
    const payLink = ended?.payLink !== undefined
    const toEzproxy = config.ezproxyLogoutUrl !== '' && !payLink
    request.log.info({ event: 'auth.signed_out', user: ended?.username, session: ended !== undefined ? 'ended' : 'none', next: toEzproxy ? 'ezproxy' : 'page' },
      ended !== undefined ? `${ended.username} signed out; session ended` : 'sign-out with no session of ours')
    reply.header('cache-control', 'no-store')
    if (toEzproxy) return reply.redirect(config.ezproxyLogoutUrl, 302)
    return reply.type('text/html; charset=utf-8').send(messagePage(config, {
      title: 'Signed out',
      heading: 'You are signed out',
      message: payLink
        ? 'You are signed out of the fines service. To come back, open the payment link in the library’s e-mail again while it is valid. If you are on a shared computer, close the browser (all of its windows).'
        : 'You are signed out of the fines service. If you are on a shared computer, close the browser (all of its windows) so that the next person cannot use your library sign-in.',
      root: './',
      tone: 'ok'
    }))
  })

  if (config.authMode !== 'userobject') return
  const userObject = new UserObjectClient({ ezproxyUrl: config.ezproxyUrl, wskey: config.ezproxyWskey })

  fastify.get<{ Querystring: { token?: string, next?: string, state?: string } }>('/auth/ezproxy', {
    // Anyone can start a sign-in and each return costs one call to EZproxy: bound it per address.
    config: { access: 'public', root: ROOT, rateLimit: { max: 30, timeWindow: '1 minute' } },
    schema: { querystring: SIGN_IN_RETURN }
  }, async (request, reply) => {
    const query = request.query
    const page = (status: 401 | 503, heading: string, message: string): string => {
      reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store')
      return messagePage(config, { title: heading, heading, message, root: ROOT, tone: status === 401 ? 'warn' : 'bad', linkHome: true })
    }
    const signInAgain = (): string => page(401, 'We could not confirm your sign-in',
      'Your sign-in link has expired or has already been used. Use “Back to your fines” below, or the library’s “pay fines” link, to sign in again.')

    const token = query.token ?? ''
    if (token === '') {
      request.log.warn({ event: 'auth.token_rejected', reason: 'no token in the request', peer: request.ip }, 'sign-in refused: /auth/ezproxy was opened without a token (bookmarked, or EZproxy did not add one)')
      return signInAgain()
    }
    if (!sameSignInState(query.state, signInState(request))) {
      // a bookmarked or shared /auth/ezproxy link, cookies blocked, or someone trying to sign this browser in
      // as themselves: the token is not even looked at
      request.log.warn({ event: 'auth.token_rejected', reason: 'the sign-in was not started in this browser (state cookie missing or different)', peer: request.ip },
        'sign-in refused: the return from EZproxy does not match a sign-in started in this browser (link opened elsewhere, or cookies blocked)')
      return signInAgain()
    }

    const answer = await userObject.lookup(token)
    switch (answer.kind) {
      case 'refused':
        request.log.warn({ event: 'auth.token_refused', reason: answer.reason, tokenOrigin: answer.tokenOrigin, tokenPath: answer.tokenPath, peer: request.ip },
          `sign-in refused without asking EZproxy: ${answer.reason}. If this token really came from your EZproxy, correct EZPROXY_URL`)
        return signInAgain()
      case 'rejected':
        request.log.warn({ event: 'auth.token_rejected', reason: answer.reason, serviceStatus: answer.serviceStatus, peer: request.ip }, `sign-in refused: EZproxy did not vouch for the token: ${answer.reason}`)
        return signInAgain()
      case 'unavailable':
        request.log.error({ event: 'auth.ezproxy_unreachable', reason: answer.reason, status: answer.status, ezproxy: config.ezproxyUrl }, `sign-in failed: could not ask EZproxy's UserObject service at ${config.ezproxyUrl}: ${answer.reason}`)
        return page(503, 'Sign-in is not available right now',
          'We cannot reach the library’s sign-in service at the moment, so we cannot show your fines. Nothing was charged. Please try again in a few minutes.')
      case 'user':
        break
    }
    if (!usableUsername(answer.uid)) {
      request.log.warn({ event: 'auth.token_rejected', reason: 'uid is not a usable username', uid: answer.uid.slice(0, 128), peer: request.ip },
        'sign-in refused: the uid in EZproxy\'s UserObject is not a usable username (letters, digits and . _ @ + - only, at most 128): check user.txt')
      return page(401, 'We could not confirm your sign-in', 'Your sign-in worked, but the library’s sign-in service did not tell us a username we can use. Please contact the library.')
    }

    // A session this browser already had (another patron's, at a shared computer) ends here.
    const previous = readSessionCookie(request)
    if (previous.cookie === 'valid') await sessions.end(previous.id)
    const session = await sessions.start(answer.uid, 'userobject')
    reply.setCookie(SESSION_COOKIE, session.id, SESSION_COOKIE_OPTIONS(config))
    request.log.info({ event: 'auth.session_started', user: answer.uid, expiresAt: new Date(session.expires).toISOString(), idleMinutes: config.sessionIdleMinutes },
      `session started for ${answer.uid}: at most ${config.sessionTtlMinutes} minutes, ended after ${config.sessionIdleMinutes} idle minutes or at sign-out`)
    return reply.header('cache-control', 'no-store').redirect(afterSignIn(query.next), 302)
  })
}

export default auth
