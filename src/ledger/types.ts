// The ledger's vocabulary: checkouts and their lines, the postbacks received, the Alma calls made while
// posting, and the audit events written with every state change.

import type { Cents } from '../money.ts'

export const CHECKOUT_STATES = ['CREATED', 'PAID', 'POSTED', 'DECLINED', 'CANCELLED', 'EXPIRED', 'NEEDS_ATTENTION'] as const
export type CheckoutState = typeof CHECKOUT_STATES[number]

export interface CheckoutLine {
  lineNo: number
  feeId: string
  feeType: string
  feeTypeDesc: string
  owner: string
  ownerDesc: string
  title: string
  itemCode: string
  amount: Cents
  /** what Alma accepted for this line; null until posted. Less than amount means money left unapplied. */
  postedAmount: Cents | null
  postedAt: string | null
}

export interface Checkout {
  id: string
  /** the username EZproxy sent */
  userId: string
  /** Alma's primary id, sent to CashNet as custcode */
  primaryId: string
  patronName: string
  email: string
  state: CheckoutState
  total: Cents
  currency: string
  createdAt: string
  updatedAt: string
  paidAt: string | null
  postedAt: string | null
  tx: string | null
  batchno: string | null
  effdate: string | null
  pmtcode: string | null
  attentionReason: string | null
  unapplied: Cents
  attempts: number
  nextAttemptAt: string | null
  lastError: string | null
  /** when, by whom and how staff settled a NEEDS_ATTENTION payment; cleared if it needs attention again */
  resolvedAt: string | null
  resolvedBy: string | null
  resolution: string | null
  lines: CheckoutLine[]
}

export interface NewCheckout {
  id: string
  userId: string
  primaryId: string
  patronName: string
  email: string
  currency: string
  lines: Array<Omit<CheckoutLine, 'postedAmount' | 'postedAt'>>
}

export type PostbackOutcome =
  | 'PAID' | 'DUPLICATE' | 'DECLINED' | 'CANCELLED' | 'MISMATCH' | 'DOUBLE_CHARGE' | 'ORPHAN' | 'REJECTED' | 'LATE_FAILURE'

export interface PostbackRecord {
  id: number
  checkoutId: string | null
  receivedAt: string
  peer: string
  result: string
  tx: string
  outcome: PostbackOutcome
  reason: string
  rawBody: string
}

/** What the postback rules decided, applied by the ledger in the same transaction as the record. */
export interface PostbackDecision {
  outcome: PostbackOutcome
  reason: string
  /** state change of the checkout, if any */
  to?: CheckoutState
  payment?: { tx: string, batchno: string, effdate: string, pmtcode: string }
}

export interface IncomingPostback {
  checkoutId: string | null
  peer: string
  result: string
  tx: string
  rawBody: string
}

export interface AlmaCallEntry {
  id: number
  checkoutId: string
  at: string
  method: string
  path: string
  status: number
  errorCode: string
  errorMessage: string
  trackingId: string
  durationMs: number
}

export interface AuditEvent {
  id: number
  checkoutId: string | null
  at: string
  event: string
  fromState: string | null
  toState: string | null
  detail: string
}

export interface CheckoutHistory {
  checkout: Checkout
  postbacks: PostbackRecord[]
  almaCalls: AlmaCallEntry[]
  events: AuditEvent[]
}

export interface CheckoutFilter {
  states?: CheckoutState[]
  /** patron username or primary id, CashNet tx or checkout id */
  search?: string
  /** only payments not yet settled by staff */
  unresolved?: boolean
  limit?: number
  offset?: number
}
