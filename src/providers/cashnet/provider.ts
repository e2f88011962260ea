// CashNet behind the provider seam: starting a payment is the checkout form (SPEC 5) the browser posts to the
// store; what CashNet sends back is the postback (postback.ts, read by src/payments/record-postback.ts).

import type { Checkout } from '../../ledger/types.ts'
import type { PaymentProvider, PaymentStart, StartContext } from '../provider.ts'
import { checkoutFormFields } from './checkout-form.ts'

export interface CashnetSettings {
  checkoutUrl: string
  refType: string
}

export class CashnetProvider implements PaymentProvider {
  readonly name = 'cashnet' as const
  readonly payOrigins: readonly string[]
  constructor (readonly settings: CashnetSettings) {
    this.payOrigins = [new URL(settings.checkoutUrl).origin]
  }

  async start (checkout: Checkout, context: StartContext): Promise<PaymentStart> {
    const fields = checkoutFormFields(checkout, { refType: this.settings.refType, signoutUrl: `${context.publicUrl}/cashnet/return` })
    return { kind: 'form', action: this.settings.checkoutUrl, fields }
  }
}
