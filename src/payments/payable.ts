// Which of a patron's fees may be paid online: the same rule for the fines page and for the checkout.

import type { Fee } from '../alma/types.ts'

export interface PayableRules {
  currency: string
  payableFeeTypes: ReadonlySet<string>
  payableOwners: ReadonlySet<string>
}

export type NotPayableReason = 'credit' | 'nothing-due' | 'currency' | 'fee-type' | 'owner' | 'not-active'

export function whyNotPayable (fee: Fee, rules: PayableRules): NotPayableReason | null {
  if (fee.status.code !== '' && fee.status.code !== 'ACTIVE') return 'not-active'
  if (fee.balance < 0) return 'credit'
  if (fee.balance === 0) return 'nothing-due'
  if (fee.currency !== '' && fee.currency.toUpperCase() !== rules.currency) return 'currency'
  if (rules.payableFeeTypes.size > 0 && !rules.payableFeeTypes.has(fee.type.code.toUpperCase())) return 'fee-type'
  if (rules.payableOwners.size > 0 && !rules.payableOwners.has(fee.owner.code.toUpperCase())) return 'owner'
  return null
}

export const NOT_PAYABLE_TEXT: Record<NotPayableReason, string> = {
  credit: 'Credit on your account',
  'nothing-due': 'Nothing due',
  currency: 'Pay at the library (not in the online currency)',
  'fee-type': 'Pay at the library',
  owner: 'Pay at the owning library',
  'not-active': 'Not payable'
}
