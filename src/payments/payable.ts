// Which of a patron's fees may be paid online: the same rule for the fines page and for the checkout.

import type { Fee } from '../alma/types.ts'
import type { Checkout } from '../ledger/types.ts'

export interface PayableRules {
  currency: string
  payableFeeTypes: ReadonlySet<string>
  payableOwners: ReadonlySet<string>
}

export type NotPayableReason =
  | 'credit' | 'nothing-due' | 'being-recorded' | 'staff-checking' | 'provider-reviewing' | 'currency' | 'fee-type' | 'owner' | 'not-active'

/** Why a fee already in a payment is not sold again (a NotPayableReason). */
export type InProgressReason = 'being-recorded' | 'staff-checking' | 'provider-reviewing'

/**
 * Fees already paid through this service and not yet recorded in Alma, by fee id: a PAID checkout's fee is being
 * recorded (Alma slow or down); a fee in a NEEDS_ATTENTION checkout staff have not settled waits for staff; a fee in
 * a CREATED or EXPIRED checkout whose provider holds the money for review (a PayPal capture PENDING: reviewTx)
 * waits for the provider's decision, which may still take the money. Selling any of them again could charge the
 * patron twice. Only lines not yet posted count: a posted line's fee is Alma's again. Any other CREATED, DECLINED,
 * CANCELLED or EXPIRED checkout took no money and holds nothing.
 */
export type FeesInProgress = ReadonlyMap<string, InProgressReason>

/** Which news the patron hears first when one fee is in several payments: the less hopeful. */
const RANK: Record<InProgressReason, number> = { 'being-recorded': 0, 'provider-reviewing': 1, 'staff-checking': 2 }

/** Why a checkout holds its fees, or null when it holds none. */
export function inProgressReason (checkout: Checkout): InProgressReason | null {
  if (checkout.state === 'PAID') return 'being-recorded'
  if (checkout.state === 'NEEDS_ATTENTION' && checkout.resolvedAt === null) return 'staff-checking'
  if ((checkout.state === 'CREATED' || checkout.state === 'EXPIRED') && checkout.reviewTx !== null) return 'provider-reviewing'
  return null
}

export function feesInProgress (payments: readonly Checkout[]): FeesInProgress {
  const held = new Map<string, InProgressReason>()
  for (const checkout of payments) {
    const reason = inProgressReason(checkout)
    if (reason === null) continue
    for (const line of checkout.lines) {
      const before = held.get(line.feeId)
      if (line.postedAt === null && (before === undefined || RANK[reason] > RANK[before])) held.set(line.feeId, reason)
    }
  }
  return held
}

export function whyNotPayable (fee: Fee, rules: PayableRules, inProgress: FeesInProgress = new Map()): NotPayableReason | null {
  if (fee.status.code !== '' && fee.status.code !== 'ACTIVE') return 'not-active'
  if (fee.balance < 0) return 'credit'
  if (fee.balance === 0) return 'nothing-due'
  const held = inProgress.get(fee.id)
  if (held !== undefined) return held
  if (fee.currency !== '' && fee.currency.toUpperCase() !== rules.currency) return 'currency'
  if (rules.payableFeeTypes.size > 0 && !rules.payableFeeTypes.has(fee.type.code.toUpperCase())) return 'fee-type'
  if (rules.payableOwners.size > 0 && !rules.payableOwners.has(fee.owner.code.toUpperCase())) return 'owner'
  return null
}

export const NOT_PAYABLE_TEXT: Record<NotPayableReason, string> = {
  credit: 'Credit on your account',
  'nothing-due': 'Nothing due',
  'being-recorded': 'Payment received, being recorded',
  'staff-checking': 'Library staff are checking the payment for this fee: please contact the library',
  'provider-reviewing': 'PayPal is reviewing the payment',
  currency: 'Pay at the library (not in the online currency)',
  'fee-type': 'Pay at the library',
  owner: 'Pay at the owning library',
  'not-active': 'Not payable'
}
