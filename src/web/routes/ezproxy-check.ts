// GET /ezproxy-check: what the service received from EZproxy on this very request, for the systems librarian
// setting up the stanza. Open to anyone, so it shows no secret values, and a username only when it would be
// believed by the patron pages: the resolved user is resolveIdentity's answer, the very function the identity
// plugin uses, so the two cannot disagree.

import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import proxyAddr from 'proxy-addr'
import type { Config } from '../../config.ts'
import { decodeUserHeader, headerValues, identityInput, resolveIdentity, sameSecret, usableUsername } from '../plugins/identity.ts'
import type { SessionStore } from '../sessions.ts'
import { allowList } from '../trust.ts'
import { type EzproxyCheck, type Finding, ezproxyCheckPage } from '../views/ezproxy-check.ts'

function canonicalName (lowercase: string): string {
  return lowercase.split('-').map(part => part === 'ezproxy' ? 'EZproxy' : part.charAt(0).toUpperCase() + part.slice(1)).join('-')
}

export async function diagnose (request: FastifyRequest, config: Config, checks: { fromEzproxy: (a: string | undefined) => boolean, isFrontProxy: (a: string | undefined) => boolean, sessions: SessionStore }): Promise<EzproxyCheck> {
  const problems: Finding[] = []
  const notes: Finding[] = []
  // userobject and primo modes: identity from our own session
  const userobject = config.authMode !== 'header'

  // The peer
  const socketAddress = request.socket.remoteAddress ?? ''
  const address = request.ip
  const trusted = checks.fromEzproxy(address)
  const forwardedFor = headerValues(request, 'x-forwarded-for').length > 0
  const socketIsFrontProxy = config.trustProxy.length > 0 && checks.isFrontProxy(socketAddress)
  const socketIsEzproxy = checks.fromEzproxy(socketAddress)

  if (socketIsFrontProxy && socketIsEzproxy) {
    problems.push({ code: 'ezproxy_in_trust_proxy', text: `${socketAddress} is listed in both TRUST_PROXY and EZPROXY_ALLOW. Never put EZproxy's addresses in TRUST_PROXY: EZproxy's X-Forwarded-For carries the patron's address, so the service stops seeing EZproxy as the peer. Remove it from TRUST_PROXY.` })
  }
  if (socketIsFrontProxy && !forwardedFor) {
    problems.push({ code: 'proxy_sent_no_forwarded_for', text: `The connection came from ${socketAddress}, a front proxy in TRUST_PROXY, but without an X-Forwarded-For header, so the service cannot see who the proxy was forwarding for. Make that proxy send X-Forwarded-For (see docs/deployment.md).` })
  }
  if (!trusted) {
    const text = `The service saw this request come from ${address}, which is not in EZPROXY_ALLOW. ` +
      'If that is your EZproxy server, add it to EZPROXY_ALLOW and to the firewall (a second EZproxy node, or changed hosted-EZproxy egress addresses, are the usual causes). ' +
      (config.trustProxy.length === 0 && forwardedFor
        ? `If ${address} is your own load balancer or reverse proxy in front of the service, set TRUST_PROXY to its address and make it send X-Forwarded-For. `
        : 'If it is your own load balancer or reverse proxy, set TRUST_PROXY to its address and make it send X-Forwarded-For. ') +
      'If it is your own computer and the address bar shows the service\'s real hostname, you bypassed EZproxy: move the stanza above the first ExcludeIP line and tighten the firewall.'
    if (userobject) notes.push({ code: 'peer_untrusted', text: `This request came from ${address}, which is not in EZPROXY_ALLOW. In userobject mode that does not block patrons (identity comes from the UserObject session), but patrons should still reach the service through EZproxy.` })
    else problems.push({ code: 'peer_untrusted', text })
  }

  // The user header: its presence is reported for anyone; its value is believed only from a trusted peer.
  const userValues = headerValues(request, config.ezproxyUserHeader)
  const userRaw = userValues.length === 1 ? userValues[0].trim() : ''
  const base64 = config.ezproxyUserHeaderEncoding === 'base64'
  const decoded = userValues.length === 1 ? decodeUserHeader(userRaw, config.ezproxyUserHeaderEncoding) : null
  const userHeader = {
    name: canonicalName(config.ezproxyUserHeader),
    arrived: userValues.length > 0,
    count: userValues.length,
    usable: decoded !== null && usableUsername(decoded)
  }
  // one lookup of the session, for the verdict and for the notes below
  const input = await identityInput(request, config, { fromEzproxy: checks.fromEzproxy, sessions: checks.sessions })
  const identity = resolveIdentity(input, config)
  // The secret header: configured, arrived, and (for a trusted peer only) whether it matches. Never its value.
  const secretValues = config.ezproxySecretHeader === '' ? [] : headerValues(request, config.ezproxySecretHeader)
  const secretHeader = {
    configured: config.ezproxySecretHeader !== '',
    name: config.ezproxySecretHeader === '' ? null : canonicalName(config.ezproxySecretHeader),
    arrived: secretValues.length > 0,
    matches: config.ezproxySecretHeader === '' || secretValues.length === 0 || !trusted
      ? null
      : secretValues.length === 1 && sameSecret(secretValues[0], config.ezproxySecret)
  }

  let resolvedUser: string | null = null
  if (!userobject) {
    if (!userHeader.arrived) {
      if (trusted) problems.push({ code: 'user_header_missing', text: `The ${userHeader.name} header did not arrive. The stanza needs "AddUserHeader${base64 ? ' -base64' : ''} ${userHeader.name}" on a line before its Title line (and a bare "AddUserHeader" after the stanza); check the spelling, that the stanza is above the first ExcludeIP line, and that no other stanza with a broad Domain/DJ line matched this host first (ezproxy-config/README.md, section 6.2). If it still does not arrive, use userobject mode.` })
    } else if (!trusted) {
      notes.push({ code: 'user_header_ignored', text: `A ${userHeader.name} header arrived, but from an untrusted peer, so it was ignored and its value is not shown. Patron pages would refuse this request.` })
    } else if (userHeader.count > 1) {
      problems.push({ code: 'user_header_repeated', text: `The ${userHeader.name} header arrived ${userHeader.count} times. EZproxy may be passing on a header the browser sent as well as its own, which would let a patron claim any name. Remove every HTTPHeader line that lets the browser's header through ("HTTPHeader -request -process ${userHeader.name}", a legacy "HTTPHeader ${userHeader.name}", "HTTPHeader *", "-process X-*"); send the username only with AddUserHeader. The service refuses such requests.` })
    } else if (userRaw === '') {
      problems.push({ code: 'user_header_empty', text: `The ${userHeader.name} header arrived but was empty: EZproxy had no username for this login. Check that you logged in as a person (not through AutoLoginIP), and what your authentication method sets as the user.` })
    } else if (/^login:|^session:/i.test(userRaw)) {
      problems.push({ code: 'user_header_expression', text: `The ${userHeader.name} header holds the expression text, not its value. Send the username with "AddUserHeader ${userHeader.name}" before the stanza's Title line instead of an HTTPHeader line. If you must use "HTTPHeader -request -inject", the expression is session:user (login:user is only defined while logging in), written without quotes.` })
    } else if (base64 && decoded === null) {
      problems.push({ code: 'user_header_undecodable', text: `EZPROXY_USER_HEADER_ENCODING is base64, but the ${userHeader.name} header is not valid base64. If the stanza says "AddUserHeader ${userHeader.name}" without -base64, either add -base64 there or set EZPROXY_USER_HEADER_ENCODING=plain; the two must agree.` })
    } else if (!userHeader.usable) {
      const looksBase64 = !base64 && decodeUserHeader(userRaw, 'base64') !== null && usableUsername(decodeUserHeader(userRaw, 'base64') ?? '')
      problems.push({ code: 'user_header_unusable', text: `The ${userHeader.name} header arrived, but its value is not a username the service accepts (letters, digits and . _ @ + - only, not only dots, at most 128 characters). ${looksBase64 ? 'It looks base64-encoded: if the stanza says "AddUserHeader -base64", set EZPROXY_USER_HEADER_ENCODING=base64.' : 'Check what EZproxy uses as the username.'}` })
    }
    if (secretHeader.configured && trusted) {
      if (!secretHeader.arrived) problems.push({ code: 'secret_header_missing', text: `The ${String(secretHeader.name)} header did not arrive. The secret HTTPHeader line in the stanza is not working: fix it, or unset EZPROXY_SECRET_HEADER and EZPROXY_SECRET.` })
      else if (secretHeader.matches === false) problems.push({ code: 'secret_mismatch', text: `The ${String(secretHeader.name)} header arrived, but its value differs from EZPROXY_SECRET. Copy the value again into config.txt and the service's environment, checking quotes and spaces.` })
    }
    if (identity.ok) resolvedUser = identity.username
    if (!secretHeader.configured) notes.push({ code: 'secret_not_configured', text: 'No shared-secret header is configured (EZPROXY_SECRET_HEADER). That is optional; the peer address check still applies.' })
  }

  // userobject mode: our own session cookie
  let session: EzproxyCheck['session'] = null
  if (userobject) {
    const cookie = input.session
    const found = cookie.cookie === 'valid' && cookie.lookup.kind !== 'unknown' ? cookie.lookup : null
    const ended = found !== null && found.kind !== 'live'
    session = { present: cookie.cookie !== 'none', valid: found !== null, expired: ended, idle: found?.kind === 'idle', expiresAt: found !== null ? new Date(found.session.expires).toISOString() : null }
    if (identity.ok) resolvedUser = identity.username
    if (!session.present) notes.push({ code: 'no_session', text: 'You have no session with the service yet. Open your fines page (the link below) to sign in through EZproxy, then come back to this page.' })
    else if (cookie.cookie === 'invalid') problems.push({ code: 'session_invalid', text: 'Your session cookie is not valid: it was altered, or COOKIE_SECRET changed since it was issued. Open your fines page to sign in again.' })
    else if (found === null) notes.push({ code: 'session_unknown', text: 'Your session cookie names a session the service does not know: you signed out, or it ended and was removed. Open your fines page to sign in again.' })
    else if (found.kind === 'idle') notes.push({ code: 'session_idle', text: `Your session ended after ${config.sessionIdleMinutes} minutes without a request (SESSION_IDLE_MINUTES). Open your fines page to sign in again.` })
    else if (found.kind === 'expired') notes.push({ code: 'session_expired', text: `Your session has expired (sessions last at most SESSION_TTL_MINUTES, ${config.sessionTtlMinutes} minutes). Open your fines page to sign in again.` })
    if (userHeader.arrived) notes.push({ code: 'user_header_unused', text: `A ${userHeader.name} header arrived; in userobject mode it is not used, and its value is not shown.` })
  }

  if (problems.length === 0 && resolvedUser !== null) {
    notes.push({
      code: 'all_good',
      text: userobject
        ? 'Your session is valid. If the fines page says the patron is unknown to Alma, the uid EZproxy releases is not an Alma identifier: set ALMA_USER_ID_TYPE, or change what user.txt puts in the uid.'
        : 'Everything the service needs arrived. Before going live, also do the two tests in ezproxy-config/README.md section 5 (a forged header is not believed; the service cannot be reached without EZproxy). If the fines page says the patron is unknown to Alma, set ALMA_USER_ID_TYPE, or change what EZproxy uses as the username.'
    })
  }

  return {
    authMode: config.authMode,
    peer: { address, socketAddress, trusted },
    trustProxy: { configured: config.trustProxy.length > 0, socketPeerIsFrontProxy: socketIsFrontProxy, forwardedForArrived: forwardedFor },
    userHeader: { name: userHeader.name, arrived: userHeader.arrived, usable: userHeader.usable },
    secretHeader,
    userobject: config.authMode === 'userobject' ? { ezproxyUrl: config.ezproxyUrl, wskeyConfigured: config.ezproxyWskey !== '' } : null,
    session,
    resolvedUser,
    ok: problems.length === 0 && resolvedUser !== null,
    problems,
    notes
  }
}

/** ?format=json or ?format=html; without it, the Accept header decides. */
const CHECK_QUERY = { type: 'object', properties: { format: { type: 'string' } } } as const

function wantsJson (request: FastifyRequest<{ Querystring: { format?: string } }>): boolean {
  const format = request.query.format
  if (format === 'json') return true
  if (format === 'html') return false
  const accept = String(request.headers.accept ?? '')
  return /application\/json/i.test(accept) && !/text\/html/i.test(accept)
}

const ezproxyCheck: FastifyPluginAsync = async (fastify) => {
  const { config } = fastify
  const fromEzproxy = allowList(config.ezproxyAllow)
  const frontProxy = config.trustProxy.length > 0 ? proxyAddr.compile([...config.trustProxy]) : null
  const isFrontProxy = (address: string | undefined): boolean => frontProxy !== null && address !== undefined && address !== '' && frontProxy(address, 0)

  fastify.get<{ Querystring: { format?: string } }>('/ezproxy-check', { config: { access: 'public', root: './' }, schema: { querystring: CHECK_QUERY } }, async (request, reply) => {
    const check = await diagnose(request, config, { fromEzproxy, isFrontProxy, sessions: fastify.sessions })
    reply.header('cache-control', 'no-store').header('vary', 'accept')
    if (wantsJson(request)) return reply.type('application/json; charset=utf-8').send(check)
    return reply.type('text/html; charset=utf-8').send(ezproxyCheckPage(config, check))
  })
}

export default ezproxyCheck
