// PayPal behind the provider seam: starting a payment creates the order (one item per fee, PayPal-Request-Id =
// checkout id, so creating twice gives the same order) and sends the browser to its approval link, which must be
// on PayPal's approval origin for the configured API (never anywhere else). What PayPal sends back (the browser's
// return, verified webhooks) is read by src/payments/paypal.ts through the client.

import type { Checkout } from '../../ledger/types.ts'
import type { Collected, PaymentProvider, PaymentStart, StartContext } from '../provider.ts'
import type { PayPalCapture, PayPalClient } from './client.ts'
import { PayPalError } from './errors.ts'

/**
 * The origin PayPal's approval pages are on, for an API base URL: live api-m.paypal.com approves on
 * www.paypal.com, the sandbox on www.sandbox.paypal.com, a stand-in on its own origin.
 */
export function approvalOrigin (apiUrl: string): string {
  const url = new URL(apiUrl)
  if (url.hostname === 'api-m.paypal.com' || url.hostname === 'api.paypal.com') return 'https://www.paypal.com'
  if (url.hostname === 'api-m.sandbox.paypal.com' || url.hostname === 'api.sandbox.paypal.com') return 'https://www.sandbox.paypal.com'
  return url.origin
}

/** A capture as the payment rules see it. */
export function collectedFrom (capture: PayPalCapture, fallbackCheckoutId: string | null): Collected {
  const status = capture.status === 'COMPLETED' || capture.status === 'PARTIALLY_REFUNDED' || capture.status === 'REFUNDED'
    ? 'COMPLETED'
    : capture.status === 'PENDING' ? 'PENDING' : 'DECLINED'
  return {
    provider: 'paypal',
    checkoutId: capture.customId ?? capture.invoiceId ?? fallbackCheckoutId,
    tx: capture.id,
    status,
    amount: capture.amount,
    currency: capture.currency,
    detail: capture.statusReason,
    ...(capture.status === 'REFUNDED' || capture.status === 'PARTIALLY_REFUNDED' ? { refunded: capture.status } : {})
  }
}

export class PayPalProvider implements PaymentProvider {
  readonly name = 'paypal' as const
  readonly payOrigins: readonly string[]
  constructor (readonly client: PayPalClient, apiUrl: string) {
    this.payOrigins = [approvalOrigin(apiUrl)]
  }

  async start (checkout: Checkout, context: StartContext): Promise<PaymentStart> {
    const order = await this.client.createOrder(checkout, {
      returnUrl: `${context.publicUrl}/paypal/return`,
      cancelUrl: `${context.publicUrl}/paypal/cancel`,
      brandName: context.brandName
    })
    if (order.approveUrl === null) throw new PayPalError('BAD_RESPONSE', 'createOrder', 200, 'NO_APPROVAL_LINK', order.debugId, `order ${order.id} is ${order.status}, nothing to approve`)
    if (!this.payOrigins.includes(new URL(order.approveUrl).origin)) {
      throw new PayPalError('BAD_RESPONSE', 'createOrder', 200, 'APPROVAL_ORIGIN', order.debugId, `order ${order.id} approval link is not on ${this.payOrigins.join(', ')}`)
    }
    return { kind: 'redirect', url: order.approveUrl, order: order.id }
  }
}
