// The seam between the payment rules and the company that takes the money. A provider starts a payment for a
// checkout (CashNet: a form the browser posts to its store; PayPal: an order, and the browser sent to approve it),
// recognises and verifies what it sends back (src/providers/*/), and says what was collected, under which
// transaction id, for which checkout (a Collected). Everything after PAID (posting, retries, attention, receipts,
// reconcile, GL) is the same for every provider and knows only the provider's name.

import { type Checkout, CHECKOUT_PROVIDERS, type CheckoutProvider, PROVIDER_LABEL } from '../ledger/types.ts'
import type { Cents } from '../money.ts'

/** The ledger records which of these took a checkout's money (Checkout.provider). */
export const PAYMENT_PROVIDERS = CHECKOUT_PROVIDERS
export type ProviderName = CheckoutProvider

/** How patrons and staff see the provider named (kept with the checkout's vocabulary, for the ledger's words too). */
export { PROVIDER_LABEL }

/** What the browser does next to pay. */
export type PaymentStart =
  /** an auto-submitting form to the provider's hosted page (works without JavaScript: a button) */
  | { kind: 'form', action: string, fields: Array<[string, string]> }
  /** a redirect to the provider's approval page */
  | { kind: 'redirect', url: string, /** the provider's id of what the patron approves (a PayPal order): remembered on the checkout */ order?: string }

/** Where the provider sends the browser back, and the name its page shows. */
export interface StartContext {
  /** the base of every URL the provider sends the browser back to: PUBLIC_URL, or PAY_LINK_URL for a pay-link session */
  publicUrl: string
  brandName: string
}

/**
 * What a provider reported collected for a checkout, in the provider's own words turned into values: the rules
 * (src/payments/capture-rules.ts for PayPal, postback-rules.ts for CashNet) compare it with the checkout.
 */
export interface Collected {
  provider: ProviderName
  /** our checkout id as the provider carried it; null when it carried none */
  checkoutId: string | null
  /** the provider's transaction id: sent to Alma as external_transaction_id */
  tx: string
  /** COMPLETED: the money is taken; PENDING: held for review; DECLINED: refused at capture */
  status: 'COMPLETED' | 'PENDING' | 'DECLINED'
  amount: Cents
  currency: string
  /** the provider's reason or message, '' when none */
  detail: string
  /**
   * The provider has since given some or all of it back (PayPal's REFUNDED or PARTIALLY_REFUNDED, which a capture
   * can be by the time it is read again: a review's outcome asked for long after its webhooks were lost).
   */
  refunded?: 'REFUNDED' | 'PARTIALLY_REFUNDED'
}

export interface PaymentProvider {
  readonly name: ProviderName
  /** the origins the browser is sent to in order to pay (the CSP's form-action) */
  readonly payOrigins: readonly string[]
  /** Starts the payment of a recorded CREATED checkout. */
  start (checkout: Checkout, context: StartContext): Promise<PaymentStart>
}
