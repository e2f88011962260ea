// What a receipt page tells about one checkout beyond its state, decided here for every route that shows one
// (/cashnet/return, /paypal/return): the money the provider reported against what was due, and, for a PayPal
// checkout closed uncaptured because its fees were paid in a newer checkout (superseded), which checkout that was
// and whether it was paid, as the ledger says now. Never "you cancelled", never "paid" for a replacement not paid.

import type { Ledger } from '../ledger/ledger.ts'
import type { Checkout, CheckoutState } from '../ledger/types.ts'
import { replacementsOf } from './paypal.ts'
import { type ReceivedMoney, receivedFor } from './receipts.ts'

export interface SupersededNotice {
  heading: string
  message: string
  /** the checkouts that replaced this one, and their states now */
  replacedBy: Array<{ id: string, state: CheckoutState }>
  /** every replacement took the money (PAID, POSTED, NEEDS_ATTENTION): the fees need not be paid again */
  feesPaid: boolean
}

export interface ReceiptStory {
  /** what the provider reported collecting against what was due; absent when the ledger has no money record */
  money?: ReceivedMoney
  /** set for a checkout closed without a capture because a newer checkout paid (or holds) its fees */
  superseded?: SupersededNotice
}

const PAID_STATES: ReadonlySet<CheckoutState> = new Set(['PAID', 'POSTED', 'NEEDS_ATTENTION'])

/** A replacement as the patron reads it, after "reference X, ". */
function replacementInWords (checkout: Checkout, provider: string): string {
  if ((checkout.state === 'CREATED' || checkout.state === 'EXPIRED') && checkout.reviewTx !== null) return `which ${provider} is still reviewing (nothing is taken until it accepts it)`
  switch (checkout.state) {
    case 'POSTED': return 'which was paid and recorded on your library account'
    case 'PAID': return 'which was paid; your library account is being updated'
    case 'NEEDS_ATTENTION': return 'which was paid; library staff are finishing recording it'
    case 'CREATED': return 'which has not been completed yet'
    default: return 'which was not completed either, so nothing was taken in it'
  }
}

/** The words for a superseded checkout, from the checkouts that replaced it as they stand now. */
export function supersededNotice (replacedBy: readonly Checkout[], provider: string): SupersededNotice {
  const feesPaid = replacedBy.length > 0 && replacedBy.every(c => PAID_STATES.has(c.state))
  const named = replacedBy.map(c => `reference ${c.id}, ${replacementInWords(c, provider)}`).join('; ')
  const which = replacedBy.length === 0 ? 'another payment' : replacedBy.length === 1 ? `another payment: ${named}` : `other payments: ${named}`
  return feesPaid
    ? {
        heading: 'These fees were paid in another payment',
        message: `You approved this ${provider} payment, but before ${provider} was asked to take it, its fees were paid in ${which}. Nothing was charged for this payment, and you do not need to pay these fees again.`,
        replacedBy: replacedBy.map(c => ({ id: c.id, state: c.state })),
        feesPaid
      }
    : {
        heading: 'This payment was replaced by another one',
        message: `You approved this ${provider} payment, but before ${provider} was asked to take it, its fees were included in ${which}. Nothing was charged for this payment. Your fines page shows what you owe now.`,
        replacedBy: replacedBy.map(c => ({ id: c.id, state: c.state })),
        feesPaid
      }
}

/** What the receipt of this checkout tells, read from the ledger. `provider`: as patrons know it (PayPal). */
export async function receiptStory (ledger: Pick<Ledger, 'moneyRecord' | 'history' | 'getCheckout'>, checkout: Checkout, provider: string): Promise<ReceiptStory> {
  const story: ReceiptStory = {}
  const record = await ledger.moneyRecord(checkout.id)
  if (record !== undefined) story.money = receivedFor(record)
  // only a CANCELLED checkout was closed as superseded with nothing taken; one captured since tells its money
  if (checkout.state === 'CANCELLED') {
    const replacedBy = await replacementsOf(ledger, checkout.id)
    if (replacedBy !== null) story.superseded = supersededNotice(replacedBy, provider)
  }
  return story
}
