// The one small interface the rest of the service sees. SQLite implements it (sqlite.ts); a shared server
// database could implement it for several instances without touching the payment rules.

import type { Cents } from '../money.ts'
import type {
  AlmaCallEntry, AttentionKind, Checkout, CheckoutFilter, CheckoutHistory, CheckoutState, CheckoutSummary, IncomingPostback,
  MoneyRecord, NewCheckout, PostbackDecision, PostbackRecord
} from './types.ts'

/** A refund staff record: which CashNet tx, how much, CashNet's refund reference and a note. */
export interface RefundRequest {
  checkoutId: string
  tx: string
  amount: Cents
  reference: string
  note: string
  by: string
}

/**
 * The payment rule a refund is checked against, evaluated inside the ledger's transaction: `refuse` sees the
 * record before the refund (a reason refuses it), `effect` the record with it (restore the state the original
 * payment had, settle the case, or nothing more).
 */
export interface RefundRules {
  refuse (record: MoneyRecord): string | null
  effect (record: MoneyRecord): 'restore' | 'settle' | 'none'
}

export type RefundResult =
  | { recorded: true, id: number, effect: 'restore' | 'settle' | 'none', checkout: Checkout }
  | { recorded: false, reason: string }

export interface TransitionRequest {
  checkoutId: string
  /** the change happens only if the checkout is in one of these states (compare and set) */
  from: readonly CheckoutState[]
  to: CheckoutState
  event: string
  detail?: Record<string, unknown>
  attentionReason?: string
  /** why, when `to` is NEEDS_ATTENTION (UNKNOWN if not said) */
  attentionKind?: AttentionKind
  unapplied?: Cents
}

export interface Ledger {
  createCheckout (checkout: NewCheckout): Checkout
  getCheckout (id: string): Checkout | undefined
  latestCheckoutForUser (userId: string): Checkout | undefined
  /**
   * The patron's payments whose money is taken but not yet all recorded in Alma: PAID checkouts, and NEEDS_ATTENTION
   * ones staff have not settled, that still have a line not posted. Matched by username or Alma primary id.
   */
  paymentsInProgress (userId: string, primaryId: string): Checkout[]
  /** Records a postback and applies the rules' decision in one transaction; returns what was decided. */
  /**
   * Records a postback and applies the rules' decision in one transaction; returns what was decided. `elsewhere`
   * lists the other checkouts this postback's tx is already recorded for (a tx belongs to one checkout).
   */
  recordPostback (postback: IncomingPostback, decide: (checkout: Checkout | undefined, earlier: PostbackRecord[], elsewhere: string[]) => PostbackDecision): { id: number, decision: PostbackDecision, checkout: Checkout | undefined }
  /** Runs work in one transaction, one durable commit; ledger calls inside it become savepoints (group commit). */
  inTransaction<T> (work: () => T): T
  /** Compare-and-set state change with its audit event; false when the checkout was not in a `from` state. */
  transition (request: TransitionRequest): boolean
  markLinePosted (checkoutId: string, lineNo: number, postedAmount: Cents, detail: Record<string, unknown>): void
  recordAlmaCall (call: Omit<AlmaCallEntry, 'id'>): void
  /** A failed posting attempt: counts it and says when to try again. */
  recordAttempt (checkoutId: string, nextAttemptAt: Date | null, lastError: string): number
  /**
   * Staff asked to post (the staff-action rule allowed it): back to PAID with a fresh attempt budget. Refused
   * (false) unless PAID, or NEEDS_ATTENTION and not settled, with a tx.
   */
  requeue (checkoutId: string, by: string, action?: 'retry' | 'post-confirmed'): boolean
  /** Records a refund staff made in CashNet, if the rule allows it, and applies its effect; one transaction. */
  recordRefund (refund: RefundRequest, rules: RefundRules): RefundResult
  /** The checkout with what CashNet reported for it and the refunds recorded: what the payment rules need. */
  moneyRecord (checkoutId: string): MoneyRecord | undefined
  /** Staff record how a NEEDS_ATTENTION payment was settled (refund, manual credit); false if not open. */
  resolveAttention (checkoutId: string, by: string, resolution: string): boolean
  /** PAID checkouts whose next attempt is due. */
  duePostings (now: Date): string[]
  /** CREATED checkouts older than the cut-off become EXPIRED; returns their ids. */
  expireCreated (createdBefore: Date): string[]
  /** PAID checkouts paid before the cut-off (for the stuck-payment alert). */
  paidBefore (cutoff: Date): Checkout[]
  listCheckouts (filter: CheckoutFilter): { checkouts: Checkout[], total: number }
  /** How many checkouts match the search in each state, and how many NEEDS_ATTENTION are not settled: one query. */
  countCheckouts (search: string): { byState: Record<CheckoutState, number>, openAttention: number }
  /**
   * One page of the filtered list without lines, newest first, after the row `after` (keyset paging: the CSV
   * streams page by page and never holds the whole list).
   */
  checkoutPage (filter: CheckoutFilter, after: { createdAt: string, rowid: number } | null, limit: number): Array<CheckoutSummary & { rowid: number }>
  history (checkoutId: string): CheckoutHistory | undefined
  /** Postbacks with no checkout (orphans) or refused as unreadable, newest first. */
  unmatchedPostbacks (since?: Date, limit?: number): PostbackRecord[]
  /** How many postbacks are unmatched (orphan, refused, a tx reused), counted in SQL. */
  countUnmatchedPostbacks (): number
  /** Checkouts paid, changed or sent a postback at or after the cut-off, oldest first (reconciliation). */
  checkoutsTouchedSince (since: Date): Checkout[]
  /** Every postback that carried this CashNet tx, whatever its outcome (reconciliation against a settlement file). */
  postbacksWithTx (tx: string): PostbackRecord[]
  /** Lines posted within [from, to), for the GL journal. */
  postedLines (from: Date, to: Date): Array<{ checkout: Checkout, lineNo: number }>
  audit (checkoutId: string | null, event: string, detail: Record<string, unknown>): void
  writable (): boolean
  close (): void
}
