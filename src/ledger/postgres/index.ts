// The ledger in PostgreSQL, for several instances on one database (SPEC 11): the Ledger interface over pool.ts
// (connections, errors), migrations.ts, store.ts (checkouts, postbacks, posting, the lease and the shared Alma
// budget) and queries.ts (admin, reconcile, GL). A postback is committed (synchronous_commit, the server's
// default) before its promise resolves, so before its 200; the server out of reach is LedgerUnavailable (503).
// Open with PostgresLedger.open: the service's ledger migrates (under an advisory lock), a job's is read-only
// (default_transaction_read_only) and refuses an older schema.

import type { Cents } from '../../money.ts'
import type {
  AlmaCallHolds, AlmaCallReservation, DecidePostback, Ledger, OutboxFailure, PageCursor, PostingLease, RecordedPostback, RefundRequest, RefundResult, RefundRules, Reopen, StaffResult, StaffRule, TransitionRequest
} from '../ledger.ts'
import type {
  AlmaCallEntry, AuditEvent, CashnetReport, Checkout, CheckoutFilter, CheckoutHistory, CheckoutState, CheckoutSummary,
  ComposeMessages, IncomingPostback, MoneyRecord, NewCheckout, NewOutboxMessage, NewPayLink, NewSession,
  OutboxMessage, OutboxRecord, PayLinkEntry, PostbackRecord, RecordedRefund, SessionRecord, SessionStatus, UserIdKind
} from '../types.ts'
import { migrate, requireSchema } from './migrations.ts'
import { PostgresPayLinks } from './pay-links.ts'
import { Pool } from './pool.ts'
import { PostgresQueries } from './queries.ts'
import { PostgresSessions } from './sessions.ts'
import { getCheckout, moneyRecord, PostgresStore, reportsOf } from './store.ts'

export { IDENTITY_TABLES, MIGRATIONS, migrate, SCHEMA_VERSION, schemaVersion } from './migrations.ts'
export { isUnavailable, Pool } from './pool.ts'

export interface PostgresLedgerOptions {
  /** postgres://user:password@host:5432/dbname */
  url: string
  now?: () => Date
  /** For jobs: every session read-only; never migrated; an older schema is refused with LedgerSchemaError. */
  readOnly?: boolean
  /** Leave the schema as it is (npm run migrate --from checks and fills an empty one itself). */
  migrate?: boolean
  /** Connections in the pool (default 20). */
  poolSize?: number
  /** A campus's schema (SPEC 12): every connection's search_path; created, when missing, by the migration step. */
  schema?: string
}

/** The URL without its password, for messages. */
export function redactUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'DATABASE_URL'
  }
}

/** Creates a campus's schema if it is missing (two instances starting together: the loser's duplicate is harmless). */
export async function createSchema (pool: Pool, schema: string): Promise<void> {
  await pool.run(`CREATE SCHEMA IF NOT EXISTS ${schema}`).catch((error: unknown) => {
    const code = (error as { code?: string })?.code
    if (code !== '23505' && code !== '42P06') throw error
  })
}

export class PostgresLedger implements Ledger {
  readonly pool: Pool
  readonly #store: PostgresStore
  readonly #queries: PostgresQueries
  readonly #payLinks: PostgresPayLinks
  readonly #sessions: PostgresSessions
  readonly #now: () => Date

  private constructor (pool: Pool, now: () => Date) {
    this.pool = pool
    this.#now = now
    this.#store = new PostgresStore(pool, now)
    this.#queries = new PostgresQueries(pool)
    this.#payLinks = new PostgresPayLinks(pool, now)
    this.#sessions = new PostgresSessions(pool)
  }

  static async open (options: PostgresLedgerOptions): Promise<PostgresLedger> {
    const pool = new Pool({ url: options.url, readOnly: options.readOnly, max: options.poolSize, schema: options.schema })
    const where = options.schema === undefined ? redactUrl(options.url) : `${redactUrl(options.url)} (schema ${options.schema})`
    try {
      if (options.readOnly === true) await requireSchema(pool, where)
      else if (options.migrate !== false) {
        if (options.schema !== undefined) await createSchema(pool, options.schema)
        await migrate(pool)
      }
    } catch (error) {
      await pool.end()
      throw error
    }
    return new PostgresLedger(pool, options.now ?? (() => new Date()))
  }

  async createCheckout (checkout: NewCheckout): Promise<Checkout> { return await this.#store.createCheckout(checkout) }
  async getCheckout (id: string): Promise<Checkout | undefined> { return await getCheckout(this.pool, id) }
  async latestCheckoutForUser (userId: string, kind?: UserIdKind): Promise<Checkout | undefined> { return await this.#store.latestCheckoutForUser(userId, kind) }
  async paymentsInProgress (userId: string, primaryId: string, kind?: UserIdKind): Promise<Checkout[]> { return await this.#store.paymentsInProgress(userId, primaryId, kind) }
  async patronPayments (userId: string, limit: number, kind?: UserIdKind): Promise<Checkout[]> { return await this.#store.patronPayments(userId, limit, kind) }
  async markReviewsFromAudit (): Promise<string[]> { return await this.#store.markReviewsFromAudit() }
  async markUnderReview (checkoutId: string, tx: string, event: string, detail: Record<string, unknown>): Promise<boolean> { return await this.#store.markUnderReview(checkoutId, tx, event, detail) }
  async recordPostback (postback: IncomingPostback, decide: DecidePostback, messages?: ComposeMessages): Promise<RecordedPostback> {
    return await this.#store.recordPostback(postback, decide, messages)
  }

  async transition (request: TransitionRequest, fence?: number): Promise<boolean> { return await this.#store.transition(request, fence) }
  async markLinePosted (checkoutId: string, lineNo: number, postedAmount: Cents, detail: Record<string, unknown>, fence?: number): Promise<void> {
    await this.#store.markLinePosted(checkoutId, lineNo, postedAmount, detail, fence)
  }

  async recordAlmaCall (call: Omit<AlmaCallEntry, 'id'>, fence?: number): Promise<void> { await this.#store.recordAlmaCall(call, fence) }
  async recordAttempt (checkoutId: string, nextAttemptAt: Date | null, lastError: string, fence?: number): Promise<number> {
    return await this.#store.recordAttempt(checkoutId, nextAttemptAt, lastError, fence)
  }

  async requeue (checkoutId: string, by: string, action: 'retry' | 'post-confirmed', rule: StaffRule): Promise<StaffResult> { return await this.#store.requeue(checkoutId, by, action, rule) }
  async recordRefund (refund: RefundRequest, rules: RefundRules): Promise<RefundResult> { return await this.#store.recordRefund(refund, rules) }
  async moneyRecord (checkoutId: string): Promise<MoneyRecord | undefined> { return await moneyRecord(this.pool, checkoutId) }
  async reportsOf (checkoutIds: readonly string[]): Promise<Map<string, CashnetReport[]>> { return await reportsOf(this.pool, checkoutIds) }
  async resolveAttention (checkoutId: string, by: string, resolution: string, rule: StaffRule): Promise<StaffResult> { return await this.#store.resolveAttention(checkoutId, by, resolution, rule) }
  async reopenAttention (checkoutId: string, reopen: Reopen, detail: Record<string, unknown>): Promise<boolean> { return await this.#store.reopenAttention(checkoutId, reopen, detail) }
  async duePostings (now: Date): Promise<string[]> { return await this.#store.duePostings(now) }
  async expireCreated (createdBefore: Date): Promise<string[]> { return await this.#store.expireCreated(createdBefore) }
  async underReviewBefore (cutoff: Date): Promise<Checkout[]> { return await this.#store.underReviewBefore(cutoff) }
  async paidBefore (cutoff: Date): Promise<Checkout[]> { return await this.#store.paidBefore(cutoff) }
  async listCheckouts (filter: CheckoutFilter): Promise<{ checkouts: Checkout[], total: number }> { return await this.#queries.listCheckouts(filter) }
  async countCheckouts (search: string): Promise<{ byState: Record<CheckoutState, number>, openAttention: number }> { return await this.#queries.countCheckouts(search) }
  async checkoutPage (filter: CheckoutFilter, after: PageCursor | null, limit: number): Promise<Array<CheckoutSummary & { cursor: PageCursor }>> {
    return await this.#queries.checkoutPage(filter, after, limit)
  }

  async history (checkoutId: string): Promise<CheckoutHistory | undefined> { return await this.#queries.history(checkoutId) }
  async unmatchedPostbacks (since?: Date, limit?: number): Promise<PostbackRecord[]> { return await this.#queries.unmatchedPostbacks(since, limit) }
  async countUnmatchedPostbacks (): Promise<number> { return await this.#queries.countUnmatchedPostbacks() }
  async checkoutsTouchedSince (since: Date): Promise<Checkout[]> { return await this.#queries.checkoutsTouchedSince(since) }
  async openAttention (): Promise<Checkout[]> { return await this.#queries.openAttention() }
  async postbacksWithTx (tx: string): Promise<PostbackRecord[]> { return await this.#queries.postbacksWithTx(tx) }
  async postedLines (from: Date, to: Date): Promise<Array<{ checkout: Checkout, lineNo: number }>> { return await this.#queries.postedLines(from, to) }
  async refundsRecorded (from: Date, to: Date): Promise<RecordedRefund[]> { return await this.#queries.refundsRecorded(from, to) }
  async paidBetween (from: Date, to: Date): Promise<Checkout[]> { return await this.#queries.paidBetween(from, to) }
  async audit (checkoutId: string | null, event: string, detail: Record<string, unknown>): Promise<void> { await this.#store.audit(checkoutId, event, detail) }

  async recordPayLink (link: NewPayLink, detail: Record<string, unknown>): Promise<void> { await this.#payLinks.record(link, detail) }
  async getPayLink (linkId: string): Promise<PayLinkEntry | undefined> { return await this.#payLinks.get(linkId) }
  async payLinksFor (primaryId: string, limit: number): Promise<PayLinkEntry[]> { return await this.#payLinks.forPatron(primaryId, limit) }
  async revokePayLink (linkId: string, by: string): Promise<boolean> { return await this.#payLinks.revoke(linkId, by) }
  async payLinkEvents (linkId: string): Promise<AuditEvent[]> { return await this.#payLinks.events(linkId) }

  async enqueueMessages (messages: NewOutboxMessage[]): Promise<void> { await this.#store.enqueueMessages(messages) }
  async claimDueMessages (now: Date, limit: number, leaseUntil: Date): Promise<OutboxMessage[]> { return await this.#store.claimDueMessages(now, limit, leaseUntil) }
  async markMessageSent (id: string, at: Date): Promise<void> { await this.#store.markMessageSent(id, at) }
  async markMessageFailed (id: string, failure: OutboxFailure): Promise<void> { await this.#store.markMessageFailed(id, failure) }
  async outboxMessage (id: string): Promise<OutboxRecord | undefined> { return await this.#store.outboxMessage(id) }

  async claimPosting (checkoutId: string, holder: string, leaseMs: number): Promise<PostingLease | null> { return await this.#store.claimPosting(checkoutId, holder, leaseMs) }
  async renewPosting (lease: PostingLease, leaseMs: number): Promise<boolean> { return await this.#store.renewPosting(lease, leaseMs) }
  async releasePosting (lease: PostingLease): Promise<void> { await this.#store.releasePosting(lease) }
  async releaseHeldBy (checkoutId: string, holder: string): Promise<boolean> { return await this.#store.releaseHeldBy(checkoutId, holder) }
  async reserveAlmaCalls (key: string, limit: number, windowMs: number, wanted: number, holder: string, held?: AlmaCallHolds): Promise<AlmaCallReservation> {
    return await this.#store.reserveAlmaCalls(key, limit, windowMs, wanted, holder, held)
  }

  async createSession (session: NewSession): Promise<void> { await this.#sessions.create(session) }
  async touchSession (idHash: string, now: Date, limits: { idleMs: number, touchEveryMs: number }): Promise<SessionStatus> {
    return await this.#sessions.touch(idHash, now.getTime(), limits.idleMs, limits.touchEveryMs)
  }

  async endSession (idHash: string): Promise<SessionRecord | undefined> { return await this.#sessions.end(idHash) }
  async endPayLinkSessions (linkId: string): Promise<number> { return await this.#sessions.endPayLink(linkId, this.#now().getTime()) }
  async purgeSessions (now: Date, idleMs: number): Promise<number> { return await this.#sessions.purge(now.getTime(), idleMs) }

  /** Whether a write could be taken now: the server answers and is not a read-only standby. */
  async writable (): Promise<boolean> {
    try {
      const rows = await this.pool.query("SELECT pg_is_in_recovery() AS standby, current_setting('default_transaction_read_only') AS ro")
      return rows[0].standby === false && rows[0].ro === 'off'
    } catch {
      return false
    }
  }

  async close (): Promise<void> {
    await this.pool.end()
  }
}
