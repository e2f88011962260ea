// Which of a patron's fees may be paid online: the same rule for the fines page and for the checkout.

import type { Fee } from '../alma/types.ts'
import type { Checkout } from '../ledger/types.ts'

export interface PayableRules {
  currency: string
  payableFeeTypes: ReadonlySet<string>
  payableOwners: ReadonlySet<string>
}

export type NotPayableReason =
  | 'credit' | 'nothing-due' | 'being-recorded' | 'staff-checking' | 'currency' | 'fee-type' | 'owner' | 'not-active'

/**
 * Fees already paid through this service and not yet recorded in Alma, by fee id: a PAID checkout's fee is being
 * recorded (Alma slow or down); a fee in a NEEDS_ATTENTION checkout staff have not settled waits for staff. Selling
 * either again would charge the patron twice. Only lines not yet posted count: a posted line's fee is Alma's again.
 * A CREATED, DECLINED, CANCELLED or EXPIRED checkout took no money and holds nothing.
 */
export type FeesInProgress = ReadonlyMap<string, 'being-recorded' | 'staff-checking'>

export function feesInProgress (payments: readonly Checkout[]): FeesInProgress {
  const held = new Map<string, 'being-recorded' | 'staff-checking'>()
  for (const checkout of payments) {
    const reason = checkout.state === 'PAID'
      ? 'being-recorded'
      : checkout.state === 'NEEDS_ATTENTION' && checkout.resolvedAt === null ? 'staff-checking' : null
    if (reason === null) continue
    for (const line of checkout.lines) {
      // staff checking outranks "being recorded": the patron should hear the less hopeful news
      if (line.postedAt === null && held.get(line.feeId) !== 'staff-checking') held.set(line.feeId, reason)
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
  currency: 'Pay at the library (not in the online currency)',
  'fee-type': 'Pay at the library',
  owner: 'Pay at the owning library',
  'not-active': 'Not payable'
}
