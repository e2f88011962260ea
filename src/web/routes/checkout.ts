// POST /checkout: the patron's chosen fee ids (CSRF-protected) become a CREATED checkout, and the answer is a
// page that hands the patron's browser to CashNet with the checkout form.

import type { FastifyPluginAsync } from 'fastify'
import { checkoutFormFields } from '../../cashnet/checkout-form.ts'
import { CheckoutRefused, startCheckout } from '../../payments/checkout.ts'
import { messagePage } from '../views/message.ts'
import { handoffPage } from '../views/handoff.ts'

export const CHECKOUT_COOKIE = 'acn_checkout'

const checkout: FastifyPluginAsync = async (fastify) => {
  const { config, ledger } = fastify
  const rules = { ...config, itemCode: config.cashnetItemCode, itemCodes: config.cashnetItemCodes }
  fastify.post('/checkout', {
    config: { access: 'patron', root: './' },
    preHandler: fastify.csrfProtection
  }, async (request, reply) => {
    const username = (request.patron as { username: string }).username
    const body = (request.body ?? {}) as Record<string, unknown>
    const raw = body.fee
    const feeIds = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((v): v is string => typeof v === 'string')
    try {
      const created = await startCheckout({ alma: request.alma, ledger, rules }, username, feeIds)
      request.log.info({ event: 'checkout.created', checkout: created.id, total: created.total, lines: created.lines.length }, `checkout ${created.id} created for ${username}: ${created.lines.length} fee(s)`)
      reply.setCookie(CHECKOUT_COOKIE, created.id, { signed: true, httpOnly: true, secure: config.secureCookies, sameSite: 'lax', path: '/', maxAge: 2 * 24 * 3600 })
      const fields = checkoutFormFields(created, { refType: config.cashnetRefType, signoutUrl: `${config.publicUrl}/cashnet/return` })
      return reply.type('text/html; charset=utf-8').send(handoffPage(config, created, config.cashnetCheckoutUrl, fields))
    } catch (error) {
      if (!(error instanceof CheckoutRefused)) throw error
      request.log.info({ event: 'checkout.refused', reason: error.reason, fees: feeIds.slice(0, 20) }, `checkout refused for ${username}: ${error.reason}`)
      return reply.code(error.reason === 'unknown-fee' || error.reason === 'in-progress' ? 409 : 400).type('text/html; charset=utf-8')
        .send(messagePage(config, { title: 'Please check your selection', heading: 'Please check your selection', message: error.message, linkHome: true, signOut: true }))
    }
  })
}

export default checkout
