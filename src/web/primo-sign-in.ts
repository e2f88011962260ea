// AUTH_MODE=primo: the patron arrives from Primo VE's "Pay fines" link at the service root with `?jwt=…`. The
// token is checked by src/identity/primo.ts; a good one becomes our own session (the same sessions as
// userobject mode: idle timeout, absolute lifetime, /logout) and the browser is sent on to the fines page
// without the token in its address bar or history. A refused token gets a calm page and nothing else, and the
// operator one log line with the reason; the token itself is never logged.

import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.ts'
import type { PrimoRefusalReason, PrimoVerifier } from '../identity/primo.ts'
import type { SessionStore } from './sessions.ts'
import { messagePage } from './views/message.ts'

/** The refusals a patron can fix by opening the link again from Primo (401); the rest are forgeries or setup (403). */
const TRY_AGAIN: ReadonlySet<PrimoRefusalReason> = new Set(['expired', 'not_yet_valid', 'not_signed_in'])

export interface PrimoSignIn {
  verify: PrimoVerifier
  sessions: SessionStore
  /** sets the session cookie; ends the browser's previous session first */
  startSession: (request: FastifyRequest, reply: FastifyReply, username: string) => Promise<void>
}

/** The page shown in primo mode to a browser without a session: the way in is Primo's link, nothing here. */
export function openFromPrimoPage (config: Config, root: string | undefined): string {
  return messagePage(config, {
    title: 'Please open the link from your library account',
    heading: 'Please open the link from your library account',
    message: `Sign in to the ${config.libraryName} search (Primo), open your library card, and select “Pay fine”. That link signs you in here.`,
    root,
    tone: 'warn'
  })
}

export async function primoSignIn (request: FastifyRequest, reply: FastifyReply, config: Config, signIn: PrimoSignIn): Promise<FastifyReply> {
  const token = (request.query as Record<string, unknown>).jwt
  reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer')
  const verdict = await signIn.verify(Array.isArray(token) ? token[0] : token)
  if (verdict.ok) {
    await signIn.startSession(request, reply, verdict.username)
    request.log.info({ event: 'auth.primo_signed_in', user: verdict.username, idleMinutes: config.sessionIdleMinutes },
      `${verdict.username} signed in from Primo VE: a session of at most ${config.sessionTtlMinutes} minutes`)
    // relative: the fines page at the root, without ?jwt
    return await reply.redirect('./', 302)
  }
  const fields = { event: 'auth.primo_refused', reason: verdict.reason, detail: verdict.detail, peer: request.ip }
  reply.type('text/html; charset=utf-8')
  if (verdict.reason === 'jwks_unavailable') {
    request.log.error(fields, `Primo sign-in failed: ${verdict.detail} (PRIMO_JWKS_URL ${config.primoJwksUrl})`)
    return await reply.code(503).header('retry-after', '60').send(messagePage(config, {
      title: 'Please try again later',
      heading: 'Please try again in a few minutes',
      message: 'We cannot confirm your sign-in right now, because the library system that vouches for it is not answering. Nothing was charged. Go back to your library account and select “Pay fine” again in a few minutes.',
      root: './',
      tone: 'bad'
    }))
  }
  const status = TRY_AGAIN.has(verdict.reason) ? 401 : 403
  request.log.warn(fields, `Primo sign-in refused (${verdict.reason}): ${verdict.detail}`)
  return await reply.code(status).send(messagePage(config, {
    title: 'This link could not be used',
    heading: 'This link could not be used',
    message: status === 401
      ? 'Your sign-in link has expired or you are not signed in to the library search. Sign in to the library search (Primo), open your library card and select “Pay fine” again.'
      : 'This sign-in link is not valid here. Open your library card in the library search (Primo) and select “Pay fine”. If this keeps happening, please contact the library.',
    root: './',
    tone: 'warn'
  }))
}
