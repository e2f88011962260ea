// The payment provider of this deployment (PAYMENT_PROVIDER): CashNet's checkout form, or PayPal's orders through
// one PayPal client for the process (its OAuth token is shared and renewed shortly before it expires).

import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { CashnetProvider } from '../../../providers/cashnet/provider.ts'
import { PayPalClient } from '../../../providers/paypal/client.ts'
import { PayPalProvider } from '../../../providers/paypal/provider.ts'
import type { PaymentProvider } from '../../../providers/provider.ts'

declare module 'fastify' {
  interface FastifyInstance {
    paymentProvider: PaymentProvider
    /** the PayPal client of a PayPal deployment; null for CashNet */
    paypal: PayPalClient | null
  }
}

export default fp(async function paymentProvider (fastify) {
  const { config } = fastify
  if (config.paymentProvider === 'paypal') {
    const client = new PayPalClient({
      baseUrl: config.paypalApiUrl,
      clientId: config.paypalClientId,
      clientSecret: config.paypalClientSecret,
      timeoutMs: config.almaTimeoutMs,
      logger: (fastify.log as unknown as Logger).child({ component: 'paypal' })
    })
    fastify.decorate('paypal', client)
    fastify.decorate('paymentProvider', new PayPalProvider(client, config.paypalApiUrl))
  } else {
    fastify.decorate('paypal', null)
    fastify.decorate('paymentProvider', new CashnetProvider({ checkoutUrl: config.cashnetCheckoutUrl, refType: config.cashnetRefType }))
  }
}, { name: 'payment-provider', dependencies: ['config'] })
