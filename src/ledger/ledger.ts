// The one small interface the rest of the service sees: the seam between the payment rules and whatever stores
// the record. SQLite implements it (src/ledger/sqlite/); a server database implements the same contract for
// several instances (test/ledger/ledger-spec.ts is that contract, run against every implementation).
//
// Every method is asynchronous: a server database answers over the network. What must be atomic is inside one
// method: the rules that decide a change (a postback's decision, a staff action's verdict, a refund's effect)
// are passed in as synchronous pure functions and evaluated inside the ledger's transaction, on the record as it
// is at that moment, so no caller ever reads, awaits, and then writes on what it read. A write the ledger cannot
// take just now (a lock, an outage) rejects with LedgerUnavailable (src/ledger/errors.ts), nothing written.

import type { Cents } from '../money.ts'
import type {
  AlmaCallEntry, AttentionKind, AuditEvent, CashnetReport, Checkout, CheckoutFilter, CheckoutHistory, CheckoutState,
  CheckoutSummary, ComposeMessages, IncomingPostback, MoneyOutKind, MoneyRecord, NewCheckout, NewOutboxMessage, NewPayLink,
  NewSession, OutboxMessage, OutboxRecord, PayLinkEntry, PostbackDecision, PostbackRecord, RecordedRefund,
  SessionRecord, SessionStatus, UserIdKind
} from './types.ts'

/** A refund staff record: which CashNet tx, how much, CashNet's refund reference and a note. */
export interface RefundRequest {
  checkoutId: string
  tx: string
  amount: Cents
  reference: string
  note: string
  by: string
  /** default 'refund'; 'reversal' for money the provider took back by itself */
  kind?: MoneyOutKind
}

/**
 * Put a case staff had settled back in front of them (money moved after they closed it: a chargeback), as this
 * kind and with this reason.
 */
export interface Reopen { reopen: AttentionKind, reason: string }

/**
 * The payment rule a refund is checked against, evaluated inside the ledger's transaction: `refuse` sees the
 * record before the refund (a reason refuses it), `effect` the record with it (restore the state the original
 * payment had, settle the case, reopen a settled case, or nothing more).
 */
export interface RefundRules {
  refuse (record: MoneyRecord): string | null
  effect (record: MoneyRecord): 'restore' | 'settle' | 'none' | Reopen
}

/** Why the ledger refuses a refund whose reference is already recorded for its checkout and tx. */
export function referenceRecorded (refund: Pick<RefundRequest, 'tx' | 'reference'>): string {
  return `Refund reference ${refund.reference} is already recorded for tx ${refund.tx} of this payment: nothing more was recorded.`
}

export type RefundResult =
  | { recorded: true, id: number, effect: 'restore' | 'settle' | 'none' | 'reopen', checkout: Checkout }
  | { recorded: false, reason: string }

/**
 * The staff-action rule, evaluated inside the ledger's transaction on the payment's current record: a reason
 * refuses the action (nothing changes), null allows it.
 */
export type StaffRule = (record: MoneyRecord) => string | null

export type StaffResult = { done: true, checkout: Checkout } | { done: false, reason: string }

/** The postback rules: given the checkout, its earlier postbacks and the other checkouts this tx is recorded for. */
export type DecidePostback = (checkout: Checkout | undefined, earlier: PostbackRecord[], elsewhere: string[]) => PostbackDecision

export interface RecordedPostback {
  id: number
  decision: PostbackDecision
  /** the checkout after the decision was applied */
  checkout: Checkout | undefined
}

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
  /**
   * E-mails this change sends (a receipt): evaluated inside the transaction on the checkout after the change, and
   * written to the outbox with it (insert-if-absent by id), so a crash after the change loses none of them.
   */
  messages?: ComposeMessages
}

/** What the outbox sender reports about a message it could not send. */
export interface OutboxFailure {
  error: string
  attempts: number
  /** null: give up on it (kept for staff to see) */
  nextAttemptAt: Date | null
}

/**
 * A claim on the posting of one PAID checkout, held in the ledger so that several processes and instances post
 * each checkout one at a time. `fence` grows by one with every claim: a posting write made under an older fence
 * is refused (LeaseLost), so a holder paused past its lease cannot write over what the next holder did.
 */
export interface PostingLease { checkoutId: string, holder: string, fence: number, expiresAt: Date }

/**
 * What the shared Alma rate limit answers: how many of the calls asked for may go now (0 to the number asked),
 * and, when none may, how long until the window has room again.
 */
/** With `held` asked: the id of each call granted, by which its end is told later (AlmaCallHolds). */
export interface AlmaCallReservation { granted: number, retryInMs: number, ids?: number[] }

/**
 * Calls that count until their process says when Alma read them at the latest (src/alma/rate-limit.ts): each call
 * granted counts `openMs` from now (its answer may come that late) unless its end is told sooner; each end told
 * (`ends`: a call answered, `readAgoMs` before now at the latest Alma read it) counts its call a window from then.
 */
export interface AlmaCallHolds {
  openMs: number
  ends: Array<{ id: number, readAgoMs: number }>
}

/**
 * The audit event of a provider holding a checkout's money for review (a PayPal capture PENDING). Instances from
 * before the review mark (reviewTx) write only this event, with the capture id as `tx` in its detail; the ledger
 * treats a CREATED or EXPIRED checkout that has it as held, marked or not.
 */
export const CAPTURE_PENDING_EVENT = 'paypal.capture_pending'

export interface Ledger {
  createCheckout (checkout: NewCheckout): Promise<Checkout>
  getCheckout (id: string): Promise<Checkout | undefined>
  /** The newest checkout of this payer: `userId` of this kind (default 'username'), exactly. */
  latestCheckoutForUser (userId: string, kind?: UserIdKind): Promise<Checkout | undefined>
  /**
   * The patron's payments whose money is taken but not yet all recorded in Alma: PAID checkouts, and NEEDS_ATTENTION
   * ones staff have not settled, that still have a line not posted; and CREATED or EXPIRED ones whose provider holds
   * the money for review (markUnderReview, or only CAPTURE_PENDING_EVENT as an instance from before the mark writes it:
   * then reviewTx is that event's tx), until its outcome is recorded. Matched by `userId` of this kind (default
   * 'username') or by Alma primary id.
   */
  paymentsInProgress (userId: string, primaryId: string, kind?: UserIdKind): Promise<Checkout[]>
  /**
   * The patron's payment history: this payer's checkouts in which a payment was made or tried (PAID, POSTED,
   * NEEDS_ATTENTION, DECLINED; never the abandoned CREATED, EXPIRED or CANCELLED ones), newest first, at most
   * `limit`. Matched by `userId` of this kind (default 'username') only, exactly.
   */
  patronPayments (userId: string, limit: number, kind?: UserIdKind): Promise<Checkout[]>
  /**
   * Records a postback and applies the rules' decision in one transaction; resolves once it is durable, with what
   * was decided. `decide` runs inside the transaction, on the checkout locked against other postbacks; `elsewhere`
   * lists the other checkouts this postback's tx is already recorded for (a tx belongs to one checkout).
   * `messages`, when the decision changed the checkout's state, is evaluated on the checkout after it, in the
   * same transaction, and what it returns is written to the outbox (as in `transition`).
   */
  recordPostback (postback: IncomingPostback, decide: DecidePostback, messages?: ComposeMessages): Promise<RecordedPostback>
  /**
   * The provider holds this checkout's money for review (a PayPal capture PENDING, transaction `tx`): if the checkout
   * is CREATED or EXPIRED, it is marked (reviewTx) so that it counts as a payment in progress and does not expire,
   * until the provider's outcome changes its state. The audit event `event` (detail, tx and whether it was marked)
   * is written in the same transaction, marked or not. False when it was not marked (no such checkout, or already
   * in another state: a late report of a review the outcome of which is recorded).
   */
  markUnderReview (checkoutId: string, tx: string, event: string, detail: Record<string, unknown>): Promise<boolean>
  /**
   * Marks the reviews an instance from before the review mark (SQLite migration 12, PostgreSQL 8) left unmarked:
   * such an instance, running beside this one during a rolling upgrade, writes only the audit event
   * CAPTURE_PENDING_EVENT. Every CREATED or EXPIRED checkout with that event and no mark is marked with the tx of its
   * latest one (as markUnderReview would have), with a `checkout.review_marked` audit event, in one transaction;
   * resolves with their ids. Idempotent: a marked checkout is not marked again, by this instance or another.
   * Any outcome recorded since the event (paid, declined, cancelled) has moved the checkout out of those states.
   */
  markReviewsFromAudit (): Promise<string[]>
  /** Compare-and-set state change with its audit event; false when the checkout was not in a `from` state. */
  //
  // The posting writes below take an optional final `fence`: when given, the write happens only if the checkout's
  // posting fence is still that one (checked in the same transaction); otherwise they reject with LeaseLost and
  // write nothing.
  transition (request: TransitionRequest, fence?: number): Promise<boolean>
  /** Records what Alma accepted for a line, once (a line already posted is left as it is), with its audit event. */
  markLinePosted (checkoutId: string, lineNo: number, postedAmount: Cents, detail: Record<string, unknown>, fence?: number): Promise<void>
  recordAlmaCall (call: Omit<AlmaCallEntry, 'id'>, fence?: number): Promise<void>
  /** A failed posting attempt: counts it and says when to try again; resolves with the attempts counted so far. */
  recordAttempt (checkoutId: string, nextAttemptAt: Date | null, lastError: string, fence?: number): Promise<number>
  /** Take the posting of a PAID checkout if nobody holds a live lease on it; the fence grows by one with every claim. */
  claimPosting (checkoutId: string, holder: string, leaseMs: number): Promise<PostingLease | null>
  /** Extend a lease still held under this fence; false when it was lost (expired and taken, or released). */
  renewPosting (lease: PostingLease, leaseMs: number): Promise<boolean>
  releasePosting (lease: PostingLease): Promise<void>
  /**
   * Releases whatever lease `holder` holds on this checkout, under any fence: for a holder that does not know its
   * fence (its claim was committed but the answer lost with the connection) or could not release when its posting
   * stopped. Only the holder itself calls it, and only while it runs no posting of this checkout. True when a lease
   * was released.
   */
  releaseHeldBy (checkoutId: string, holder: string): Promise<boolean>
  /**
   * Reserve up to `wanted` Alma calls for `key` for the process `holder`, under a limit of `limit` calls per
   * `windowMs` shared by every process, in one write (the rule: alma-budget.ts): a process alone is granted what
   * it asks (its own limiter bounds it); while several ask, as many as fit; none granted, how long to wait.
   */
  reserveAlmaCalls (key: string, limit: number, windowMs: number, wanted: number, holder: string, held?: AlmaCallHolds): Promise<AlmaCallReservation>
  /**
   * Staff asked to post: if `rule` allows it on the current record, back to PAID with a fresh attempt budget.
   * Refused too unless PAID, or NEEDS_ATTENTION and not settled, with a tx.
   */
  requeue (checkoutId: string, by: string, action: 'retry' | 'post-confirmed', rule: StaffRule): Promise<StaffResult>
  /** Records a refund staff made in CashNet, if the rule allows it, and applies its effect; one transaction. */
  recordRefund (refund: RefundRequest, rules: RefundRules): Promise<RefundResult>
  /** The checkout with what CashNet reported for it and the refunds recorded: what the payment rules need. */
  moneyRecord (checkoutId: string): Promise<MoneyRecord | undefined>
  /**
   * What the provider reported in each successful postback for each of these checkouts (moneyRecord's `reports`),
   * in one read: for lists and the CSV, a page of checkouts at a time. A checkout with none is absent.
   */
  reportsOf (checkoutIds: readonly string[]): Promise<Map<string, CashnetReport[]>>
  /** Staff record how a NEEDS_ATTENTION payment was settled, if `rule` allows it; refused unless open. */
  resolveAttention (checkoutId: string, by: string, resolution: string, rule: StaffRule): Promise<StaffResult>
  /**
   * A NEEDS_ATTENTION payment staff had settled needs them again (compare and set: only while settled): unsettled,
   * with this kind and reason, and an `attention.reopened` audit event (the kind, the reason, how it had been
   * settled, and `detail`) in the same transaction. False when it was not a settled case. A refund's effect can
   * do the same inside recordRefund (Reopen).
   */
  reopenAttention (checkoutId: string, reopen: Reopen, detail: Record<string, unknown>): Promise<boolean>
  /** PAID checkouts due for posting (next attempt due) whose lease is free or expired. */
  duePostings (now: Date): Promise<string[]>
  /**
   * CREATED checkouts older than the cut-off, except those held for review (markUnderReview, or an unmarked
   * CAPTURE_PENDING_EVENT), become EXPIRED; resolves with their ids.
   */
  expireCreated (createdBefore: Date): Promise<string[]>
  /**
   * CREATED or EXPIRED checkouts the provider holds for review (markUnderReview), not changed since before the
   * cut-off, oldest first: a review whose outcome never arrived, for the posting worker to ask the provider about.
   */
  underReviewBefore (cutoff: Date): Promise<Checkout[]>
  /** PAID checkouts paid before the cut-off (for the stuck-payment alert). */
  paidBefore (cutoff: Date): Promise<Checkout[]>
  listCheckouts (filter: CheckoutFilter): Promise<{ checkouts: Checkout[], total: number }>
  /** How many checkouts match the search in each state, and how many NEEDS_ATTENTION are not settled. */
  countCheckouts (search: string): Promise<{ byState: Record<CheckoutState, number>, openAttention: number }>
  /**
   * One page of the filtered list without lines, newest first, after the row `after` (keyset paging: the CSV
   * streams page by page and never holds the whole list). `cursor` is opaque to callers; pass it back as `after`.
   */
  checkoutPage (filter: CheckoutFilter, after: PageCursor | null, limit: number): Promise<Array<CheckoutSummary & { cursor: PageCursor }>>
  history (checkoutId: string): Promise<CheckoutHistory | undefined>
  /** Postbacks with no checkout (orphans), refused as unreadable, or with a tx reused; newest first. */
  unmatchedPostbacks (since?: Date, limit?: number): Promise<PostbackRecord[]>
  /** How many postbacks are unmatched (orphan, refused, a tx reused). */
  countUnmatchedPostbacks (): Promise<number>
  /** Checkouts paid, changed or sent a postback at or after the cut-off, oldest first (reconciliation). */
  checkoutsTouchedSince (since: Date): Promise<Checkout[]>
  /** Every NEEDS_ATTENTION checkout staff have not resolved, whatever its age, oldest first (reconciliation). */
  openAttention (): Promise<Checkout[]>
  /** Every postback that carried this CashNet tx, whatever its outcome (reconciliation against a settlement file). */
  postbacksWithTx (tx: string): Promise<PostbackRecord[]>
  /** Lines posted within [from, to), for the GL journal. */
  postedLines (from: Date, to: Date): Promise<Array<{ checkout: Checkout, lineNo: number }>>
  /** Refunds recorded within [from, to), oldest first, each with its checkout's money record (GL journal, reports). */
  refundsRecorded (from: Date, to: Date): Promise<RecordedRefund[]>
  /** Checkouts CashNet reported paid within [from, to) (paid_at), whatever their state now, oldest first (reports). */
  paidBetween (from: Date, to: Date): Promise<Checkout[]>
  audit (checkoutId: string | null, event: string, detail: Record<string, unknown>): Promise<void>
  /** Records a pay link issued, with its `paylink.issued` audit event (detail: linkId and `detail`); one transaction. */
  recordPayLink (link: NewPayLink, detail: Record<string, unknown>): Promise<void>
  getPayLink (linkId: string): Promise<PayLinkEntry | undefined>
  /** The pay links issued for a patron (by Alma primary id), newest first, at most `limit`. */
  payLinksFor (primaryId: string, limit: number): Promise<PayLinkEntry[]>
  /** Revokes a link not yet revoked, with its `paylink.revoked` audit event; false when unknown or already revoked. */
  revokePayLink (linkId: string, by: string): Promise<boolean>
  /** The audit events about one pay link (`paylink.*` events whose detail names it), oldest first. */
  payLinkEvents (linkId: string): Promise<AuditEvent[]>
  /** Writes messages to the outbox on their own; a message whose id is already there is left as it is. */
  enqueueMessages (messages: NewOutboxMessage[]): Promise<void>
  /**
   * Up to `limit` unsent messages, not given up, due at `now` and held by no live lease, oldest due first; each is
   * leased until `leaseUntil` in the same transaction, so two senders never hold the same message at once.
   */
  claimDueMessages (now: Date, limit: number, leaseUntil: Date): Promise<OutboxMessage[]>
  /** The message was delivered: never claimed again. */
  markMessageSent (id: string, at: Date): Promise<void>
  /** A failed attempt: the lease is released, attempts and the error stored; due again at nextAttemptAt, or given up. */
  markMessageFailed (id: string, failure: OutboxFailure): Promise<void>
  /** One outbox message and its delivery state. */
  outboxMessage (id: string): Promise<OutboxRecord | undefined>
  //
  // The service's own sessions (userobject and primo modes, pay links), shared by every process and instance:
  // a patron signed in on one is known to all, and a sign-out or a revoked link on one ends the session on all.
  // Keyed by the SHA-256 of the session id (never the id). `now` is the caller's clock.
  /** Records a new session (its lastSeen is its createdAt). */
  createSession (session: NewSession): Promise<void>
  /**
   * The session and whether it is live at `now`: ended when `now` reaches its expiresAt, or `idleMs` have passed
   * since its lastSeen. A live session's lastSeen becomes `now`, but only when at least `touchEveryMs` have
   * passed since it was last written (no write per request); the write re-checks both limits in the same
   * statement, so an ended session is never revived. An ended session is returned as such, not removed.
   */
  touchSession (idHash: string, now: Date, limits: { idleMs: number, touchEveryMs: number }): Promise<SessionStatus>
  /** Ends one session (sign-out, or one found ended); resolves with it if it existed. */
  endSession (idHash: string): Promise<SessionRecord | undefined>
  /**
   * Ends every session a pay link opened (the link was revoked): marked ended at the ledger's now, not deleted, so
   * touchSession answers 'revoked' (the patron is told why) until the session's absolute end, when the purge
   * removes it; endSession leaves it too. Resolves with how many were ended now.
   */
  endPayLinkSessions (linkId: string): Promise<number>
  /** Removes the sessions ended at `now` (absolute or idle limit); resolves with how many. */
  purgeSessions (now: Date, idleMs: number): Promise<number>
  /** Whether a write could be taken now (readiness). */
  writable (): Promise<boolean>
  close (): Promise<void>
}

/** Where a page of checkoutPage ended: the last row's creation time and a tie-breaker the implementation chooses. */
export interface PageCursor {
  createdAt: string
  seq: number
}
