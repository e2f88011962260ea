// The checkout, postback and posting writes in PostgreSQL, and the reads they need: the same meaning as the
// SQLite store (src/ledger/sqlite/store.ts). Each write is one transaction; a postback's runs with the checkout
// row locked FOR UPDATE (and its tx under an advisory lock, so two checkouts cannot both take one tx), and the
// rules that decide it run inside, synchronously, on the record as it is then. Posting writes may carry a
// lease's fence: checked in the same transaction, LeaseLost when it moved on.

import { type Cents, formatDecimal } from '../../money.ts'
import { type BudgetState, decideReservation, othersMayHold, retryInMs } from '../alma-budget.ts'
import { LeaseLost } from '../errors.ts'
import { CAPTURE_PENDING_EVENT, referenceRecorded } from '../ledger.ts'
import type {
  AlmaCallHolds, AlmaCallReservation, DecidePostback, OutboxFailure, PostingLease, RecordedPostback, RefundRequest, RefundResult, RefundRules, Reopen, StaffResult, StaffRule, TransitionRequest
} from '../ledger.ts'
import type {
  AlmaCallEntry, CashnetReport, Checkout, CheckoutState, ComposeMessages, IncomingPostback, MoneyRecord, NewCheckout, NewOutboxMessage,
  OutboxMessage, OutboxRecord, PriorState, RefundRecord, UserIdKind
} from '../types.ts'
import { PROVIDER_LABEL } from '../types.ts'
import { reportsByCheckout, toCheckout, toOutbox, toPostback, toRefund } from '../sqlite/rows.ts'
import type { Pool, Queries } from './pool.ts'

export async function getCheckout (q: Queries, id: string, lock = false): Promise<Checkout | undefined> {
  const rows = await q.query(`SELECT * FROM checkouts WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id])
  if (rows.length === 0) return undefined
  const lines = await q.query('SELECT * FROM checkout_lines WHERE checkout_id = $1 ORDER BY line_no', [id])
  return toCheckout(rows[0], lines)
}

export async function reports (q: Queries, checkoutId: string): Promise<CashnetReport[]> {
  return (await reportsOf(q, [checkoutId])).get(checkoutId) ?? []
}

/** The same for several checkouts in one query, each one's oldest first. */
export async function reportsOf (q: Queries, checkoutIds: readonly string[]): Promise<Map<string, CashnetReport[]>> {
  const rows = await q.query(`SELECT p.checkout_id, p.id, p.tx, p.outcome, p.total_cents, i.item_no, i.item_code, i.amount_cents, i.qty
      FROM postbacks p LEFT JOIN postback_items i ON i.postback_id = p.id
      WHERE p.checkout_id = ANY($1::text[]) AND p.result = '0' AND p.tx != '' AND p.total_cents IS NOT NULL
        AND p.outcome IN ('PAID', 'MISMATCH', 'DOUBLE_CHARGE')
      ORDER BY p.id, i.item_no`, [[...checkoutIds]])
  return reportsByCheckout(rows)
}

export async function refunds (q: Queries, checkoutId: string): Promise<RefundRecord[]> {
  return (await q.query('SELECT * FROM refunds WHERE checkout_id = $1 ORDER BY id', [checkoutId])).map(toRefund)
}

export async function moneyRecord (q: Queries, checkoutId: string, lock = false): Promise<MoneyRecord | undefined> {
  const checkout = await getCheckout(q, checkoutId, lock)
  if (checkout === undefined) return undefined
  return { checkout, reports: await reports(q, checkoutId), refunds: await refunds(q, checkoutId) }
}

// A review an instance from before the review mark left unmarked: the checkout's CAPTURE_PENDING_EVENT, written as
// a literal so that the planner uses the partial index on it (audit_capture_pending), and the tx of the latest one.
const PENDING = `'${CAPTURE_PENDING_EVENT}'`
const HAS_PENDING = `EXISTS (SELECT 1 FROM audit_events e WHERE e.checkout_id = checkouts.id AND e.event = ${PENDING})`
const LATEST_PENDING_TX = `(SELECT COALESCE(e.detail::jsonb ->> 'tx', '') FROM audit_events e
  WHERE e.checkout_id = checkouts.id AND e.event = ${PENDING} ORDER BY e.id DESC LIMIT 1)`

export class PostgresStore {
  readonly #pool: Pool
  readonly #now: () => Date

  constructor (pool: Pool, now: () => Date) {
    this.#pool = pool
    this.#now = now
  }

  #iso (): string {
    return this.#now().toISOString()
  }

  async #event (q: Queries, checkoutId: string | null, event: string, fromState: string | null, toState: string | null, detail: Record<string, unknown>): Promise<void> {
    await q.run('INSERT INTO audit_events (checkout_id, at, event, from_state, to_state, detail) VALUES ($1, $2, $3, $4, $5, $6)',
      [checkoutId, this.#iso(), event, fromState, toState, JSON.stringify(detail)])
  }

  /** Inside a posting write's transaction: the checkout's fence must still be this one, else nothing is written. */
  async #fenced (q: Queries, checkoutId: string, fence: number | undefined): Promise<void> {
    if (fence === undefined) return
    const rows = await q.query('SELECT posting_fence FROM checkouts WHERE id = $1 FOR UPDATE', [checkoutId])
    if (rows.length === 0 || rows[0].posting_fence !== fence) throw new LeaseLost(checkoutId, fence)
  }

  async createCheckout (checkout: NewCheckout): Promise<Checkout> {
    const now = this.#iso()
    const total = checkout.lines.reduce((s, l) => s + l.amount, 0)
    return await this.#pool.transaction(async q => {
      await q.run(`INSERT INTO checkouts (id, user_id, user_id_kind, primary_id, patron_name, email, provider, state, total_cents, currency, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 'CREATED', $8, $9, $10, $11)`,
      [checkout.id, checkout.userId, checkout.userIdKind ?? 'username', checkout.primaryId, checkout.patronName, checkout.email, checkout.provider ?? 'cashnet', total, checkout.currency, now, now])
      for (const line of checkout.lines) {
        await q.run(`INSERT INTO checkout_lines (checkout_id, line_no, fee_id, fee_type, fee_type_desc, owner, owner_desc, title, item_code, amount_cents, balance_cents)
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [checkout.id, line.lineNo, line.feeId, line.feeType, line.feeTypeDesc, line.owner, line.ownerDesc, line.title, line.itemCode, line.amount, line.balance ?? null])
      }
      await this.#event(q, checkout.id, 'checkout.created', null, 'CREATED', { total, lines: checkout.lines.length, provider: checkout.provider ?? 'cashnet' })
      return await getCheckout(q, checkout.id) as Checkout
    })
  }

  async latestCheckoutForUser (userId: string, kind: UserIdKind = 'username'): Promise<Checkout | undefined> {
    const rows = await this.#pool.query('SELECT id FROM checkouts WHERE user_id = $1 AND user_id_kind = $2 ORDER BY created_at DESC, seq DESC LIMIT 1', [userId, kind])
    return rows.length === 0 ? undefined : await getCheckout(this.#pool, rows[0].id)
  }

  /** This payer's payments made or tried (never the abandoned ones), newest first, at most `limit`. */
  async patronPayments (userId: string, limit: number, kind: UserIdKind = 'username'): Promise<Checkout[]> {
    const rows = await this.#pool.query(`SELECT id FROM checkouts
      WHERE user_id = $1 AND user_id_kind = $3 AND state IN ('PAID', 'POSTED', 'NEEDS_ATTENTION', 'DECLINED')
      ORDER BY created_at DESC, seq DESC LIMIT $2`, [userId, Math.max(0, Math.floor(limit)), kind])
    return await Promise.all(rows.map(async r => await getCheckout(this.#pool, r.id) as Checkout))
  }

  async paymentsInProgress (userId: string, primaryId: string, kind: UserIdKind = 'username'): Promise<Checkout[]> {
    // a review an older instance left unmarked is found among the patron's checkouts (indexed by username and by
    // primary id) by its audit event (a partial index), reported with that event's tx as its reviewTx
    const patron = `((user_id = $1 AND user_id_kind = $3) OR primary_id = $2)
        AND EXISTS (SELECT 1 FROM checkout_lines WHERE checkout_id = checkouts.id AND posted_at IS NULL)`
    const rows = await this.#pool.query(`SELECT id, review_tx AS held, created_at, seq FROM checkouts
      WHERE ((state IN ('PAID', 'NEEDS_ATTENTION') AND (state = 'PAID' OR resolved_at IS NULL))
          OR (state IN ('CREATED', 'EXPIRED') AND review_tx IS NOT NULL))
        AND ${patron}
      UNION ALL
      SELECT id, ${LATEST_PENDING_TX}, created_at, seq FROM checkouts
      WHERE ${patron} AND state IN ('CREATED', 'EXPIRED') AND review_tx IS NULL AND ${HAS_PENDING}
      ORDER BY created_at, seq`, [userId, primaryId, kind])
    return await Promise.all(rows.map(async r => {
      const checkout = await getCheckout(this.#pool, r.id) as Checkout
      return checkout.reviewTx === null && r.held !== null ? { ...checkout, reviewTx: r.held as string } : checkout
    }))
  }

  async markReviewsFromAudit (): Promise<string[]> {
    return await this.#pool.transaction(async q => {
      // the row lock and the re-read of review_tx under it: two instances sweeping together mark each checkout once
      const rows = await q.query(`UPDATE checkouts SET review_tx = ${LATEST_PENDING_TX}
        WHERE id IN (SELECT checkout_id FROM audit_events WHERE event = ${PENDING})
          AND state IN ('CREATED', 'EXPIRED') AND review_tx IS NULL
        RETURNING id, review_tx, seq`)
      rows.sort((a, b) => a.seq - b.seq)
      for (const row of rows) await this.#event(q, row.id, 'checkout.review_marked', null, null, { tx: row.review_tx, from: CAPTURE_PENDING_EVENT })
      return rows.map(r => r.id as string)
    })
  }

  async markUnderReview (checkoutId: string, tx: string, event: string, detail: Record<string, unknown>): Promise<boolean> {
    return await this.#pool.transaction(async q => {
      const rows = await q.query("UPDATE checkouts SET review_tx = $1, updated_at = $2 WHERE id = $3 AND state IN ('CREATED', 'EXPIRED') RETURNING id", [tx, this.#iso(), checkoutId])
      await this.#event(q, checkoutId, event, null, null, { ...detail, tx, underReview: rows.length === 1 })
      return rows.length === 1
    })
  }

  async recordPostback (postback: IncomingPostback, decide: DecidePostback, messages?: ComposeMessages): Promise<RecordedPostback> {
    return await this.#pool.transaction(async q => {
      const checkout = postback.checkoutId === null ? undefined : await getCheckout(q, postback.checkoutId, true)
      // One tx belongs to one checkout: postbacks carrying the same tx for different checkouts take turns.
      if (postback.tx !== '') await q.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 15))', [postback.tx])
      const earlier = checkout === undefined
        ? []
        : (await q.query('SELECT * FROM postbacks WHERE checkout_id = $1 ORDER BY id', [checkout.id])).map(toPostback)
      const elsewhere = postback.tx === '' ? [] : await this.#checkoutsWithTx(q, postback.tx, checkout?.id ?? postback.checkoutId ?? '')
      const decision = decide(checkout, earlier, elsewhere)
      const items = postback.items ?? null
      const inserted = await q.query(`INSERT INTO postbacks (checkout_id, received_at, peer, result, tx, outcome, reason, raw_body, total_cents)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
      [checkout?.id ?? postback.checkoutId, this.#iso(), postback.peer, postback.result, postback.tx, decision.outcome, decision.reason, postback.rawBody,
        items === null ? null : items.reduce((s, i) => s + i.amount, 0)])
      const id = inserted[0].id as number
      if (items !== null) {
        for (const [index, item] of items.entries()) {
          await q.run('INSERT INTO postback_items (postback_id, item_no, item_code, amount_cents, qty) VALUES ($1, $2, $3, $4, $5)',
            [id, index + 1, item.itemCode, item.amount, item.qty])
        }
      }
      // A new reason for attention (a double charge on a payment staff had settled) reopens it.
      if (checkout !== undefined && decision.to !== undefined && (decision.to !== checkout.state || decision.to === 'NEEDS_ATTENTION')) {
        const now = this.#iso()
        const payment = decision.payment
        const kind = decision.to === 'NEEDS_ATTENTION' ? decision.attentionKind ?? 'UNKNOWN' : null
        const openDouble = checkout.state === 'NEEDS_ATTENTION' && checkout.attentionKind === 'DOUBLE_CHARGE'
        const prior: PriorState | null = kind === 'DOUBLE_CHARGE' && !openDouble
          ? { state: checkout.state, kind: checkout.state === 'NEEDS_ATTENTION' ? checkout.attentionKind : null, reason: checkout.attentionReason, resolvedAt: checkout.resolvedAt, resolvedBy: checkout.resolvedBy, resolution: checkout.resolution }
          : null
        await q.run(`UPDATE checkouts SET state = $1, updated_at = $2,
            tx = COALESCE($3, tx), batchno = COALESCE($4, batchno), effdate = COALESCE($5, effdate), pmtcode = COALESCE($6, pmtcode),
            paid_at = CASE WHEN $7 THEN $2::timestamptz ELSE paid_at END,
            attention_reason = CASE WHEN $1 = 'NEEDS_ATTENTION' THEN $8 ELSE attention_reason END,
            attention_kind = COALESCE($9, attention_kind),
            attention_prior = COALESCE($10, attention_prior),
            resolved_at = NULL, resolved_by = NULL, resolution = NULL,
            next_attempt_at = CASE WHEN $1 = 'PAID' THEN $2::timestamptz ELSE next_attempt_at END
          WHERE id = $11`,
        [decision.to, now, payment?.tx ?? null, payment?.batchno ?? null, payment?.effdate ?? null, payment?.pmtcode ?? null,
          payment !== undefined, decision.reason, kind, prior === null ? null : JSON.stringify(prior), checkout.id])
        await this.#event(q, checkout.id, `postback.${decision.outcome.toLowerCase()}`, checkout.state, decision.to, { postback: id, tx: postback.tx, result: postback.result, reason: decision.reason, ...(kind !== null ? { kind } : {}) })
        if (messages !== undefined) await this.#compose(q, messages, checkout.id)
      } else {
        await this.#event(q, checkout?.id ?? null, `postback.${decision.outcome.toLowerCase()}`, checkout?.state ?? null, checkout?.state ?? null, { postback: id, tx: postback.tx, result: postback.result, reason: decision.reason, checkout: postback.checkoutId })
      }
      return { id, decision, checkout: checkout === undefined ? undefined : await getCheckout(q, checkout.id) }
    })
  }

  /** Other checkouts a tx is already recorded for: as their payment, or in a postback that reported money taken. */
  async #checkoutsWithTx (q: Queries, tx: string, exceptId: string): Promise<string[]> {
    return (await q.query(`SELECT id FROM checkouts WHERE tx = $1 AND id != $2
        UNION SELECT checkout_id FROM postbacks WHERE tx = $1 AND result = '0' AND checkout_id IS NOT NULL AND checkout_id != $2
          AND outcome IN ('PAID', 'MISMATCH', 'DOUBLE_CHARGE', 'DUPLICATE')`, [tx, exceptId])).map(r => r.id as string)
  }

  async transition (request: TransitionRequest, fence?: number): Promise<boolean> {
    return await this.#pool.transaction(async q => {
      await this.#fenced(q, request.checkoutId, fence)
      const rows = await q.query('SELECT state FROM checkouts WHERE id = $1 FOR UPDATE', [request.checkoutId])
      if (rows.length === 0 || !request.from.includes(rows[0].state)) return false
      const now = this.#iso()
      const kind = request.to === 'NEEDS_ATTENTION' ? request.attentionKind ?? 'UNKNOWN' : null
      await q.run(`UPDATE checkouts SET state = $1, updated_at = $2,
          posted_at = CASE WHEN $1 = 'POSTED' THEN $2::timestamptz ELSE posted_at END,
          attention_reason = COALESCE($3, attention_reason),
          attention_kind = COALESCE($4, attention_kind),
          unapplied_cents = COALESCE($5, unapplied_cents),
          next_attempt_at = CASE WHEN $1 IN ('POSTED', 'NEEDS_ATTENTION') THEN NULL ELSE next_attempt_at END,
          resolved_at = NULL, resolved_by = NULL, resolution = NULL
        WHERE id = $6`,
      [request.to, now, request.attentionReason ?? null, kind, request.unapplied ?? null, request.checkoutId])
      await this.#event(q, request.checkoutId, request.event, rows[0].state, request.to, { ...(kind !== null ? { kind } : {}), ...request.detail })
      if (request.messages !== undefined) await this.#compose(q, request.messages, request.checkoutId)
      return true
    })
  }

  async markLinePosted (checkoutId: string, lineNo: number, postedAmount: Cents, detail: Record<string, unknown>, fence?: number): Promise<void> {
    await this.#pool.transaction(async q => {
      await this.#fenced(q, checkoutId, fence)
      const changed = await q.run('UPDATE checkout_lines SET posted_cents = $1, posted_at = $2 WHERE checkout_id = $3 AND line_no = $4 AND posted_at IS NULL',
        [postedAmount, this.#iso(), checkoutId, lineNo])
      if (changed === 1) await this.#event(q, checkoutId, 'line.posted', null, null, { line: lineNo, posted: postedAmount, ...detail })
    })
  }

  async recordAlmaCall (call: Omit<AlmaCallEntry, 'id'>, fence?: number): Promise<void> {
    const values = [call.checkoutId, call.at, call.method, call.path, call.status, call.errorCode, call.errorMessage.slice(0, 1000), call.trackingId, call.durationMs]
    if (fence === undefined) {
      await this.#pool.run(`INSERT INTO alma_calls (checkout_id, at, method, path, status, error_code, error_message, tracking_id, duration_ms)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, values)
      return
    }
    // one statement: written only while the checkout's fence is still this one
    const written = await this.#pool.run(`INSERT INTO alma_calls (checkout_id, at, method, path, status, error_code, error_message, tracking_id, duration_ms)
      SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE EXISTS (SELECT 1 FROM checkouts WHERE id = $1 AND posting_fence = $10)`, [...values, fence])
    if (written === 0) throw new LeaseLost(call.checkoutId, fence)
  }

  async recordAttempt (checkoutId: string, nextAttemptAt: Date | null, lastError: string, fence?: number): Promise<number> {
    return await this.#pool.transaction(async q => {
      await this.#fenced(q, checkoutId, fence)
      const rows = await q.query('UPDATE checkouts SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, updated_at = $3 WHERE id = $4 RETURNING attempts',
        [nextAttemptAt?.toISOString() ?? null, lastError.slice(0, 1000), this.#iso(), checkoutId])
      const attempts = rows.length === 0 ? 0 : rows[0].attempts as number
      await this.#event(q, checkoutId, 'posting.attempt_failed', null, null, { attempt: attempts, error: lastError, retryAt: nextAttemptAt?.toISOString() ?? null })
      return attempts
    })
  }

  async requeue (checkoutId: string, by: string, action: 'retry' | 'post-confirmed', rule: StaffRule): Promise<StaffResult> {
    return await this.#pool.transaction(async (q): Promise<StaffResult> => {
      const record = await moneyRecord(q, checkoutId, true)
      if (record === undefined) return { done: false, reason: 'There is no checkout with that id.' }
      const refused = rule(record)
      if (refused !== null) return { done: false, reason: refused }
      const { checkout } = record
      const open = checkout.state === 'PAID' || (checkout.state === 'NEEDS_ATTENTION' && checkout.resolvedAt === null)
      if (!open || checkout.tx === null || checkout.tx === '') return { done: false, reason: `This payment is ${checkout.state}; it cannot be posted from here.` }
      const now = this.#iso()
      await q.run("UPDATE checkouts SET state = 'PAID', attempts = 0, next_attempt_at = $1, updated_at = $1 WHERE id = $2", [now, checkoutId])
      await this.#event(q, checkoutId, 'posting.retry_requested', checkout.state, 'PAID', action === 'retry' ? { by } : { by, action })
      return { done: true, checkout: await getCheckout(q, checkoutId) as Checkout }
    })
  }

  async resolveAttention (checkoutId: string, by: string, resolution: string, rule: StaffRule): Promise<StaffResult> {
    return await this.#pool.transaction(async (q): Promise<StaffResult> => {
      const record = await moneyRecord(q, checkoutId, true)
      if (record === undefined) return { done: false, reason: 'There is no checkout with that id.' }
      const refused = rule(record)
      if (refused !== null) return { done: false, reason: refused }
      if (!await this.#settle(q, checkoutId, by, resolution)) {
        return { done: false, reason: `This payment is ${record.checkout.state}; only payments that need attention can be marked settled.` }
      }
      return { done: true, checkout: await getCheckout(q, checkoutId) as Checkout }
    })
  }

  async #settle (q: Queries, checkoutId: string, by: string, resolution: string): Promise<boolean> {
    const now = this.#iso()
    const changed = await q.run("UPDATE checkouts SET resolved_at = $1, resolved_by = $2, resolution = $3, updated_at = $1 WHERE id = $4 AND state = 'NEEDS_ATTENTION' AND resolved_at IS NULL",
      [now, by, resolution, checkoutId])
    if (changed === 1) await this.#event(q, checkoutId, 'attention.resolved', 'NEEDS_ATTENTION', 'NEEDS_ATTENTION', { by, resolution })
    return changed === 1
  }

  async reopenAttention (checkoutId: string, reopen: Reopen, detail: Record<string, unknown>): Promise<boolean> {
    return await this.#pool.transaction(async q => await this.#reopen(q, checkoutId, reopen, detail))
  }

  /** A settled NEEDS_ATTENTION payment back in front of staff (as the SQLite store does); false if it is not settled. */
  async #reopen (q: Queries, checkoutId: string, reopen: Reopen, detail: Record<string, unknown>): Promise<boolean> {
    const before = await getCheckout(q, checkoutId, true)
    if (before === undefined || before.state !== 'NEEDS_ATTENTION' || before.resolvedAt === null) return false
    const changed = await q.run(`UPDATE checkouts SET attention_kind = $1, attention_reason = $2, resolved_at = NULL, resolved_by = NULL, resolution = NULL, updated_at = $3
        WHERE id = $4 AND state = 'NEEDS_ATTENTION' AND resolved_at IS NOT NULL`,
    [reopen.reopen, reopen.reason, this.#iso(), checkoutId])
    if (changed !== 1) return false
    await this.#event(q, checkoutId, 'attention.reopened', 'NEEDS_ATTENTION', 'NEEDS_ATTENTION', {
      kind: reopen.reopen,
      reason: reopen.reason,
      ...detail,
      settled: { by: before.resolvedBy, at: before.resolvedAt, resolution: before.resolution, kind: before.attentionKind }
    })
    return true
  }

  async recordRefund (refund: RefundRequest, rules: RefundRules): Promise<RefundResult> {
    return await this.#pool.transaction(async (q): Promise<RefundResult> => {
      const before = await moneyRecord(q, refund.checkoutId, true)
      if (before === undefined) return { recorded: false, reason: 'no such checkout' }
      const refused = rules.refuse(before)
      if (refused !== null) return { recorded: false, reason: refused }
      // the unique index on (checkout, tx, reference) has the last word, whatever the rule let through
      const kind = refund.kind ?? 'refund'
      const rows = await q.query('INSERT INTO refunds (checkout_id, tx, amount_cents, reference, note, "by", at, kind) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING id',
        [refund.checkoutId, refund.tx, refund.amount, refund.reference, refund.note, refund.by, this.#iso(), kind])
      if (rows.length === 0) return { recorded: false, reason: referenceRecorded(refund) }
      const id = rows[0].id as number
      await this.#event(q, refund.checkoutId, `${kind}.recorded`, null, null, { refund: id, tx: refund.tx, amount: refund.amount, reference: refund.reference, note: refund.note, by: refund.by })
      const after = await moneyRecord(q, refund.checkoutId) as MoneyRecord
      const effect = rules.effect(after)
      const checkout = after.checkout
      if (effect === 'settle') {
        await this.#settle(q, checkout.id, refund.by, `refund of ${formatDecimal(refund.amount)} recorded (${PROVIDER_LABEL[checkout.provider] ?? PROVIDER_LABEL.cashnet} refund ${refund.reference}): ${refund.note}`)
      } else if (effect === 'restore') {
        await this.#restoreAfterDoubleCharge(q, checkout, refund.by, id)
      } else if (effect !== 'none') {
        const reopened = await this.#reopen(q, checkout.id, effect, { refund: id, tx: refund.tx, reference: refund.reference })
        return { recorded: true, id, effect: reopened ? 'reopen' : 'none', checkout: await getCheckout(q, checkout.id) as Checkout }
      }
      return { recorded: true, id, effect, checkout: await getCheckout(q, checkout.id) as Checkout }
    })
  }

  /** Every extra charge refunded: back to the state the original payment had (as the SQLite store does). */
  async #restoreAfterDoubleCharge (q: Queries, checkout: Checkout, by: string, refundId: number): Promise<void> {
    const raw = (await q.query('SELECT attention_prior FROM checkouts WHERE id = $1', [checkout.id]))[0]
    let prior: PriorState | null = null
    try { prior = raw.attention_prior === null ? null : JSON.parse(raw.attention_prior) as PriorState } catch { prior = null }
    const allPosted = checkout.lines.every(l => l.postedAt !== null)
    let state: CheckoutState
    if (prior?.state === 'PAID' || prior?.state === 'POSTED' || prior?.state === 'NEEDS_ATTENTION') state = prior.state
    else state = allPosted && checkout.unapplied === 0 ? 'POSTED' : 'NEEDS_ATTENTION'
    const now = this.#iso()
    if (state === 'NEEDS_ATTENTION') {
      const kind = prior?.state === 'NEEDS_ATTENTION' ? prior.kind ?? 'UNKNOWN' : 'UNKNOWN'
      const reason = prior?.state === 'NEEDS_ATTENTION' && prior.reason != null ? prior.reason : 'the double charge was refunded; the state before it was not recorded: check the history'
      await q.run(`UPDATE checkouts SET state = 'NEEDS_ATTENTION', updated_at = $1, attention_kind = $2, attention_reason = $3, attention_prior = NULL,
          resolved_at = $4, resolved_by = $5, resolution = $6 WHERE id = $7`,
      [now, kind, reason, prior?.resolvedAt ?? null, prior?.resolvedBy ?? null, prior?.resolution ?? null, checkout.id])
    } else {
      await q.run(`UPDATE checkouts SET state = $1, updated_at = $2, attention_prior = NULL,
          next_attempt_at = CASE WHEN $1 = 'PAID' THEN $2::timestamptz ELSE NULL END, attempts = CASE WHEN $1 = 'PAID' THEN 0 ELSE attempts END WHERE id = $3`,
      [state, now, checkout.id])
    }
    await this.#event(q, checkout.id, 'double_charge.refunded', 'NEEDS_ATTENTION', state, { by, refund: refundId })
  }

  /** PAID checkouts whose next attempt is due and whose posting lease is free or expired. */
  async duePostings (now: Date): Promise<string[]> {
    return (await this.#pool.query(`SELECT id FROM checkouts WHERE state = 'PAID' AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
        AND (posting_expires_at IS NULL OR posting_expires_at <= $1) ORDER BY paid_at, seq`, [now.toISOString()])).map(r => r.id)
  }

  async underReviewBefore (cutoff: Date): Promise<Checkout[]> {
    const rows = await this.#pool.query("SELECT id FROM checkouts WHERE review_tx IS NOT NULL AND state IN ('CREATED', 'EXPIRED') AND updated_at < $1 ORDER BY updated_at, seq", [cutoff.toISOString()])
    const out: Checkout[] = []
    for (const row of rows) {
      const checkout = await getCheckout(this.#pool, row.id)
      if (checkout !== undefined) out.push(checkout)
    }
    return out
  }

  async expireCreated (createdBefore: Date): Promise<string[]> {
    return await this.#pool.transaction(async q => {
      const rows = await q.query(`UPDATE checkouts SET state = 'EXPIRED', updated_at = $1 WHERE state = 'CREATED' AND created_at < $2 AND review_tx IS NULL AND NOT ${HAS_PENDING} RETURNING id, seq`,
        [this.#iso(), createdBefore.toISOString()])
      rows.sort((a, b) => a.seq - b.seq)
      for (const row of rows) await this.#event(q, row.id, 'checkout.expired', 'CREATED', 'EXPIRED', {})
      return rows.map(r => r.id as string)
    })
  }

  async paidBefore (cutoff: Date): Promise<Checkout[]> {
    const rows = await this.#pool.query("SELECT id FROM checkouts WHERE state = 'PAID' AND paid_at < $1 ORDER BY paid_at, seq", [cutoff.toISOString()])
    return await Promise.all(rows.map(async r => await getCheckout(this.#pool, r.id) as Checkout))
  }

  async audit (checkoutId: string | null, event: string, detail: Record<string, unknown>): Promise<void> {
    await this.#event(this.#pool, checkoutId, event, null, null, detail)
  }

  // The posting lease (SPEC 11): a claim bumps the fence, so every write made under an older claim is refused.

  async claimPosting (checkoutId: string, holder: string, leaseMs: number): Promise<PostingLease | null> {
    const now = this.#now()
    const expiresAt = new Date(now.getTime() + leaseMs)
    const rows = await this.#pool.query(`UPDATE checkouts SET posting_fence = posting_fence + 1, posting_holder = $2, posting_expires_at = $3
        WHERE id = $1 AND state = 'PAID' AND (posting_expires_at IS NULL OR posting_expires_at <= $4) RETURNING posting_fence`,
    [checkoutId, holder, expiresAt.toISOString(), now.toISOString()])
    return rows.length === 0 ? null : { checkoutId, holder, fence: rows[0].posting_fence as number, expiresAt }
  }

  async renewPosting (lease: PostingLease, leaseMs: number): Promise<boolean> {
    const expiresAt = new Date(this.#now().getTime() + leaseMs)
    const changed = await this.#pool.run(`UPDATE checkouts SET posting_expires_at = $4
        WHERE id = $1 AND posting_fence = $2 AND posting_holder = $3 AND posting_expires_at IS NOT NULL`,
    [lease.checkoutId, lease.fence, lease.holder, expiresAt.toISOString()])
    if (changed === 1) lease.expiresAt = expiresAt
    return changed === 1
  }

  async releasePosting (lease: PostingLease): Promise<void> {
    await this.#pool.run('UPDATE checkouts SET posting_holder = NULL, posting_expires_at = NULL WHERE id = $1 AND posting_fence = $2 AND posting_holder = $3',
      [lease.checkoutId, lease.fence, lease.holder])
  }

  /** Gives up any lease this holder holds on the checkout, whatever its fence (Ledger.releaseHeldBy). */
  async releaseHeldBy (checkoutId: string, holder: string): Promise<boolean> {
    return await this.#pool.run('UPDATE checkouts SET posting_holder = NULL, posting_expires_at = NULL WHERE id = $1 AND posting_holder = $2',
      [checkoutId, holder]) === 1
  }

  /**
   * Up to `wanted` Alma calls for `holder` (one process) under a sliding window shared by every instance: one key
   * at a time (an advisory lock), the rule of ../alma-budget.ts. With `held` (AlmaCallHolds), a call granted counts
   * until it is told over, as SQLite's store does it: `at` put `openMs` ahead (less the window), moved back by an
   * end told to when Alma read the call at the latest.
   */
  async reserveAlmaCalls (key: string, limit: number, windowMs: number, wanted: number, holder: string, held?: AlmaCallHolds): Promise<AlmaCallReservation> {
    return await this.#pool.transaction(async q => {
      // An instance paused or cut off while it holds the key's lock must not stall every other one: after 500 ms
      // the wait fails (55P03, LedgerUnavailable) and the caller asks again shortly.
      await q.run("SET LOCAL lock_timeout = '500ms'")
      await q.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 11))', [key])
      // the time is read under the lock, so a wait for it does not stamp the reservations early
      const now = this.#now()
      if (held !== undefined && held.ends.length > 0) {
        // never later than it was put: a call counts at most its open bound, which the window's sharing counted on
        await q.run(`UPDATE alma_call_slots s SET at = LEAST(s.at, e.read_at) FROM unnest($2::bigint[], $3::timestamptz[]) AS e(id, read_at)
          WHERE s.key = $1 AND s.id = e.id`,
        [key, held.ends.map(e => e.id), held.ends.map(e => new Date(now.getTime() - Math.max(0, e.readAgoMs)).toISOString())])
      }
      const since = new Date(now.getTime() - windowMs).toISOString()
      const expired = await q.run('DELETE FROM alma_call_slots WHERE key = $1 AND at <= $2', [key, since])
      const rows = await q.query('SELECT in_window, last_holder, shared_until_ms FROM alma_budget WHERE key = $1', [key])
      const state: BudgetState = {
        inWindow: Math.max(0, Number(rows[0]?.in_window ?? 0) - expired),
        lastHolder: (rows[0]?.last_holder as string | null | undefined) ?? null,
        sharedUntilMs: Number(rows[0]?.shared_until_ms ?? 0)
      }
      if (othersMayHold(state, holder)) {
        const latest = (await q.query('SELECT MAX(at) AS latest FROM alma_call_slots WHERE key = $1', [key]))[0]?.latest
        state.latestAtMs = latest == null ? null : new Date(latest).getTime()
      }
      const ask = { limit, windowMs, wanted, holder, now: now.getTime() }
      let decision = decideReservation(state, ask)
      if (decision.recount) {
        const counted = Number((await q.query('SELECT COUNT(*) AS n FROM alma_call_slots WHERE key = $1', [key]))[0].n)
        if (counted !== state.inWindow) decision = decideReservation({ ...state, inWindow: counted }, ask)
      }
      let ids: number[] = []
      if (decision.granted > 0) {
        const at = held === undefined ? now : new Date(now.getTime() + Math.max(0, held.openMs - windowMs))
        ids = (await q.query('INSERT INTO alma_call_slots (key, at) SELECT $1, $2 FROM generate_series(1, $3::int) RETURNING id', [key, at.toISOString(), decision.granted]))
          .map(r => Number(r.id))
      }
      await q.run(`INSERT INTO alma_budget (key, in_window, last_holder, shared_until_ms) VALUES ($1, $2, $3, $4)
        ON CONFLICT (key) DO UPDATE SET in_window = excluded.in_window, last_holder = excluded.last_holder, shared_until_ms = excluded.shared_until_ms`,
      [key, decision.state.inWindow, decision.state.lastHolder, decision.state.sharedUntilMs])
      if (decision.granted > 0) return held === undefined ? { granted: decision.granted, retryInMs: 0 } : { granted: decision.granted, retryInMs: 0, ids }
      const oldest = await q.query('SELECT MIN(at) AS oldest FROM alma_call_slots WHERE key = $1', [key])
      const retry = retryInMs(oldest[0]?.oldest == null ? null : new Date(oldest[0].oldest).getTime(), ask)
      return held === undefined ? { granted: 0, retryInMs: retry } : { granted: 0, retryInMs: retry, ids }
    })
  }

  /** Inside a transaction: insert-if-absent by id, so a message already in the outbox (sent or not) stays as it is. */
  /** The messages a state change calls for, on the checkout as it is now and its money record, into the outbox. */
  async #compose (q: Queries, messages: ComposeMessages, checkoutId: string): Promise<void> {
    const record = await moneyRecord(q, checkoutId) as MoneyRecord
    await this.#enqueue(q, messages(record.checkout, record))
  }

  async #enqueue (q: Queries, messages: NewOutboxMessage[]): Promise<void> {
    const now = this.#iso()
    for (const m of messages) {
      await q.run(`INSERT INTO outbox (id, from_address, to_address, subject, text_body, html_body, created_at, attempts, next_attempt_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $7) ON CONFLICT (id) DO NOTHING`, [m.id, m.from, m.to, m.subject, m.text, m.html, now])
    }
  }

  async enqueueMessages (messages: NewOutboxMessage[]): Promise<void> {
    if (messages.length === 0) return
    await this.#pool.transaction(async q => { await this.#enqueue(q, messages) })
  }

  /**
   * The due messages, leased in one transaction. FOR UPDATE SKIP LOCKED: a row another instance is claiming right
   * now is passed over, not waited for and then leased twice; once that claim commits, its live lease hides it.
   */
  async claimDueMessages (now: Date, limit: number, leaseUntil: Date): Promise<OutboxMessage[]> {
    const at = now.toISOString()
    return await this.#pool.transaction(async q => {
      const rows = await q.query(`SELECT * FROM outbox WHERE sent_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= $1
          AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at, created_at, id COLLATE "C" LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [at, Math.max(0, Math.floor(limit))])
      if (rows.length === 0) return []
      await q.run('UPDATE outbox SET lease_until = $1 WHERE id = ANY($2::text[])', [leaseUntil.toISOString(), rows.map(r => r.id as string)])
      return rows.map(r => {
        const { id, from, to, subject, text, html, attempts } = toOutbox(r)
        return { id, from, to, subject, text, html, attempts }
      })
    })
  }

  async markMessageSent (id: string, at: Date): Promise<void> {
    await this.#pool.run('UPDATE outbox SET sent_at = $1, lease_until = NULL WHERE id = $2 AND sent_at IS NULL', [at.toISOString(), id])
  }

  async markMessageFailed (id: string, failure: OutboxFailure): Promise<void> {
    await this.#pool.run(`UPDATE outbox SET attempts = $1, last_error = $2, lease_until = NULL,
        next_attempt_at = COALESCE($3::timestamptz, next_attempt_at),
        gave_up_at = CASE WHEN $3::timestamptz IS NULL THEN $4::timestamptz ELSE gave_up_at END
      WHERE id = $5 AND sent_at IS NULL`,
    [failure.attempts, failure.error.slice(0, 1000), failure.nextAttemptAt?.toISOString() ?? null, this.#iso(), id])
  }

  async outboxMessage (id: string): Promise<OutboxRecord | undefined> {
    const rows = await this.#pool.query('SELECT * FROM outbox WHERE id = $1', [id])
    return rows.length === 0 ? undefined : toOutbox(rows[0])
  }
}
