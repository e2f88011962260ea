// The one place errors become answers. Whatever went wrong, a patron gets a calm page that says whether
// anything was charged and what to do, an operator gets one log line naming the cause and the fix, CashNet
// gets a short plain-text status, and nobody ever gets a stack trace.

import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { AlmaBadResponse, AlmaError, AlmaUnavailable, AmbiguousPrimaryId, USER_NOT_FOUND_CODES } from '../../../alma/errors.ts'
import type { Config } from '../../../config.ts'
import { loggablePath } from '../../../log.ts'
import { LedgerUnavailable } from '../../../ledger/errors.ts'
import { pathInCampus } from '../../campus-path.ts'
import { rootFor } from '../../root.ts'
import { messagePage } from '../../views/message.ts'

/** What a route's own page says when its input does not pass the route's schema (config.badInput). */
export interface BadInputPage {
  heading: string
  message: string
  /** offer the way back to the fines (patron pages) */
  linkHome?: boolean
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the calm 400 page for input that fails this route's schema; a generic one when not given */
    badInput?: BadInputPage
  }
}

/** The route's own 400 page (config.badInput) for input it cannot use; campusPrefix: see src/web/campus-path.ts. */
export function badInputPage (config: Config, reply: FastifyReply, page: BadInputPage, campusPrefix = ''): FastifyReply {
  return reply.code(400).type('text/html; charset=utf-8').header('cache-control', 'no-store')
    .send(messagePage(config, { title: page.heading, heading: page.heading, message: page.message, root: reply.request.routeOptions.config?.root ?? rootFor(pathInCampus(reply.request.url, campusPrefix)), linkHome: page.linkHome === true }))
}

/** The operator's line for a write the ledger could not take (ledger.busy), with where to look for this store. */
export function logLedgerBusy (config: Config, request: FastifyRequest, error: LedgerUnavailable, path = loggablePath(request.url)): void {
  const hint = config.databaseUrl !== '' ? 'is PostgreSQL at DATABASE_URL up and reachable?' : 'is a sqlite3 shell or a second instance holding a write lock on DATABASE_PATH?'
  request.log.warn({ event: 'ledger.busy', path }, `${error.message}; answered 503 (${hint})`)
}

export async function answerError (config: Config, error: FastifyError, request: FastifyRequest, reply: FastifyReply, campusPrefix = ''): Promise<FastifyReply> {
  const path = loggablePath(request.url)
  const root = request.routeOptions.config?.root ?? rootFor(pathInCampus(request.url, campusPrefix))
  const cashnet = request.routeOptions.config?.access === 'cashnet'
  const html = (status: number, heading: string, message: string): FastifyReply =>
    reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store')
      .send(messagePage(config, { title: heading, heading, message, root, linkHome: status < 500 && request.method !== 'GET' }))

  // a pay-link patron has no username (nor a sign-in): what they can tell the library is where the link came to
  const unknownPatron = (): FastifyReply => html(404, 'We could not find your library account', request.patron?.payLink !== undefined
    ? 'Your payment link worked, but the library system did not find your account. If you think this is wrong, contact the library and tell them the e-mail address the payment link was sent to.'
    : 'Your sign-in worked, but the library system has no account for you. If you think this is wrong, contact the library and mention your username.')
  if (error instanceof AlmaError && USER_NOT_FOUND_CODES.has(error.errorCode)) {
    request.log.warn({ event: 'patron.unknown', alma: { status: error.status, errorCode: error.errorCode, trackingId: error.trackingId } }, `user ${request.patron?.username ?? '?'} is not known to Alma (${error.errorCode})`)
    return unknownPatron()
  }
  if (error instanceof AmbiguousPrimaryId) {
    // the patron cannot fix this, and must not see the other patron's account: the same page as an unknown patron
    request.log.error({ event: 'patron.ambiguous_id', primaryId: error.primaryId, answeredWith: error.answeredWith },
      `Alma answered a read of primary id "${error.primaryId}" with patron "${error.answeredWith}": "${error.primaryId}" is also an identifier of "${error.answeredWith}" (barcode, campus id…), so nothing was shown or charged. Make the identifier unique in Alma (change "${error.answeredWith}"'s identifier "${error.primaryId}")`)
    return unknownPatron()
  }
  if (error instanceof AlmaError || error instanceof AlmaUnavailable || error instanceof AlmaBadResponse) {
    const operator = error instanceof AlmaError && (error.status === 401 || error.status === 403)
      ? 'Alma refused the API key: check ALMA_API_KEY and its Users read/write permission'
      : 'Alma is unavailable or answered unexpectedly; the patron was told to try later'
    request.log.error({ event: 'alma.unavailable', alma: { status: error.status, errorCode: error.errorCode, trackingId: error.trackingId } }, `${operator} (${error.message})`)
    return html(503, 'The library system is not available', 'We cannot reach the library system right now, so we cannot show or take payments. Nothing was charged. Please try again in a few minutes.')
  }
  if (error instanceof LedgerUnavailable) {
    logLedgerBusy(config, request, error, path)
    if (cashnet) return reply.code(503).header('retry-after', '5').type('text/plain; charset=utf-8').send('busy, try again\n')
    return html(503, 'Please try again in a moment', 'We could not record that just now. Nothing was charged by this page. Please try again in a moment.')
  }
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 500
  if (error.code === 'FST_CSRF_INVALID_TOKEN' || error.code === 'FST_CSRF_MISSING_SECRET') {
    request.log.warn({ event: 'access.csrf', code: error.code }, `CSRF check failed on ${request.method} ${path}`)
    return html(403, 'Please start again', 'This form has expired or did not come from this site. Go back to your fines and try again.')
  }
  if (status === 429) {
    return reply.code(429).header('cache-control', 'no-store').type('text/html; charset=utf-8')
      .send(messagePage(config, { title: 'Too many requests', heading: 'Please wait a moment', message: 'You have made many requests in a short time. Please wait a minute and try again.', root }))
  }
  if (status < 500) {
    // includes FST_ERR_VALIDATION: a body, query or params that failed the route's schema
    request.log.info({ event: 'request.refused', status, code: error.code }, `${status} ${request.method} ${path}: ${error.message}`)
    if (cashnet) return reply.code(status).type('text/plain; charset=utf-8').send(`rejected: ${error.code ?? status}\n`)
    const badInput = request.routeOptions.config?.badInput
    if (error.code === 'FST_ERR_VALIDATION' && badInput !== undefined) return badInputPage(config, reply, badInput, campusPrefix)
    return html(status, 'We could not process that request', status === 413 ? 'That request was too large.' : 'The request was not in the form we expected. Go back to your fines and try again.')
  }
  request.log.error({ event: 'request.failed', err: { message: error.message, stack: error.stack, code: error.code } }, `unexpected error on ${request.method} ${path}: ${error.message}`)
  if (cashnet) return reply.code(500).type('text/plain; charset=utf-8').send('error\n')
  request.log.debug('error page served')
  return html(500, 'Something went wrong', 'Something went wrong on our side. Nothing was charged by this page. Please try again in a few minutes; if it keeps happening, contact the library.')
}

export default fp(async function errorHandler (fastify) {
  const { config } = fastify
  const campusPrefix = fastify.prefix
  fastify.setErrorHandler(async (error: FastifyError, request, reply) => await answerError(config, error, request, reply, campusPrefix))
}, { name: 'error-handler', dependencies: ['config'] })
