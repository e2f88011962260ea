// POST /cashnet/postback: CashNet's server-to-server result. Recorded durably (raw body kept) before the 200 goes
// out; posting to Alma happens afterwards, in the worker, so the answer is quick whatever Alma is doing.
//
// Who may post: a peer in CASHNET_POSTBACK_ALLOW (the identity plugin), and, when CASHNET_POSTBACK_TOKEN is
// set, only with ?token=<that value> in the URL (compared in constant time). Either failing gets 403 and
// records nothing in the ledger: one log line only. CashNet does not sign postbacks, so this shared secret in
// the notification URL is the second factor available.
//
// Card numbers: whatever a field holds, what reaches the ledger (raw body, tx, reference, the reason text)
// and the log lines is masked to its last four digits (src/mask.ts).

import { parse as parseQuery } from 'node:querystring'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { maskCardNumbers, parsePostback, type Postback, PostbackRejected, referenceOf } from '../../cashnet/postback.ts'
import { decidePostback } from '../../payments/postback-rules.ts'
import { GroupCommit } from '../../ledger/group-commit.ts'
import { maskCardLike, maskIdentifier } from '../../mask.ts'
import { sameSecret } from '../plugins/identity.ts'

/**
 * The postback as the ledger and the logs may see it: every free-text and id field masked. The two identifiers
 * the rules compare (tx, reference) keep a keyed digest beside the mask, so distinct values stay distinct.
 */
export function maskedPostback (postback: Postback, key: string): Postback {
  return {
    ...postback,
    tx: maskIdentifier(postback.tx, key),
    checkoutId: maskIdentifier(postback.checkoutId, key),
    respmessage: maskCardLike(postback.respmessage),
    custcode: maskCardLike(postback.custcode),
    batchno: maskCardLike(postback.batchno),
    ccerrorcode: maskCardLike(postback.ccerrorcode)
  }
}

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
  const { config, ledger, worker } = fastify
  // Postbacks arriving together share one durable commit; each 200 still waits for its own record's commit.
  const commits = new GroupCommit(ledger)
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
    const raw = maskCardNumbers(String((request as any).rawBody ?? ''))
    const fields = fieldsOf(request)
    let parsed: Postback
    try {
      parsed = maskedPostback(parsePostback(fields, config.cashnetRefType), config.cookieSecret)
    } catch (error) {
      if (!(error instanceof PostbackRejected)) throw error
      const checkoutId = error.checkoutId === null ? null : maskCardLike(error.checkoutId)
      const reason = maskCardLike(error.reason)
      await commits.run(() => ledger.recordPostback({ checkoutId, peer: request.ip, result: '', tx: '', rawBody: raw }, () => ({ outcome: 'REJECTED', reason })))
      request.log.warn({ event: 'postback.rejected', checkout: checkoutId ?? undefined, peer: request.ip, reason }, `postback refused: ${reason}; raw body kept for staff`)
      return reply.code(400).type('text/plain; charset=utf-8').send(`rejected: ${reason}\n`)
    }
    const recorded = await commits.run(() => ledger.recordPostback(
      { checkoutId: parsed.checkoutId, peer: request.ip, result: String(parsed.result), tx: parsed.tx, rawBody: raw, items: parsed.items },
      (checkout, earlier, elsewhere) => {
        const decision = decidePostback(checkout, earlier, parsed, elsewhere)
        return { ...decision, reason: maskCardLike(decision.reason) }
      }
    ))
    const { outcome, reason } = recorded.decision
    const log = { event: 'postback.received', checkout: parsed.checkoutId, tx: parsed.tx || undefined, result: parsed.result, outcome, user: recorded.checkout?.userId }
    if (outcome === 'ORPHAN' || outcome === 'MISMATCH' || outcome === 'DOUBLE_CHARGE' || outcome === 'TX_REUSED') {
      request.log.warn(log, `postback ${outcome.toLowerCase()}: ${reason}`)
    } else {
      request.log.info(log, `postback for ${parsed.checkoutId}: ${outcome.toLowerCase()}`)
    }
    if (recorded.decision.to === 'NEEDS_ATTENTION' && recorded.checkout !== undefined) fastify.alerts.needsAttention(recorded.checkout, reason)
    if (outcome === 'PAID') setImmediate(() => { worker.schedule(parsed.checkoutId) })
    return reply.code(200).type('text/plain; charset=utf-8').send('OK\n')
  })
}

export default postback
