// PayPal's ways back in (SPEC 13), registered for a PayPal deployment only. The use cases are in
// src/payments/paypal.ts; this file reads the request, checks who may ask, and turns outcomes into answers.
//
// GET /paypal/return?token=ORDER_ID  the patron approved on PayPal: capture, record, show the receipt
//                                     (?ref=CHECKOUT_ID: the receipt's own "check again" link, no capture)
// GET /paypal/cancel?token=ORDER_ID  the patron cancelled on PayPal: CANCELLED, and the calm page
// POST /paypal/webhook               PayPal's servers: believed only after verify-webhook-signature says SUCCESS
//                                     for PAYPAL_WEBHOOK_ID; the raw body is what is verified

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Checkout } from '../../ledger/types.ts'
import type { LedgerUnavailable } from '../../ledger/errors.ts'
import { formatDecimal } from '../../money.ts'
import { CaptureNotRecorded, checkoutIdOf, completeOrder, handleWebhookEvent, ledgerOutOfReach, type PayPalDeps, recordCancel } from '../../payments/paypal.ts'
import { payerOwns, userIdKindOf } from '../../payments/checkout.ts'
import { receiptStory } from '../../payments/receipt-story.ts'
import { isPayPalError } from '../../providers/paypal/errors.ts'
import { logLedgerBusy } from '../plugins/app/error-handler.ts'
import { parseWebhookEvent } from '../../providers/paypal/webhook.ts'
import { messagePage } from '../views/message.ts'
import { noReceiptPage, receiptPage } from '../views/receipt.ts'
import { payerOf } from '../plugins/identity.ts'
import { CHECKOUT_COOKIE } from './checkout.ts'

const MAX_WEBHOOK_BODY = 64 * 1024
const ID = /^[A-Za-z0-9_-]{1,64}$/

const BACK_QUERY = {
  type: 'object',
  properties: {
    token: { type: 'string', maxLength: 64 },
    ref: { type: 'string', maxLength: 64 },
    PayerID: { type: 'string', maxLength: 64 }
  }
} as const

interface BackRoute { Querystring: { token?: string, ref?: string, PayerID?: string } }

const paypal: FastifyPluginAsync = async (fastify) => {
  const { config, ledger, paypalDeps } = fastify
  const client = fastify.paypal
  if (paypalDeps === null || client === null) return
  const deps = (request: FastifyRequest): PayPalDeps => paypalDeps(request.log as unknown as Logger)

  const calm = (reply: FastifyReply, status: number, heading: string, message: string): FastifyReply =>
    reply.code(status).type('text/html; charset=utf-8').send(messagePage(config, { title: heading, heading, message, root: '../', linkHome: true, signOut: true }))

  const receipt = async (request: FastifyRequest, reply: FastifyReply, checkout: Checkout): Promise<FastifyReply> => {
    request.log.info({ event: 'receipt.shown', checkout: checkout.id, state: checkout.state }, `receipt for ${checkout.id}: ${checkout.state}`)
    return reply.type('text/html; charset=utf-8').send(receiptPage(config, checkout, '../', 'PayPal', await receiptStory(ledger, checkout, 'PayPal')))
  }

  /** The patron's own checkout for an order (read from PayPal: custom_id), or null after a 404 page. */
  const ownCheckout = async (request: FastifyRequest<BackRoute>, reply: FastifyReply, orderId: string): Promise<{ checkout: Checkout, order: Awaited<ReturnType<typeof client.getOrder>> } | null> => {
    const payer = payerOf(request.patron)
    const order = await client.withLogger(request.log as unknown as Logger).getOrder(orderId)
    const checkoutId = checkoutIdOf(order)
    const checkout = checkoutId === null || !ID.test(checkoutId) ? undefined : await ledger.getCheckout(checkoutId)
    if (checkout === undefined || !payerOwns(payer, checkout)) {
      if (checkout !== undefined) request.log.warn({ event: 'receipt.not_owner', checkout: checkout.id, order: orderId }, `PayPal order ${orderId} (checkout ${checkout.id}) brought back by another patron: nothing done`)
      else request.log.warn({ event: 'paypal.return_unknown', order: orderId }, `PayPal order ${orderId} is for no known checkout: nothing done`)
      await reply.code(404).type('text/html; charset=utf-8').send(noReceiptPage(config))
      return null
    }
    return { checkout, order }
  }

  /** The checkout id in the patron's signed checkout cookie, if any. */
  const fromCookie = (request: FastifyRequest): string | null => {
    const cookie = request.cookies[CHECKOUT_COOKIE]
    const unsigned = cookie === undefined ? null : request.unsignCookie(cookie)
    return unsigned?.valid === true ? unsigned.value : null
  }

  const unavailable = (request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply => {
    if (!isPayPalError(error)) throw error
    request.log.error({ event: 'paypal.unavailable', kind: error.kind, operation: error.operation, debugId: error.debugId || undefined }, `PayPal could not be asked: ${error.message}`)
    return calm(reply, 503, 'PayPal is not answering', 'We could not confirm your payment with PayPal just now. If you approved it, it will be completed and recorded as soon as PayPal answers; you do not need to pay again. Check your receipt again in a few minutes.')
  }

  /**
   * The ledger out of reach on the patron's way back from PayPal. Never "nothing was charged": PayPal may have taken
   * the money (CaptureNotRecorded says it did, and how much), and the open checkout holds no fees until it is recorded,
   * so a patron who believed nothing was taken would pay the same fees again. Reloading this page (the same order)
   * captures or records it once; so do PayPal's webhooks, sent again until answered.
   */
  const notRecorded = (request: FastifyRequest, reply: FastifyReply, error: LedgerUnavailable): FastifyReply => {
    if (error instanceof CaptureNotRecorded) {
      const { amount, currency } = error.collected
      return calm(reply.header('retry-after', '60').header('cache-control', 'no-store'), 503, 'Your payment is being recorded',
        `PayPal has taken your payment of ${formatDecimal(amount)} ${currency}, but we could not record it just now. It will be recorded and sent to the library as soon as we can: you do not need to pay again. Reload this page in a few minutes to see your receipt.`)
    }
    logLedgerBusy(config, request, error, '/paypal/return')
    return calm(reply.header('retry-after', '60').header('cache-control', 'no-store'), 503, 'Please try again in a moment',
      'We could not record your PayPal payment just now. If you approved it on PayPal, it will be completed and recorded as soon as we can: you do not need to pay again. Reload this page in a few minutes to see your receipt.')
  }

  fastify.get<BackRoute>('/paypal/return', { config: { access: 'patron', root: '../' }, schema: { querystring: BACK_QUERY } }, async (request, reply) => {
    const payer = payerOf(request.patron)
    const { token, ref } = request.query
    if (token === undefined || token === '') {
      // the receipt's own "check again" link, or the cookie: read from the ledger, no PayPal call
      const reference = ref ?? fromCookie(request)
      const checkout = reference !== null && ID.test(reference) ? await ledger.getCheckout(reference) : await ledger.latestCheckoutForUser(payer.username, userIdKindOf(payer))
      if (checkout === undefined || !payerOwns(payer, checkout)) return reply.code(404).type('text/html; charset=utf-8').send(noReceiptPage(config))
      return await receipt(request, reply, checkout)
    }
    if (!ID.test(token)) return calm(reply, 400, 'Please check the link', 'This link back from PayPal is not one we recognise. Open your fines page to see your payments.')
    let known: Checkout | null = null
    try {
      const own = await ownCheckout(request, reply, token)
      if (own === null) return reply
      const { checkout, order } = own
      known = checkout
      if (order.capture === null && (order.status === 'CREATED' || order.status === 'PAYER_ACTION_REQUIRED') && order.approveUrl !== null) {
        request.log.info({ event: 'paypal.not_approved', checkout: checkout.id, order: token }, `PayPal order ${token} not approved yet: patron sent back to approve it`)
        return reply.redirect(order.approveUrl, 303)
      }
      if (checkout.state === 'CREATED' || checkout.state === 'EXPIRED') {
        // superseded (its fees paid in a newer checkout): the receipt below says by which, and nothing was taken
        const done = await completeOrder(deps(request), token, checkout.id, 'return')
        if (done.kind === 'choose-again' || done.kind === 'not-approved') {
          if (done.approveUrl !== null) return reply.redirect(done.approveUrl, 303)
          return calm(reply, 409, 'Please choose another way to pay', 'PayPal could not take this payment. Nothing was charged. Go back to your fines and try again.')
        }
      }
      return await receipt(request, reply, await ledger.getCheckout(checkout.id) as Checkout)
    } catch (error) {
      if (ledgerOutOfReach(error)) return notRecorded(request, reply, error)
      // an answer PayPal gave that cannot be believed (a capture in another currency, say): the patron sees what
      // the ledger says (the verified webhook records the capture for staff); PayPal not answering: the calm page
      if (known === null && isPayPalError(error) && !error.retryable) {
        const cookie = fromCookie(request)
        const mine = cookie !== null && ID.test(cookie) ? await ledger.getCheckout(cookie) : undefined
        if (mine !== undefined && payerOwns(payer, mine)) known = mine
      }
      if (known !== null && isPayPalError(error) && !error.retryable) {
        request.log.error({ event: 'paypal.return_failed', checkout: known.id, kind: error.kind, debugId: error.debugId || undefined }, `PayPal return for checkout ${known.id}: ${error.message}`)
        return await receipt(request, reply, await ledger.getCheckout(known.id) as Checkout)
      }
      return unavailable(request, reply, error)
    }
  })

  fastify.get<BackRoute>('/paypal/cancel', { config: { access: 'patron', root: '../' }, schema: { querystring: BACK_QUERY } }, async (request, reply) => {
    const { token } = request.query
    if (token === undefined || !ID.test(token)) return calm(reply, 400, 'Payment cancelled', 'Nothing was charged. Open your fines page to pay another time.')
    try {
      const own = await ownCheckout(request, reply, token)
      if (own === null) return reply
      if (own.order.capture === null && await recordCancel({ ledger }, own.checkout.id, token)) {
        request.log.info({ event: 'paypal.cancelled', checkout: own.checkout.id, order: token }, `checkout ${own.checkout.id}: cancelled by the patron on PayPal`)
      }
      return await receipt(request, reply, await ledger.getCheckout(own.checkout.id) as Checkout)
    } catch (error) {
      return unavailable(request, reply, error)
    }
  })

  // The webhook: its own body parser keeps the raw body (what PayPal signed) beside nothing else.
  await fastify.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_WEBHOOK_BODY }, (_request, body, done) => { done(null, body) })
    scope.post('/paypal/webhook', { config: { access: 'public', rateLimit: { max: 600, timeWindow: '1 minute' } }, bodyLimit: MAX_WEBHOOK_BODY }, async (request, reply) => {
      const raw = typeof request.body === 'string' ? request.body : ''
      const webhookClient = client.withLogger(request.log as unknown as Logger)
      let verdict
      try {
        verdict = await webhookClient.verifyWebhookSignature(request.headers, raw, config.paypalWebhookId)
      } catch (error) {
        if (!isPayPalError(error)) throw error
        request.log.warn({ event: 'paypal.webhook_unverifiable', debugId: error.debugId || undefined }, `PayPal webhook not verified now (${error.message}): 503, PayPal delivers it again`)
        return await reply.code(503).type('text/plain; charset=utf-8').send('unavailable\n')
      }
      if (!verdict.verified) {
        request.log.warn({ event: 'paypal.webhook_refused', peer: request.ip, reason: verdict.reason }, `PayPal webhook refused with 400: ${verdict.reason}; nothing changed`)
        return await reply.code(400).type('text/plain; charset=utf-8').send('not verified\n')
      }
      const reading = parseWebhookEvent(raw)
      if (reading.kind === 'malformed') {
        request.log.warn({ event: 'paypal.webhook_malformed', reason: reading.reason }, `verified PayPal webhook not readable: ${reading.reason}; nothing changed`)
        return await reply.code(400).type('text/plain; charset=utf-8').send('unreadable\n')
      }
      if (reading.kind === 'ignored') {
        request.log.info({ event: 'paypal.webhook_ignored', eventId: reading.eventId, type: reading.eventType }, `PayPal webhook ${reading.eventType} acknowledged, not acted on`)
        return await reply.code(200).type('text/plain; charset=utf-8').send('OK\n')
      }
      const outcome = await handleWebhookEvent(deps(request), reading.event)
      request.log.info({ event: 'paypal.webhook', eventId: reading.event.eventId, type: reading.event.type, what: outcome.what }, `PayPal webhook ${reading.event.type} ${reading.event.eventId}: ${outcome.what}`)
      return await reply.code(outcome.status).type('text/plain; charset=utf-8').send(outcome.status === 200 ? 'OK\n' : 'unavailable\n')
    })
  })
}

export default paypal
