// GET and POST /cashnet/return: CashNet sends the browser here (signouturl). The receipt comes from the
// ledger, for this patron's own checkout only; the redirect's result fields are never believed.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { payerOwns, userIdKindOf } from '../../payments/checkout.ts'
import { receiptStory } from '../../payments/receipt-story.ts'
import { findReference, normaliseFields } from '../../providers/cashnet/postback.ts'
import { PROVIDER_LABEL } from '../../providers/provider.ts'
import { noReceiptPage, receiptPage } from '../views/receipt.ts'
import { payerOf } from '../plugins/identity.ts'
import { CHECKOUT_COOKIE } from './checkout.ts'

/**
 * CashNet's redirect (GET query or POST form): its result fields beside our reference (refXtypeN/refXvalN, or
 * the `ref` of our own links), any of them possibly sent twice. They are read only to find the reference; a
 * patron who has just paid is never refused a receipt for the shape of CashNet's fields.
 */
const CASHNET_FIELDS = {
  type: 'object',
  additionalProperties: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] }
} as const

type CashnetFields = Record<string, string | string[]>

interface ReturnRoute { Querystring: CashnetFields, Body: CashnetFields | undefined }

const receipt: FastifyPluginAsync = async (fastify) => {
  const { config, ledger } = fastify

  const referenceFrom = (request: FastifyRequest<ReturnRoute>): string | null => {
    const fields = { ...request.query, ...request.body }
    try {
      const normalised = normaliseFields(fields)
      const fromCashnet = findReference(normalised, config.cashnetRefType)
      if (fromCashnet !== null) return fromCashnet
      const ref = normalised.get('ref')
      if (ref !== undefined && ref !== '') return ref
    } catch {
      // unreadable fields: fall back to the cookie and the patron's latest checkout
    }
    const cookie = request.cookies[CHECKOUT_COOKIE]
    const unsigned = cookie === undefined ? null : request.unsignCookie(cookie)
    return unsigned?.valid === true ? unsigned.value : null
  }

  const show = async (request: FastifyRequest<ReturnRoute>, reply: FastifyReply): Promise<FastifyReply> => {
    const payer = payerOf(request.patron)
    const reference = referenceFrom(request)
    const checkout = reference !== null && /^[A-Za-z0-9_-]{1,64}$/.test(reference)
      ? await ledger.getCheckout(reference)
      : await ledger.latestCheckoutForUser(payer.username, userIdKindOf(payer))
    reply.type('text/html; charset=utf-8')
    if (checkout === undefined || !payerOwns(payer, checkout)) {
      if (checkout !== undefined) request.log.warn({ event: 'receipt.not_owner', checkout: checkout.id }, `receipt for ${checkout.id} asked for by another patron`)
      return reply.code(404).send(noReceiptPage(config))
    }
    request.log.info({ event: 'receipt.shown', checkout: checkout.id, state: checkout.state }, `receipt for ${checkout.id}: ${checkout.state}`)
    const provider = PROVIDER_LABEL[checkout.provider] ?? 'CashNet'
    return reply.send(receiptPage(config, checkout, '../', provider, await receiptStory(ledger, checkout, provider)))
  }

  fastify.get<ReturnRoute>('/cashnet/return', { config: { access: 'patron', root: '../' }, schema: { querystring: CASHNET_FIELDS } }, show)
  fastify.post<ReturnRoute>('/cashnet/return', {
    config: { access: 'patron', root: '../' },
    bodyLimit: 32 * 1024,
    schema: {
      querystring: CASHNET_FIELDS,
      // by media type: a POST without a body is not validated as an empty form
      body: { content: { 'application/x-www-form-urlencoded': { schema: CASHNET_FIELDS } } }
    }
  }, show)
}

export default receipt
