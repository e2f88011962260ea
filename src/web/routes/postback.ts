// POST /cashnet/postback: CashNet's server-to-server result. Recorded durably (raw body kept) before the 200 goes
// out; posting to Alma happens afterwards, in the worker, so the answer is quick whatever Alma is doing.

import { parse as parseQuery } from 'node:querystring'
import type { FastifyPluginAsync } from 'fastify'
import { maskCardNumbers, parsePostback, type Postback, PostbackRejected } from '../../cashnet/postback.ts'
import { decidePostback } from '../../payments/postback-rules.ts'

const MAX_BODY = 32 * 1024

const postback: FastifyPluginAsync = async (fastify) => {
  const { config, ledger, worker } = fastify
  // The raw body is kept for staff, so this scope reads form bodies itself (any content type CashNet may use).
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_BODY }, (request, body, done) => {
    ;(request as any).rawBody = body
    done(null, parseQuery(String(body)))
  })

  fastify.post('/cashnet/postback', {
    bodyLimit: MAX_BODY,
    config: { access: 'cashnet' }
  }, async (request, reply) => {
    const raw = maskCardNumbers(String((request as any).rawBody ?? ''))
    const fields = { ...(request.query as Record<string, unknown>), ...((request.body ?? {}) as Record<string, unknown>) }
    let parsed: Postback
    try {
      parsed = parsePostback(fields, config.cashnetRefType)
    } catch (error) {
      if (!(error instanceof PostbackRejected)) throw error
      ledger.recordPostback({ checkoutId: error.checkoutId, peer: request.ip, result: '', tx: '', rawBody: raw }, () => ({ outcome: 'REJECTED', reason: error.reason }))
      request.log.warn({ event: 'postback.rejected', checkout: error.checkoutId ?? undefined, peer: request.ip, reason: error.reason }, `postback refused: ${error.reason}; raw body kept for staff`)
      return reply.code(400).type('text/plain; charset=utf-8').send(`rejected: ${error.reason}\n`)
    }
    const recorded = ledger.recordPostback(
      { checkoutId: parsed.checkoutId, peer: request.ip, result: String(parsed.result), tx: parsed.tx, rawBody: raw },
      (checkout, earlier) => decidePostback(checkout, earlier, parsed)
    )
    const { outcome, reason } = recorded.decision
    const log = { event: 'postback.received', checkout: parsed.checkoutId, tx: parsed.tx || undefined, result: parsed.result, outcome, user: recorded.checkout?.userId }
    if (outcome === 'ORPHAN' || outcome === 'MISMATCH' || outcome === 'DOUBLE_CHARGE') {
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
