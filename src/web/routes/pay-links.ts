// Pay links (PAY_LINKS=on; without it none of these routes exist, so they answer 404). Staff look a patron up
// by an Alma identifier on /admin/pay-links (primary id first, then any unique id) and send them a link by e-mail
// (the form names the patron by primary id, as the link does); GET /pay/<token> is the link. The
// token is its own authentication (signed, expiring: src/payments/pay-links.ts); the ledger says whether it was
// revoked and keeps every issue, use, refusal and revocation in the audit trail. A good link opens a session for
// that patron only, marked as a pay-link session (never /admin), ending with the link at the latest.
// The session's username is the patron's Alma primary id: every Alma call for it goes by primary id (payerOf).

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { AlmaError, USER_NOT_FOUND_CODES } from '../../alma/errors.ts'
import type { AlmaUser } from '../../alma/types.ts'
import { sendPayLinkMail } from '../../payments/pay-link-mail.ts'
import { issuePayLink, verifyPayLink } from '../../payments/pay-links.ts'
import { messagePage } from '../views/message.ts'
import { payLinksPage, type PayLinksView } from '../views/pay-links.ts'

const LINKS_SHOWN = 50
const IDENTIFIER = { type: 'string', maxLength: 255 } as const
const LOOKUP_QUERY = { type: 'object', properties: { id: IDENTIFIER, sent: { type: 'string' }, revoked: { type: 'string' } } } as const
const SEND_FORM = { type: 'object', properties: { _csrf: { type: 'string' }, id: IDENTIFIER } } as const
const REVOKE_PARAMS = { type: 'object', properties: { linkId: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' } }, required: ['linkId'] } as const

function patronName (user: AlmaUser): string {
  return (user.fullName || `${user.firstName} ${user.lastName}`).trim() || user.primaryId
}

const payLinks: FastifyPluginAsync = async (fastify) => {
  const { config, ledger, sessions } = fastify
  if (!config.payLinks) return
  const html = (reply: FastifyReply): FastifyReply => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store')

  /** Alma's user by primary id, or null when no patron has exactly this primary id (a link is for a primary id). */
  const byPrimaryId = async (request: FastifyRequest, primaryId: string): Promise<AlmaUser | null> => {
    try {
      const user = await request.alma.getUser(primaryId, { byPrimaryId: true })
      // Alma may read an id without user_id_type as any unique identifier: only the patron with this primary id will do
      return user.primaryId.toLowerCase() === primaryId.toLowerCase() ? user : null
    } catch (error) {
      if (error instanceof AlmaError && USER_NOT_FOUND_CODES.has(error.errorCode)) return null
      throw error
    }
  }

  /**
   * Alma's user for an identifier as staff typed it: the patron with that primary id (what a link is for, and what
   * this page's own links and forms carry), else the one with that barcode or other unique id (all_unique, not
   * ALMA_USER_ID_TYPE, which is how EZproxy usernames are read); null when Alma knows nobody by it.
   */
  const lookUp = async (request: FastifyRequest, identifier: string): Promise<AlmaUser | null> => {
    const exact = await byPrimaryId(request, identifier)
    if (exact !== null) return exact
    try {
      return await request.alma.getUser(identifier, { anyIdentifier: true })
    } catch (error) {
      if (error instanceof AlmaError && USER_NOT_FOUND_CODES.has(error.errorCode)) return null
      throw error
    }
  }

  const render = async (request: FastifyRequest, reply: FastifyReply, identifier: string, notice?: PayLinksView['notice'], status = 200): Promise<FastifyReply> => {
    let user: AlmaUser | null = null
    if (identifier !== '') {
      user = await lookUp(request, identifier)
      if (user === null && notice === undefined) notice = { tone: 'warn', text: `Alma has no patron with the identifier “${identifier}”.` }
    }
    const links = user === null ? [] : await Promise.all((await ledger.payLinksFor(user.primaryId, LINKS_SHOWN)).map(async link => ({ link, events: await ledger.payLinkEvents(link.linkId) })))
    return html(reply).code(status).send(payLinksPage({
      branding: config, timeZone: config.timeZone, ttlHours: config.payLinkTtlHours, csrfToken: reply.generateCsrf(), identifier, user, notice, links, now: new Date()
    }))
  }

  fastify.get<{ Querystring: { id?: string, sent?: string, revoked?: string } }>('/admin/pay-links', {
    config: { access: 'admin', root: '../' },
    schema: { querystring: LOOKUP_QUERY }
  }, async (request, reply) => {
    const { id = '', sent, revoked } = request.query
    const notice: PayLinksView['notice'] = sent !== undefined ? { tone: 'ok', text: 'The pay link was sent.' } : revoked !== undefined ? { tone: 'ok', text: 'The pay link was revoked; it no longer works, and anyone using it was signed out.' } : undefined
    return await render(request, reply, id.trim(), notice)
  })

  fastify.post<{ Body: { id?: string } }>('/admin/pay-links', {
    config: { access: 'admin', root: '../' },
    schema: { body: SEND_FORM },
    preValidation: fastify.csrfProtection
  }, async (request, reply) => {
    const by = request.patron?.username ?? '?'
    // the form carries the primary id of the patron the page showed: the link goes to exactly that patron
    const identifier = (request.body.id ?? '').trim()
    if (identifier === '') return await render(request, reply, '', { tone: 'warn', text: 'Give an Alma identifier.' }, 400)
    const user = await byPrimaryId(request, identifier)
    if (user === null) return await render(request, reply, identifier, undefined, 404)
    if (user.preferredEmail === '') return await render(request, reply, identifier, { tone: 'warn', text: 'This patron has no preferred e-mail address in Alma, so no link was sent.' }, 409)
    if (config.smtpUrl === '') return await render(request, reply, identifier, { tone: 'bad', text: 'No link was sent: the service has no mail server (SMTP_URL). Ask the systems librarian.' }, 503)

    const link = issuePayLink({ patronId: user.primaryId, primaryId: user.primaryId, issuedBy: by, ttlHours: config.payLinkTtlHours, secret: config.cookieSecret })
    await ledger.recordPayLink(link, { to: user.preferredEmail })
    try {
      await sendPayLinkMail({
        smtpUrl: config.smtpUrl,
        from: config.alertEmailFrom,
        to: user.preferredEmail,
        libraryName: config.libraryName,
        patronName: patronName(user),
        url: `${config.payLinkUrl}/pay/${link.token}`,
        expiresAt: link.expiresAt,
        timeZone: config.timeZone
      })
    } catch (error) {
      // a link nobody received must not stay usable
      await ledger.revokePayLink(link.linkId, 'mail-failed')
      request.log.error({ event: 'paylink.mail_failed', linkId: link.linkId, primaryId: user.primaryId, err: { message: (error as Error).message } }, `pay link for ${user.primaryId} not sent: ${(error as Error).message}; check SMTP_URL`)
      return await render(request, reply, identifier, { tone: 'bad', text: 'The e-mail could not be sent, so the link was withdrawn. Try again later, or ask the systems librarian to check the mail server.' }, 502)
    }
    request.log.info({ event: 'paylink.issued', linkId: link.linkId, primaryId: user.primaryId, by, expiresAt: link.expiresAt.toISOString() }, `${by} sent a pay link to ${user.primaryId}, valid until ${link.expiresAt.toISOString()}`)
    return await reply.redirect(`pay-links?id=${encodeURIComponent(user.primaryId)}&sent=1`, 303)
  })

  fastify.post<{ Params: { linkId: string }, Body: { id?: string } }>('/admin/pay-links/:linkId/revoke', {
    config: { access: 'admin', root: '../../../' },
    schema: { params: REVOKE_PARAMS, body: SEND_FORM },
    preValidation: fastify.csrfProtection
  }, async (request, reply) => {
    const by = request.patron?.username ?? '?'
    const { linkId } = request.params
    const link = await ledger.getPayLink(linkId)
    if (link === undefined) return html(reply).code(404).send(messagePage(config, { title: 'No such pay link', heading: 'No such pay link', message: 'There is no pay link with that id.', root: '../../../' }))
    const revoked = await ledger.revokePayLink(linkId, by)
    const ended = await sessions.endPayLink(linkId)
    request.log.info({ event: 'paylink.revoked', linkId, primaryId: link.primaryId, by, sessionsEnded: ended }, `${by} revoked pay link ${linkId} for ${link.primaryId}${revoked ? '' : ' (it was already revoked)'}; ${ended} session(s) ended`)
    return await reply.redirect(`../../pay-links?id=${encodeURIComponent(link.primaryId)}&revoked=1`, 303)
  })

  // The link itself. Public: the token is the authentication. Bounded per address, as anyone can try tokens.
  fastify.get<{ Params: { '*': string } }>('/pay/*', {
    config: { access: 'public', root: '../', rateLimit: { max: 30, timeWindow: '1 minute' } }
  }, async (request, reply) => {
    const token = request.params['*']
    const refuse = async (status: 401 | 403, reason: string, linkId: string | undefined, heading: string, message: string): Promise<FastifyReply> => {
      if (linkId !== undefined) await ledger.audit(null, 'paylink.refused', { linkId, reason, peer: request.ip })
      request.log.warn({ event: 'paylink.refused', reason, linkId, peer: request.ip }, `pay link refused (${reason})${linkId !== undefined ? ` for link ${linkId}` : ''} from ${request.ip}`)
      return html(reply).code(status).header('referrer-policy', 'no-referrer').send(messagePage(config, { title: heading, heading, message, root: '../', tone: 'warn' }))
    }
    const verdict = verifyPayLink(token, config.cookieSecret)
    if (!verdict.ok) {
      if (verdict.reason === 'expired') {
        return await refuse(401, 'expired', verdict.linkId, 'This payment link has expired', 'Payment links work for a limited time. Please ask the library to send you a new one.')
      }
      return await refuse(403, verdict.reason, undefined, 'This payment link is not valid', 'Please check that you opened the whole link from the library’s e-mail, or ask the library to send you a new one.')
    }
    const record = await ledger.getPayLink(verdict.linkId)
    if (record === undefined) {
      return await refuse(403, 'unknown', verdict.linkId, 'This payment link is not valid', 'Please ask the library to send you a new one.')
    }
    if (record.revokedAt !== null) {
      return await refuse(403, 'revoked', verdict.linkId, 'This payment link was withdrawn', 'The library withdrew this link. If you still need to pay, please ask the library for a new one.')
    }
    await fastify.startSession(request, reply, record.patronId, { payLink: record.linkId, notAfter: verdict.expiresAt.getTime() })
    await ledger.audit(null, 'paylink.used', { linkId: record.linkId, patron: record.patronId, peer: request.ip })
    request.log.info({ event: 'paylink.used', linkId: record.linkId, user: record.patronId, peer: request.ip }, `pay link ${record.linkId} opened a session for ${record.patronId}`)
    return await reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').redirect('../', 302)
  })
}

export default payLinks
