// POST /cashnet/postback: CashNet's server-to-server result. Recorded durably (raw body kept, masked) before the
// 200 goes out by the "record a postback" use case (src/payments/record-postback.ts); posting to Alma happens
// afterwards, in the worker, so the answer is quick whatever Alma is doing. This file is the web side only:
// who may post, reading the body, the rate limit, and the status of the answer.
//
// Who may post: a peer in CASHNET_POSTBACK_ALLOW (the identity plugin), and, when CASHNET_POSTBACK_TOKEN is
// set, only with ?token=<that value> in the URL (compared in constant time). Either failing gets 403 and
// records nothing in the ledger: one log line only. CashNet does not sign postbacks, so this shared secret in
// the notification URL is the second factor available.

import { parse as parseQuery } from 'node:querystring'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { referenceOf } from '../../providers/cashnet/postback.ts'
import { recordPostback } from '../../payments/record-postback.ts'
import { sameSecret } from '../plugins/identity.ts'

const MAX_BODY = 32 * 1024

/**
 * Postbacks per checkout reference per minute. CashNet sends one postback per transaction and retries only when
 * it gets no 200, so a real checkout sees a handful at most; the limit only stops a peer in the allow-list that
 * has gone into a loop (or been taken over) from replaying one checkout. It is generous on purpose: a 429 is
 * not recorded, so a first postback must never meet it, and that needs 30 earlier ones for the same reference
 * in the same minute. Bodies without a readable reference share a per-peer budget and never touch a
 * checkout's. The limit runs after the peer check (onRequest), so only allowed peers can spend it.
 */
export const POSTBACKS_PER_CHECKOUT_PER_MINUTE = 30
const UNREADABLE_PER_PEER_PER_MINUTE = 120

const postback: FastifyPluginAsync = async (fastify) => {
  const { config, ledger, worker, alerts } = fastify
  // The raw body is kept for staff, so this scope reads form bodies itself (any content type CashNet may use).
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_BODY }, (request, body, done) => {
    ;(request as any).rawBody = body
    done(null, parseQuery(String(body)))
  })

  const fieldsOf = (request: FastifyRequest): Record<string, unknown> =>
    ({ ...(request.query as Record<string, unknown>), ...((request.body ?? {}) as Record<string, unknown>) })
  const referenceKey = (request: FastifyRequest): string => {
    const reference = referenceOf(fieldsOf(request), config.cashnetRefType)
    return reference !== null ? `postback:${reference}` : `postback-unreadable:${request.ip}`
  }

  const token = config.cashnetPostbackToken
  const checkToken = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    if (token === '') return
    const given = (request.query as Record<string, unknown> | undefined)?.token
    if (typeof given === 'string' && sameSecret(given, token)) return
    const reason = given === undefined ? 'no token in the URL' : 'wrong token in the URL'
    request.log.warn({ event: 'postback.bad_token', peer: request.ip, reason }, `postback refused with 403: ${reason} (CASHNET_POSTBACK_TOKEN); nothing recorded. If this is CashNet, the notification URL in the store's configuration lacks ?token=`)
    return await reply.code(403).type('text/plain; charset=utf-8').send('forbidden\n')
  }

  fastify.post('/cashnet/postback', {
    bodyLimit: MAX_BODY,
    // after the identity plugin's peer check, before the body is read, the rate limit spent or anything recorded
    onRequest: checkToken,
    config: {
      access: 'cashnet',
      rateLimit: {
        keyGenerator: referenceKey,
        max: (_request: FastifyRequest, key: string) => key.startsWith('postback:') ? POSTBACKS_PER_CHECKOUT_PER_MINUTE : UNREADABLE_PER_PEER_PER_MINUTE,
        timeWindow: '1 minute',
        onExceeded: (request: FastifyRequest, key: string) => {
          request.log.warn({ event: 'postback.rate_limited', checkout: key.startsWith('postback:') ? key.slice('postback:'.length) : undefined, peer: request.ip }, `postback refused with 429: too many for ${key} in a minute`)
        }
      }
    }
  }, async (request, reply) => {
    const answer = await recordPostback(
      { ledger, schedule: id => { worker.schedule(id) }, alerts, refType: config.cashnetRefType, maskKey: config.cookieSecret, logger: request.log, observe: (outcome, seconds) => { fastify.metrics.postback(outcome, seconds) }, messages: fastify.receiptMessages },
      { fields: fieldsOf(request), rawBody: String((request as any).rawBody ?? ''), peer: request.ip }
    )
    if (answer.status === 400) return reply.code(400).type('text/plain; charset=utf-8').send(`rejected: ${answer.reason}\n`)
    return reply.code(200).type('text/plain; charset=utf-8').send('OK\n')
  })
}

export default postback
