// The one small interface the rest of the service sees. SQLite implements it (sqlite.ts); a shared server
// database could implement it for several instances without touching the payment rules.

import type { Cents } from '../money.ts'
import type {
  AlmaCallEntry, Checkout, CheckoutFilter, CheckoutHistory, CheckoutState, IncomingPostback, NewCheckout,
  PostbackDecision, PostbackRecord
} from './types.ts'

export interface TransitionRequest {
  checkoutId: string
  /** the change happens only if the checkout is in one of these states (compare and set) */
  from: readonly CheckoutState[]
  to: CheckoutState
  event: string
  detail?: Record<string, unknown>
  attentionReason?: string
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
  recordPostback (postback: IncomingPostback, decide: (checkout: Checkout | undefined, earlier: PostbackRecord[]) => PostbackDecision): { id: number, decision: PostbackDecision, checkout: Checkout | undefined }
  /** Runs work in one transaction, one durable commit; ledger calls inside it become savepoints (group commit). */
  inTransaction<T> (work: () => T): T
  /** Compare-and-set state change with its audit event; false when the checkout was not in a `from` state. */
  transition (request: TransitionRequest): boolean
  markLinePosted (checkoutId: string, lineNo: number, postedAmount: Cents, detail: Record<string, unknown>): void
  recordAlmaCall (call: Omit<AlmaCallEntry, 'id'>): void
  /** A failed posting attempt: counts it and says when to try again. */
  recordAttempt (checkoutId: string, nextAttemptAt: Date | null, lastError: string): number
  /** Staff asked to retry: back to PAID with a fresh attempt budget. */
  requeue (checkoutId: string, by: string): boolean
  /** Staff record how a NEEDS_ATTENTION payment was settled (refund, manual credit); false if not open. */
  resolveAttention (checkoutId: string, by: string, resolution: string): boolean
  /** PAID checkouts whose next attempt is due. */
  duePostings (now: Date): string[]
  /** CREATED checkouts older than the cut-off become EXPIRED; returns their ids. */
  expireCreated (createdBefore: Date): string[]
  /** PAID checkouts paid before the cut-off (for the stuck-payment alert). */
  paidBefore (cutoff: Date): Checkout[]
  listCheckouts (filter: CheckoutFilter): { checkouts: Checkout[], total: number }
  history (checkoutId: string): CheckoutHistory | undefined
  /** Postbacks with no checkout (orphans) or refused as unreadable, newest first. */
  unmatchedPostbacks (since?: Date): PostbackRecord[]
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
