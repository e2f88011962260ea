// The ledger's vocabulary: checkouts and their lines, the postbacks received, the Alma calls made while
// posting, and the audit events written with every state change.

import type { Cents } from '../money.ts'

export const CHECKOUT_STATES = ['CREATED', 'PAID', 'POSTED', 'DECLINED', 'CANCELLED', 'EXPIRED', 'NEEDS_ATTENTION'] as const
export type CheckoutState = typeof CHECKOUT_STATES[number]

/**
 * Why a checkout needs a person, as data: the staff actions that are safe depend on it (src/payments/staff-actions.ts).
 * MISMATCH: CashNet reported other amounts, items or no tx; DOUBLE_CHARGE: a second tx for a paid checkout;
 * UNAPPLIED: money collected that Alma could not take; ALMA_ERROR: Alma refused (a business error, or it shows
 * other amounts for our tx); ATTEMPTS_EXHAUSTED: Alma kept failing; UNKNOWN: recorded before kinds existed. REFUNDED: the provider reports a refund of the payment (PayPal's
 * PAYMENT.CAPTURE.REFUNDED): what Alma shows paid may need reversing. REVERSED: the provider took the money back by
 * itself (PayPal's PAYMENT.CAPTURE.REVERSED, a chargeback): nothing is changed in Alma, the library decides.
 */
/** Who took the money for a checkout (SPEC 13): the provider the campus used when the checkout was started. */
export const CHECKOUT_PROVIDERS = ['cashnet', 'paypal'] as const
export type CheckoutProvider = typeof CHECKOUT_PROVIDERS[number]
/** How patrons and staff see each provider named (re-exported by src/providers/provider.ts). */
export const PROVIDER_LABEL: Record<CheckoutProvider, string> = { cashnet: 'CashNet', paypal: 'PayPal' }

export const ATTENTION_KINDS = ['MISMATCH', 'DOUBLE_CHARGE', 'UNAPPLIED', 'ALMA_ERROR', 'ATTEMPTS_EXHAUSTED', 'UNKNOWN', 'REFUNDED', 'REVERSED'] as const
export type AttentionKind = typeof ATTENTION_KINDS[number]

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
  /**
   * The fee's balance in Alma when the checkout was made. More than `amount`: the patron paid part of the fee
   * (PARTIAL_PAYMENTS) and the rest stays open in Alma. Absent or null on lines recorded before it was kept.
   */
  balance?: Cents | null
}

/**
 * What a checkout's `userId` is: a `username` (the EZproxy header, a UserObject uid, a Primo token's userName) or
 * an Alma `primary-id` (a pay-link session). The same text in both is two different patrons, so a checkout
 * belongs to the pair, never to the text alone.
 */
export type UserIdKind = 'username' | 'primary-id'

export interface Checkout {
  id: string
  /** who paid, as they were identified: see userIdKind */
  userId: string
  /** how userId identifies the payer; checkouts from before it was kept are recognised by migration */
  userIdKind: UserIdKind
  /** Alma's primary id, sent to CashNet as custcode */
  primaryId: string
  patronName: string
  email: string
  /** the provider that takes (took) the money; checkouts from before providers existed are 'cashnet' */
  provider: CheckoutProvider
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
  /** why it needs attention; meaningful while NEEDS_ATTENTION (kept afterwards, like the reason) */
  attentionKind: AttentionKind | null
  unapplied: Cents
  attempts: number
  nextAttemptAt: string | null
  lastError: string | null
  /** when, by whom and how staff settled a NEEDS_ATTENTION payment; cleared if it needs attention again */
  resolvedAt: string | null
  resolvedBy: string | null
  resolution: string | null
  /**
   * The provider's transaction held for review (a PayPal capture PENDING), recorded while the checkout was CREATED
   * or EXPIRED: the money may yet be taken, so while the checkout is still in one of those states it is a payment
   * in progress (its fees are not sold again, it does not expire). Kept afterwards, like the attention reason.
   */
  reviewTx: string | null
  lines: CheckoutLine[]
}

export interface NewCheckout {
  id: string
  userId: string
  /** default 'username' */
  userIdKind?: UserIdKind
  primaryId: string
  patronName: string
  email: string
  /** default 'cashnet' */
  provider?: CheckoutProvider
  currency: string
  lines: Array<Omit<CheckoutLine, 'postedAmount' | 'postedAt'>>
}

/** An e-mail written to the ledger's outbox, to be sent by the outbox sender (src/payments/outbox.ts). */
export interface NewOutboxMessage {
  /** stable and unique: the Message-ID is derived from it, and enqueueing the same id twice must keep one row */
  id: string
  from: string
  /** one mailbox per message, so a bounce for one recipient does not decide for another */
  to: string
  subject: string
  text: string
  html: string
}

export interface OutboxMessage extends NewOutboxMessage {
  /** delivery attempts that failed so far */
  attempts: number
}

/** An outbox row as staff and tests read it. */
export interface OutboxRecord extends OutboxMessage {
  createdAt: string
  nextAttemptAt: string
  /** while a sender holds it */
  leaseUntil: string | null
  sentAt: string | null
  /** set when the sender gave up on it (a permanent refusal, or too many attempts) */
  gaveUpAt: string | null
  lastError: string | null
}

/**
 * The messages a state change writes to the outbox, evaluated inside the ledger's transaction on the checkout as
 * it is after the change (a receipt when it becomes POSTED, another when it needs staff), with its money record (what
 * the provider reported collecting, so a receipt states that and never the intended total). Pure and synchronous.
 */
export type ComposeMessages = (checkout: Checkout, record: MoneyRecord) => NewOutboxMessage[]

export type PostbackOutcome =
  | 'PAID' | 'DUPLICATE' | 'DECLINED' | 'CANCELLED' | 'MISMATCH' | 'DOUBLE_CHARGE' | 'ORPHAN' | 'REJECTED' | 'LATE_FAILURE'
  /** a tx already recorded for another checkout, arriving with this checkout's reference: recorded, never posted */
  | 'TX_REUSED'

/** Outcomes staff must look at on /admin/postbacks: no checkout, unreadable, or a tx used for a second checkout. */
export const UNMATCHED_OUTCOMES: readonly PostbackOutcome[] = ['ORPHAN', 'REJECTED', 'TX_REUSED']

/** One item as CashNet reported it in a postback. */
export interface CashnetItem {
  itemNo: number
  itemCode: string
  amount: Cents
  qty: number
}

/** What CashNet reported in one successful postback: the items and their total. */
export interface CashnetReport {
  postbackId: number
  tx: string
  outcome: PostbackOutcome
  items: CashnetItem[]
  total: Cents
}

/**
 * Money given back of a payment: a refund (staff made it in CashNet or PayPal, or PayPal reported it), or a reversal
 * (the provider took the money back by itself: a PayPal chargeback, PAYMENT.CAPTURE.REVERSED). Both are money out
 * of the same tx, booked alike (src/jobs/refund-lines.ts).
 */
export const MONEY_OUT_KINDS = ['refund', 'reversal'] as const
export type MoneyOutKind = typeof MONEY_OUT_KINDS[number]

/** A refund staff made in CashNet and recorded here, or money the provider reported giving back. */
export interface RefundRecord {
  id: number
  checkoutId: string
  tx: string
  amount: Cents
  reference: string
  note: string
  by: string
  at: string
  /** 'refund' unless the provider took the money back by itself ('reversal') */
  kind: MoneyOutKind
}

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
  /** the total CashNet reported (sum of its items); null when the postback could not be read */
  total: Cents | null
}

/** What the postback rules decided, applied by the ledger in the same transaction as the record. */
export interface PostbackDecision {
  outcome: PostbackOutcome
  reason: string
  /** state change of the checkout, if any */
  to?: CheckoutState
  /** why, when `to` is NEEDS_ATTENTION */
  attentionKind?: AttentionKind
  payment?: { tx: string, batchno: string, effdate: string, pmtcode: string }
}

export interface IncomingPostback {
  checkoutId: string | null
  peer: string
  result: string
  tx: string
  rawBody: string
  /** the items CashNet reported, when the postback was readable */
  items?: Array<Omit<CashnetItem, 'itemNo'>>
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
  /** what CashNet reported in each successful postback for this checkout, oldest first */
  reports: CashnetReport[]
  refunds: RefundRecord[]
}

/** The postbacks and refunds the staff-action rule needs, besides the checkout itself. */
export type MoneyRecord = Pick<CheckoutHistory, 'checkout' | 'reports' | 'refunds'>

/**
 * A refund recorded, with its checkout's money record: what was collected under each tx and every refund of the
 * checkout, from which the GL journal and the reports decide which money the refund returns (src/jobs/refund-lines.ts).
 */
export interface RecordedRefund extends MoneyRecord {
  refund: RefundRecord
}

/** A checkout row without its lines (lists and the CSV). */
export type CheckoutSummary = Omit<Checkout, 'lines'>

export interface CheckoutFilter {
  states?: CheckoutState[]
  /** patron username or primary id, CashNet tx or checkout id */
  search?: string
  /** only payments not yet settled by staff */
  unresolved?: boolean
  limit?: number
  offset?: number
}

/** A pay link the service issued (SPEC 14): who it is for, who sent it, until when, and whether it was revoked. */
export interface PayLinkEntry {
  linkId: string
  /** the username the link signs in */
  patronId: string
  primaryId: string
  issuedBy: string
  issuedAt: string
  expiresAt: string
  revokedBy: string | null
  revokedAt: string | null
}

export interface NewPayLink {
  linkId: string
  patronId: string
  primaryId: string
  issuedBy: string
  issuedAt: Date
  expiresAt: Date
}

/** Who opened a session of ours: a UserObject sign-in, a Primo VE sign-in, or a pay link. */
export type SessionKind = 'userobject' | 'primo' | 'pay-link'

/**
 * A session as the ledger keeps it. The ledger never sees the session id itself, only its SHA-256 (`idHash`,
 * hex): a copy of the table is no set of cookies. Times are epoch milliseconds.
 */
export interface SessionRecord {
  username: string
  kind: SessionKind
  /** the pay link that opened it (kind 'pay-link'), else null */
  payLink: string | null
  createdAt: number
  /** the last request, written at most once a touch interval (see Ledger.touchSession) */
  lastSeen: number
  /** the absolute end */
  expiresAt: number
  /** when the pay link that opened it was revoked (the session ended then, and is kept until expiresAt), else null */
  revokedAt: number | null
}

export interface NewSession extends Omit<SessionRecord, 'lastSeen' | 'revokedAt'> {
  idHash: string
}

/** What touchSession found: nothing, or the session and whether it is live or ended (absolute or idle limit, or its pay link revoked). */
export type SessionStatus =
  | { found: false }
  | { found: true, state: 'live' | 'expired' | 'idle' | 'revoked', session: SessionRecord }

/** The state a checkout had before a double charge, kept by both ledgers while the double charge is open. */
export interface PriorState {
  state: CheckoutState | null
  kind?: AttentionKind | null
  reason?: string | null
  resolvedAt?: string | null
  resolvedBy?: string | null
  resolution?: string | null
}
