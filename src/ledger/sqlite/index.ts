// The ledger in SQLite (WAL, synchronous=FULL): a postback is on disk before the 200 goes out. The default, and
// what the demo uses: no database server. Jobs (reconcile, export:gl) open it read-only and never migrate: in
// WAL mode a reader never blocks the service's writer, so a job can never make the service miss CashNet's
// one-second answer.
//
// This file is the Ledger interface over the synchronous parts: connection.ts (opening, pragmas, statements),
// migrations.ts, store.ts (checkouts, postbacks, posting), queries.ts (admin, reconcile, GL), rows.ts (mapping),
// group-commit.ts (concurrent postbacks share one durable commit). better-sqlite3 is synchronous, so each
// method does its work when called and returns a settled promise; recordPostback resolves after the shared
// commit that made it durable. A lock held by another process rejects with LedgerUnavailable.

import type { Cents } from '../../money.ts'
import { LedgerUnavailable } from '../errors.ts'
import type {
  AlmaCallHolds, AlmaCallReservation, DecidePostback, Ledger, OutboxFailure, PageCursor, PostingLease, RecordedPostback, RefundRequest, RefundResult, RefundRules, Reopen,
  StaffResult, StaffRule, TransitionRequest
} from '../ledger.ts'
import type {
  AlmaCallEntry, AuditEvent, CashnetReport, Checkout, CheckoutFilter, CheckoutHistory, CheckoutState, CheckoutSummary,
  ComposeMessages, IncomingPostback, MoneyRecord, NewCheckout, NewOutboxMessage, NewPayLink, NewSession,
  OutboxMessage, OutboxRecord, PayLinkEntry, PostbackRecord, RecordedRefund, SessionRecord, SessionStatus, UserIdKind
} from '../types.ts'
import { BUSY_TIMEOUT_MS, Connection, isBusy } from './connection.ts'
import { GroupCommit } from './group-commit.ts'
import { LedgerQueries } from './queries.ts'
import { CheckoutStore } from './store.ts'
import { PayLinkStore } from './pay-links.ts'
import { SessionStore } from './sessions.ts'

export { BUSY_TIMEOUT_MS } from './connection.ts'
export { itemsOfRawBody, MIGRATIONS, SCHEMA_VERSION } from './migrations.ts'

export interface SqliteLedgerOptions {
  path: string
  now?: () => Date
  /**
   * For jobs: open an existing ledger read-only; never create it, never migrate it. A ledger whose schema is
   * older than this code's (or that is not a WAL-mode ledger at all) is refused with LedgerSchemaError.
   */
  readOnly?: boolean
  /** the most page cache the connection may hold, in KiB (connection.ts's OpenOptions); better-sqlite3's 16 MB when absent */
  cacheKib?: number
}

/** A write that met another process's lock: nothing was written, LedgerUnavailable (503) for the caller. */
function write<T> (work: () => T): T {
  try {
    return work()
  } catch (error) {
    if (isBusy(error)) throw new LedgerUnavailable(`locked by another process: ${(error as Error).message}`)
    throw error
  }
}

export class SqliteLedger implements Ledger {
  readonly #connection: Connection
  readonly #store: CheckoutStore
  readonly #queries: LedgerQueries
  readonly #commits: GroupCommit
  readonly #payLinks: PayLinkStore
  readonly #sessions: SessionStore

  constructor (options: SqliteLedgerOptions) {
    const now = options.now ?? (() => new Date())
    this.#connection = options.readOnly === true ? Connection.openReadOnly(options.path, now) : Connection.open(options.path, now, { cacheKib: options.cacheKib })
    this.#store = new CheckoutStore(this.#connection)
    this.#queries = new LedgerQueries(this.#connection, this.#store)
    this.#payLinks = new PayLinkStore(this.#connection)
    this.#sessions = new SessionStore(this.#connection)
    this.#commits = new GroupCommit(work => { this.#store.inTransaction(work) })
  }

  async createCheckout (checkout: NewCheckout): Promise<Checkout> {
    return write(() => this.#store.createCheckout(checkout))
  }

  async getCheckout (id: string): Promise<Checkout | undefined> {
    return this.#store.getCheckout(id)
  }

  async latestCheckoutForUser (userId: string, kind?: UserIdKind): Promise<Checkout | undefined> {
    return this.#store.latestCheckoutForUser(userId, kind)
  }

  async paymentsInProgress (userId: string, primaryId: string, kind?: UserIdKind): Promise<Checkout[]> {
    return this.#store.paymentsInProgress(userId, primaryId, kind)
  }

  async patronPayments (userId: string, limit: number, kind?: UserIdKind): Promise<Checkout[]> {
    return this.#store.patronPayments(userId, limit, kind)
  }

  /** Postbacks arriving together share one durable commit; each resolves only after the commit that holds it. */
  async recordPostback (postback: IncomingPostback, decide: DecidePostback, messages?: ComposeMessages): Promise<RecordedPostback> {
    return await this.#commits.run(() => this.#store.recordPostback(postback, decide, messages))
  }

  async markReviewsFromAudit (): Promise<string[]> {
    return write(() => this.#store.markReviewsFromAudit())
  }

  async markUnderReview (checkoutId: string, tx: string, event: string, detail: Record<string, unknown>): Promise<boolean> {
    return write(() => this.#store.markUnderReview(checkoutId, tx, event, detail))
  }

  async transition (request: TransitionRequest, fence?: number): Promise<boolean> {
    return write(() => this.#store.transition(request, fence))
  }

  async markLinePosted (checkoutId: string, lineNo: number, postedAmount: Cents, detail: Record<string, unknown>, fence?: number): Promise<void> {
    write(() => { this.#store.markLinePosted(checkoutId, lineNo, postedAmount, detail, fence) })
  }

  async recordAlmaCall (call: Omit<AlmaCallEntry, 'id'>, fence?: number): Promise<void> {
    write(() => { this.#store.recordAlmaCall(call, fence) })
  }

  async recordAttempt (checkoutId: string, nextAttemptAt: Date | null, lastError: string, fence?: number): Promise<number> {
    return write(() => this.#store.recordAttempt(checkoutId, nextAttemptAt, lastError, fence))
  }

  async claimPosting (checkoutId: string, holder: string, leaseMs: number): Promise<PostingLease | null> {
    return write(() => this.#store.claimPosting(checkoutId, holder, leaseMs))
  }

  async renewPosting (lease: PostingLease, leaseMs: number): Promise<boolean> {
    return write(() => this.#store.renewPosting(lease, leaseMs))
  }

  async releasePosting (lease: PostingLease): Promise<void> {
    write(() => { this.#store.releasePosting(lease) })
  }

  async releaseHeldBy (checkoutId: string, holder: string): Promise<boolean> {
    return write(() => this.#store.releaseHeldBy(checkoutId, holder))
  }

  /**
   * The Alma budget is asked on every Alma call, from every process on this file: a lock held by another process is
   * waited out here, a millisecond or a few at a time, with the event loop free (SQLite's busy timeout would sleep
   * on it); after BUSY_TIMEOUT_MS in all, LedgerUnavailable as for any other write.
   */
  async reserveAlmaCalls (key: string, limit: number, windowMs: number, wanted: number, holder: string, held?: AlmaCallHolds): Promise<AlmaCallReservation> {
    const giveUpAt = performance.now() + BUSY_TIMEOUT_MS
    for (let pauseMs = 1; ; pauseMs = Math.min(pauseMs * 2, 8)) {
      try {
        return this.#store.reserveAlmaCalls(key, limit, windowMs, wanted, holder, held)
      } catch (error) {
        if (!isBusy(error)) throw error
        if (performance.now() >= giveUpAt) throw new LedgerUnavailable(`locked by another process: ${(error as Error).message}`)
      }
      await new Promise(resolve => setTimeout(resolve, pauseMs))
    }
  }

  async requeue (checkoutId: string, by: string, action: 'retry' | 'post-confirmed', rule: StaffRule): Promise<StaffResult> {
    return write(() => this.#store.requeue(checkoutId, by, action, rule))
  }

  async recordRefund (refund: RefundRequest, rules: RefundRules): Promise<RefundResult> {
    return write(() => this.#store.recordRefund(refund, rules))
  }

  async moneyRecord (checkoutId: string): Promise<MoneyRecord | undefined> {
    return this.#store.moneyRecord(checkoutId)
  }

  async reportsOf (checkoutIds: readonly string[]): Promise<Map<string, CashnetReport[]>> {
    return this.#store.reportsOf(checkoutIds)
  }

  async resolveAttention (checkoutId: string, by: string, resolution: string, rule: StaffRule): Promise<StaffResult> {
    return write(() => this.#store.resolveAttention(checkoutId, by, resolution, rule))
  }

  async reopenAttention (checkoutId: string, reopen: Reopen, detail: Record<string, unknown>): Promise<boolean> {
    return write(() => this.#store.reopenAttention(checkoutId, reopen, detail))
  }

  async duePostings (now: Date): Promise<string[]> {
    return this.#store.duePostings(now)
  }

  async expireCreated (createdBefore: Date): Promise<string[]> {
    return write(() => this.#store.expireCreated(createdBefore))
  }

  async underReviewBefore (cutoff: Date): Promise<Checkout[]> {
    return this.#store.underReviewBefore(cutoff)
  }

  async paidBefore (cutoff: Date): Promise<Checkout[]> {
    return this.#store.paidBefore(cutoff)
  }

  async listCheckouts (filter: CheckoutFilter): Promise<{ checkouts: Checkout[], total: number }> {
    return this.#queries.listCheckouts(filter)
  }

  async countCheckouts (search: string): Promise<{ byState: Record<CheckoutState, number>, openAttention: number }> {
    return this.#queries.countCheckouts(search)
  }

  async checkoutPage (filter: CheckoutFilter, after: PageCursor | null, limit: number): Promise<Array<CheckoutSummary & { cursor: PageCursor }>> {
    return this.#queries.checkoutPage(filter, after, limit)
  }

  async history (checkoutId: string): Promise<CheckoutHistory | undefined> {
    return this.#queries.history(checkoutId)
  }

  async unmatchedPostbacks (since?: Date, limit?: number): Promise<PostbackRecord[]> {
    return this.#queries.unmatchedPostbacks(since, limit)
  }

  async countUnmatchedPostbacks (): Promise<number> {
    return this.#queries.countUnmatchedPostbacks()
  }

  async checkoutsTouchedSince (since: Date): Promise<Checkout[]> {
    return this.#queries.checkoutsTouchedSince(since)
  }

  async openAttention (): Promise<Checkout[]> {
    return this.#queries.openAttention()
  }

  async postbacksWithTx (tx: string): Promise<PostbackRecord[]> {
    return this.#queries.postbacksWithTx(tx)
  }

  async postedLines (from: Date, to: Date): Promise<Array<{ checkout: Checkout, lineNo: number }>> {
    return this.#queries.postedLines(from, to)
  }

  async refundsRecorded (from: Date, to: Date): Promise<RecordedRefund[]> {
    return this.#queries.refundsRecorded(from, to)
  }

  async paidBetween (from: Date, to: Date): Promise<Checkout[]> {
    return this.#queries.paidBetween(from, to)
  }

  async audit (checkoutId: string | null, event: string, detail: Record<string, unknown>): Promise<void> {
    write(() => { this.#store.audit(checkoutId, event, detail) })
  }

  async recordPayLink (link: NewPayLink, detail: Record<string, unknown>): Promise<void> {
    write(() => { this.#payLinks.record(link, detail) })
  }

  async getPayLink (linkId: string): Promise<PayLinkEntry | undefined> {
    return this.#payLinks.get(linkId)
  }

  async payLinksFor (primaryId: string, limit: number): Promise<PayLinkEntry[]> {
    return this.#payLinks.forPatron(primaryId, limit)
  }

  async revokePayLink (linkId: string, by: string): Promise<boolean> {
    return write(() => this.#payLinks.revoke(linkId, by))
  }

  async payLinkEvents (linkId: string): Promise<AuditEvent[]> {
    return this.#payLinks.events(linkId)
  }

  async enqueueMessages (messages: NewOutboxMessage[]): Promise<void> {
    write(() => { this.#store.enqueueMessages(messages) })
  }

  async claimDueMessages (now: Date, limit: number, leaseUntil: Date): Promise<OutboxMessage[]> {
    return write(() => this.#store.claimDueMessages(now, limit, leaseUntil))
  }

  async markMessageSent (id: string, at: Date): Promise<void> {
    write(() => { this.#store.markMessageSent(id, at) })
  }

  async markMessageFailed (id: string, failure: OutboxFailure): Promise<void> {
    write(() => { this.#store.markMessageFailed(id, failure) })
  }

  async outboxMessage (id: string): Promise<OutboxRecord | undefined> {
    return this.#store.outboxMessage(id)
  }

  async createSession (session: NewSession): Promise<void> {
    write(() => { this.#sessions.create(session) })
  }

  async touchSession (idHash: string, now: Date, limits: { idleMs: number, touchEveryMs: number }): Promise<SessionStatus> {
    return write(() => this.#sessions.touch(idHash, now.getTime(), limits.idleMs, limits.touchEveryMs))
  }

  async endSession (idHash: string): Promise<SessionRecord | undefined> {
    return write(() => this.#sessions.end(idHash))
  }

  async endPayLinkSessions (linkId: string): Promise<number> {
    return write(() => this.#sessions.endPayLink(linkId, this.#connection.now().getTime()))
  }

  async purgeSessions (now: Date, idleMs: number): Promise<number> {
    return write(() => this.#sessions.purge(now.getTime(), idleMs))
  }

  async writable (): Promise<boolean> {
    return this.#connection.writable()
  }

  /** Commits any postbacks still waiting for their shared commit, then closes. */
  async close (): Promise<void> {
    if (this.#connection.db.open) this.#commits.flush()
    this.#connection.close()
  }
}
