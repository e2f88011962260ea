// POST /checkout: the patron's chosen fee ids (CSRF-protected) become a CREATED checkout, and the payment
// provider starts the payment: for CashNet a page that hands the browser to the store with the checkout form, for
// PayPal a redirect to the order's approval page.

import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { isPayPalError } from '../../providers/paypal/errors.ts'
import { CheckoutRefused, closeForRevokedLink, startCheckout, userIdKindOf, type Payer } from '../../payments/checkout.ts'
import { recoverBeforeCheckout, rememberOrder } from '../../payments/paypal.ts'
import { messagePage } from '../views/message.ts'
import { handoffPage } from '../views/handoff.ts'
import { baseUrlFor, cookiePathFor, payerOf } from '../plugins/identity.ts'

export const CHECKOUT_COOKIE = 'acn_checkout'

/** PayPal: a capture of the payer's own open checkout for these fees whose record never arrived is recorded first. */
async function recoverEarlierCaptures (fastify: FastifyInstance, request: FastifyRequest, payer: Payer, feeIds: readonly string[]): Promise<void> {
  if (fastify.paypalDeps === null) return
  await recoverBeforeCheckout(fastify.paypalDeps(request.log as unknown as Logger), { userId: payer.username, userIdKind: userIdKindOf(payer) }, feeIds.map(id => id.trim()), new Date())
}

/** The pay form: the fee checkboxes (one `fee` field per ticked fee) and the CSRF token. */
const CHECKOUT_FORM = {
  type: 'object',
  properties: {
    // a single ticked fee arrives as one string; Fastify's validator makes it a list of one
    fee: { type: 'array', items: { type: 'string' }, default: [] },
    _csrf: { type: 'string' }
  }
} as const

/**
 * PARTIAL_PAYMENTS: the `amount_<fee id>` fields of the ticked fees (an amount for a fee not ticked is not a
 * payment). A field sent twice is refused rather than one of its values chosen.
 */
function partAmounts (body: Record<string, unknown>, feeIds: readonly string[]): Map<string, string> {
  const parts = new Map<string, string>()
  for (const id of feeIds) {
    const value = body[`amount_${id.trim()}`]
    if (value === undefined) continue
    if (typeof value !== 'string') throw new CheckoutRefused('bad-amount', 'Please enter one amount for each fee you pay.')
    parts.set(id.trim(), value)
  }
  return parts
}

const checkout: FastifyPluginAsync = async (fastify) => {
  const { config, ledger } = fastify
  const rules = { ...config, itemCode: config.cashnetItemCode, itemCodes: config.cashnetItemCodes }
  fastify.post<{ Body: { fee: string[], _csrf?: string } & Record<string, unknown> }>('/checkout', {
    config: { access: 'patron', root: './', badInput: { heading: 'Please check your selection', message: 'Choose at least one fee to pay.', linkHome: true } },
    schema: { body: CHECKOUT_FORM },
    // preValidation: a forged or stale form is refused as such (403) whatever shape its fields have
    preValidation: fastify.csrfProtection
  }, async (request, reply) => {
    const payer = payerOf(request.patron)
    const username = payer.username
    const feeIds = request.body.fee
    try {
      const parts = config.partialPayments ? partAmounts(request.body, feeIds) : new Map<string, string>()
      await recoverEarlierCaptures(fastify, request, payer, feeIds)
      const created = await startCheckout({ alma: request.alma, ledger, rules, provider: fastify.paymentProvider.name }, payer, feeIds, parts)
      const partial = created.lines.filter(l => l.balance != null && l.amount < l.balance).length
      request.log.info({ event: 'checkout.created', checkout: created.id, total: created.total, lines: created.lines.length, ...(partial > 0 ? { partial } : {}) }, `checkout ${created.id} created for ${username}: ${created.lines.length} fee(s)${partial > 0 ? `, ${partial} paid in part` : ''}`)
      reply.setCookie(CHECKOUT_COOKIE, created.id, { signed: true, httpOnly: true, secure: config.secureCookies, sameSite: 'lax', path: cookiePathFor(request.patron, config), maxAge: 2 * 24 * 3600 })
      // a pay-link patron's session cookie lives on PAY_LINK_URL: the provider sends them back there, not through EZproxy
      const start = await fastify.paymentProvider.start(created, { publicUrl: baseUrlFor(request.patron, config), brandName: config.libraryName })
      // remembered before the patron is sent to approve it: the sweep asks PayPal about it if its capture's record never arrives
      if (start.kind === 'redirect' && start.order !== undefined) await rememberOrder(ledger, created.id, start.order)
      // the pay link revoked while this checkout was being started: once the revoke is answered nobody is sent to pay
      if (await fastify.payLinkRevokedSince(request)) {
        const closed = await closeForRevokedLink(ledger, created.id, request.patron?.payLink ?? '')
        return fastify.refusePayLinkRevoked(request, reply, `the pay link was revoked while checkout ${created.id} was being started: not sent to ${fastify.paymentProvider.name}${closed ? ', CANCELLED' : ''}`)
      }
      if (start.kind === 'redirect') {
        request.log.info({ event: 'checkout.redirect', checkout: created.id, provider: fastify.paymentProvider.name }, `checkout ${created.id}: browser sent to ${new URL(start.url).origin} to approve`)
        return reply.redirect(start.url, 303)
      }
      return reply.type('text/html; charset=utf-8').send(handoffPage(config, created, start.action, start.fields))
    } catch (error) {
      if (isPayPalError(error)) {
        // the checkout stays CREATED (it expires); nothing was taken
        request.log.error({ event: 'checkout.provider_failed', kind: error.kind, debugId: error.debugId || undefined }, `checkout for ${username} could not be started: ${error.message}`)
        return reply.code(503).type('text/html; charset=utf-8')
          .send(messagePage(config, { title: 'Payment service unavailable', heading: 'The payment service is not answering', message: 'Nothing was charged. Please try again in a few minutes.', linkHome: true, signOut: true }))
      }
      if (!(error instanceof CheckoutRefused)) throw error
      request.log.info({ event: 'checkout.refused', reason: error.reason, fees: feeIds.slice(0, 20) }, `checkout refused for ${username}: ${error.reason}`)
      return reply.code(error.reason === 'unknown-fee' || error.reason === 'in-progress' ? 409 : 400).type('text/html; charset=utf-8')
        .send(messagePage(config, { title: 'Please check your selection', heading: 'Please check your selection', message: error.message, linkHome: true, signOut: true }))
    }
  })
}

export default checkout
