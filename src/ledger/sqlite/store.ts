// The checkout, postback and posting store: every write the payment flow makes, and the reads those writes
// and the posting worker need. Synchronous (better-sqlite3); each write is one transaction, and the rules that
// decide it (postback decision, staff verdict, refund effect) run inside that transaction.

import { type Cents, formatDecimal } from '../../money.ts'
import { type BudgetState, decideReservation, othersMayHold, retryInMs } from '../alma-budget.ts'
import { LeaseLost } from '../errors.ts'
import { CAPTURE_PENDING_EVENT, referenceRecorded } from '../ledger.ts'
import type {
  AlmaCallHolds, AlmaCallReservation, DecidePostback, OutboxFailure, PostingLease, RecordedPostback, RefundRequest, RefundResult, RefundRules, Reopen, StaffResult, StaffRule,
  TransitionRequest
} from '../ledger.ts'
import type {
  AlmaCallEntry, CashnetReport, Checkout, CheckoutState, ComposeMessages, IncomingPostback, MoneyRecord, NewCheckout, NewOutboxMessage,
  OutboxMessage, OutboxRecord, PriorState, RefundRecord, UserIdKind
} from '../types.ts'
import { PROVIDER_LABEL } from '../types.ts'
import type { Connection } from './connection.ts'
import { reportsByCheckout, type Row, toCheckout, toOutbox, toPostback, toRefund } from './rows.ts'

// A review an instance from before the review mark left unmarked: the checkout's CAPTURE_PENDING_EVENT, written as
// a literal so that SQLite uses the partial index on it (audit_capture_pending), and the tx of the latest one.
const PENDING = `'${CAPTURE_PENDING_EVENT}'`
const HAS_PENDING = `EXISTS (SELECT 1 FROM audit_events e WHERE e.checkout_id = checkouts.id AND e.event = ${PENDING})`
// The checkouts that have the event, driven from the partial index (CROSS JOIN keeps that order): without
// statistics SQLite would rather scan every CREATED and EXPIRED checkout by state, and abandoned ones pile up.
// For the sweep: it reads every review ever recorded, once a minute.
const HELD_CHECKOUTS = `(SELECT DISTINCT checkout_id FROM audit_events WHERE event = ${PENDING}) AS held
  CROSS JOIN checkouts ON checkouts.id = held.checkout_id`
const LATEST_PENDING_TX = `(SELECT COALESCE(json_extract(e.detail, '$.tx'), '') FROM audit_events e
  WHERE e.checkout_id = checkouts.id AND e.event = ${PENDING} ORDER BY e.id DESC LIMIT 1)`

export class CheckoutStore {
  readonly #c: Connection

  constructor (connection: Connection) {
    this.#c = connection
  }

  /** Runs work in one transaction, one durable commit; store writes inside it become savepoints. */
  inTransaction<T> (work: () => T): T {
    return this.#c.transaction(work)
  }

  createCheckout (checkout: NewCheckout): Checkout {
    const c = this.#c
    const now = c.iso()
    const total = checkout.lines.reduce((s, l) => s + l.amount, 0)
    c.transaction(() => {
      c.sql(`INSERT INTO checkouts (id, user_id, user_id_kind, primary_id, patron_name, email, provider, state, total_cents, currency, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, 'CREATED', ?, ?, ?, ?)`)
        .run(checkout.id, checkout.userId, checkout.userIdKind ?? 'username', checkout.primaryId, checkout.patronName, checkout.email, checkout.provider ?? 'cashnet', total, checkout.currency, now, now)
      const insertLine = c.sql(`INSERT INTO checkout_lines (checkout_id, line_no, fee_id, fee_type, fee_type_desc, owner, owner_desc, title, item_code, amount_cents, balance_cents)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      for (const line of checkout.lines) {
        insertLine.run(checkout.id, line.lineNo, line.feeId, line.feeType, line.feeTypeDesc, line.owner, line.ownerDesc, line.title, line.itemCode, line.amount, line.balance ?? null)
      }
      c.event(checkout.id, 'checkout.created', null, 'CREATED', { total, lines: checkout.lines.length, provider: checkout.provider ?? 'cashnet' })
    })
    return this.getCheckout(checkout.id) as Checkout
  }

  getCheckout (id: string): Checkout | undefined {
    const row = this.#c.sql('SELECT * FROM checkouts WHERE id = ?').get(id) as Row | undefined
    if (row === undefined) return undefined
    const lines = this.#c.sql('SELECT * FROM checkout_lines WHERE checkout_id = ? ORDER BY line_no').all(id) as Row[]
    return toCheckout(row, lines)
  }

  latestCheckoutForUser (userId: string, kind: UserIdKind = 'username'): Checkout | undefined {
    const row = this.#c.sql('SELECT id FROM checkouts WHERE user_id = ? AND user_id_kind = ? ORDER BY created_at DESC, rowid DESC LIMIT 1').get(userId, kind) as Row | undefined
    return row === undefined ? undefined : this.getCheckout(row.id)
  }

  patronPayments (userId: string, limit: number, kind: UserIdKind = 'username'): Checkout[] {
    const rows = this.#c.sql(`SELECT id FROM checkouts
      WHERE user_id = ? AND user_id_kind = ? AND state IN ('PAID', 'POSTED', 'NEEDS_ATTENTION', 'DECLINED')
      ORDER BY created_at DESC, rowid DESC LIMIT ?`).all(userId, kind, Math.max(0, Math.floor(limit))) as Row[]
    return rows.map(r => this.getCheckout(r.id) as Checkout)
  }

  paymentsInProgress (userId: string, primaryId: string, kind: UserIdKind = 'username'): Checkout[] {
    // by state first (indexed, and few checkouts are ever PAID or open for staff, or held for review), then the
    // patron; then a review an older instance left unmarked, by the patron's checkouts (indexed; +state keeps SQLite,
    // which has no statistics, off the state index: abandoned checkouts pile up) and its audit event (a partial
    // index), reported with that event's tx as its reviewTx
    const patron = `((user_id = @userId AND user_id_kind = @kind) OR primary_id = @primaryId)
        AND EXISTS (SELECT 1 FROM checkout_lines WHERE checkout_id = checkouts.id AND posted_at IS NULL)`
    const rows = this.#c.sql(`SELECT id, review_tx AS held, created_at, rowid AS seq FROM checkouts
      WHERE ((state IN ('PAID', 'NEEDS_ATTENTION') AND (state = 'PAID' OR resolved_at IS NULL))
          OR (state IN ('CREATED', 'EXPIRED') AND review_tx IS NOT NULL))
        AND ${patron}
      UNION ALL
      SELECT id, ${LATEST_PENDING_TX}, created_at, rowid FROM checkouts
      WHERE ${patron} AND +state IN ('CREATED', 'EXPIRED') AND review_tx IS NULL AND ${HAS_PENDING}
      ORDER BY created_at, seq`).all({ userId, kind, primaryId }) as Row[]
    return rows.map(r => {
      const checkout = this.getCheckout(r.id) as Checkout
      return checkout.reviewTx === null && r.held !== null ? { ...checkout, reviewTx: r.held as string } : checkout
    })
  }

  recordPostback (postback: IncomingPostback, decide: DecidePostback, messages?: ComposeMessages): RecordedPostback {
    const c = this.#c
    return c.transaction(() => {
      const checkout = postback.checkoutId === null ? undefined : this.getCheckout(postback.checkoutId)
      const earlier = checkout === undefined
        ? []
        : (c.sql('SELECT * FROM postbacks WHERE checkout_id = ? ORDER BY id').all(checkout.id) as Row[]).map(toPostback)
      const elsewhere = postback.tx === '' ? [] : this.#checkoutsWithTx(postback.tx, checkout?.id ?? postback.checkoutId ?? '')
      const decision = decide(checkout, earlier, elsewhere)
      const items = postback.items ?? null
      const info = c.sql('INSERT INTO postbacks (checkout_id, received_at, peer, result, tx, outcome, reason, raw_body, total_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(checkout?.id ?? postback.checkoutId, c.iso(), postback.peer, postback.result, postback.tx, decision.outcome, decision.reason, postback.rawBody,
          items === null ? null : items.reduce((s, i) => s + i.amount, 0))
      const id = Number(info.lastInsertRowid)
      if (items !== null) {
        const insert = c.sql('INSERT INTO postback_items (postback_id, item_no, item_code, amount_cents, qty) VALUES (?, ?, ?, ?, ?)')
        items.forEach((item, index) => insert.run(id, index + 1, item.itemCode, item.amount, item.qty))
      }
      // A new reason for attention (a double charge on a payment staff had settled) reopens it.
      if (checkout !== undefined && decision.to !== undefined && (decision.to !== checkout.state || decision.to === 'NEEDS_ATTENTION')) {
        const now = c.iso()
        const payment = decision.payment
        const kind = decision.to === 'NEEDS_ATTENTION' ? decision.attentionKind ?? 'UNKNOWN' : null
        // A double charge keeps the state the original payment had, to go back to once its refund is recorded.
        const openDouble = checkout.state === 'NEEDS_ATTENTION' && checkout.attentionKind === 'DOUBLE_CHARGE'
        const prior: PriorState | null = kind === 'DOUBLE_CHARGE' && !openDouble
          ? { state: checkout.state, kind: checkout.state === 'NEEDS_ATTENTION' ? checkout.attentionKind : null, reason: checkout.attentionReason, resolvedAt: checkout.resolvedAt, resolvedBy: checkout.resolvedBy, resolution: checkout.resolution }
          : null
        c.sql(`UPDATE checkouts SET state = ?, updated_at = ?,
            tx = COALESCE(?, tx), batchno = COALESCE(?, batchno), effdate = COALESCE(?, effdate), pmtcode = COALESCE(?, pmtcode),
            paid_at = CASE WHEN ? THEN ? ELSE paid_at END,
            attention_reason = CASE WHEN ? = 'NEEDS_ATTENTION' THEN ? ELSE attention_reason END,
            attention_kind = COALESCE(?, attention_kind),
            attention_prior = COALESCE(?, attention_prior),
            resolved_at = NULL, resolved_by = NULL, resolution = NULL,
            next_attempt_at = CASE WHEN ? = 'PAID' THEN ? ELSE next_attempt_at END
          WHERE id = ?`)
          .run(decision.to, now,
            payment?.tx ?? null, payment?.batchno ?? null, payment?.effdate ?? null, payment?.pmtcode ?? null,
            payment !== undefined ? 1 : 0, now,
            decision.to, decision.reason,
            kind,
            prior === null ? null : JSON.stringify(prior),
            decision.to, now,
            checkout.id)
        c.event(checkout.id, `postback.${decision.outcome.toLowerCase()}`, checkout.state, decision.to, { postback: id, tx: postback.tx, result: postback.result, reason: decision.reason, ...(kind !== null ? { kind } : {}) })
        if (messages !== undefined) this.#compose(messages, checkout.id)
      } else {
        c.event(checkout?.id ?? null, `postback.${decision.outcome.toLowerCase()}`, checkout?.state ?? null, checkout?.state ?? null, { postback: id, tx: postback.tx, result: postback.result, reason: decision.reason, checkout: postback.checkoutId })
      }
      return { id, decision, checkout: checkout === undefined ? undefined : this.getCheckout(checkout.id) }
    })
  }

  /** Other checkouts a tx is already recorded for: as their payment, or in a postback that reported money taken. */
  #checkoutsWithTx (tx: string, exceptId: string): string[] {
    return (this.#c.sql(`SELECT id FROM checkouts WHERE tx = ? AND id != ?
        UNION SELECT checkout_id FROM postbacks WHERE tx = ? AND result = '0' AND checkout_id IS NOT NULL AND checkout_id != ?
          AND outcome IN ('PAID', 'MISMATCH', 'DOUBLE_CHARGE', 'DUPLICATE')`)
      .all(tx, exceptId, tx, exceptId) as Row[]).map(r => r.id as string)
  }

  markReviewsFromAudit (): string[] {
    const c = this.#c
    return c.transaction(() => {
      const found = c.sql(`SELECT id, ${LATEST_PENDING_TX} AS tx FROM ${HELD_CHECKOUTS}
        WHERE state IN ('CREATED', 'EXPIRED') AND review_tx IS NULL
        ORDER BY created_at, checkouts.rowid`).all() as Row[]
      for (const row of found) {
        c.sql("UPDATE checkouts SET review_tx = ? WHERE id = ? AND state IN ('CREATED', 'EXPIRED') AND review_tx IS NULL").run(row.tx, row.id)
        c.event(row.id, 'checkout.review_marked', null, null, { tx: row.tx, from: CAPTURE_PENDING_EVENT })
      }
      return found.map(r => r.id as string)
    })
  }

  markUnderReview (checkoutId: string, tx: string, event: string, detail: Record<string, unknown>): boolean {
    const c = this.#c
    return c.transaction(() => {
      const changed = c.sql("UPDATE checkouts SET review_tx = ?, updated_at = ? WHERE id = ? AND state IN ('CREATED', 'EXPIRED')").run(tx, c.iso(), checkoutId)
      c.event(checkoutId, event, null, null, { ...detail, tx, underReview: changed.changes === 1 })
      return changed.changes === 1
    })
  }

  transition (request: TransitionRequest, fence?: number): boolean {
    const c = this.#c
    return c.relaxed(() => c.transaction(() => {
      this.#fenced(request.checkoutId, fence)
      const row = c.sql('SELECT state FROM checkouts WHERE id = ?').get(request.checkoutId) as Row | undefined
      if (row === undefined || !request.from.includes(row.state)) return false
      const now = c.iso()
      const kind = request.to === 'NEEDS_ATTENTION' ? request.attentionKind ?? 'UNKNOWN' : null
      c.sql(`UPDATE checkouts SET state = ?, updated_at = ?,
          posted_at = CASE WHEN ? = 'POSTED' THEN ? ELSE posted_at END,
          attention_reason = COALESCE(?, attention_reason),
          attention_kind = COALESCE(?, attention_kind),
          unapplied_cents = COALESCE(?, unapplied_cents),
          next_attempt_at = CASE WHEN ? IN ('POSTED', 'NEEDS_ATTENTION') THEN NULL ELSE next_attempt_at END,
          resolved_at = NULL, resolved_by = NULL, resolution = NULL
        WHERE id = ?`)
        .run(request.to, now, request.to, now, request.attentionReason ?? null, kind, request.unapplied ?? null, request.to, request.checkoutId)
      c.event(request.checkoutId, request.event, row.state, request.to, { ...(kind !== null ? { kind } : {}), ...request.detail })
      if (request.messages !== undefined) this.#compose(request.messages, request.checkoutId)
      return true
    }))
  }

  /** Refuses a posting write made under a fence that is no longer the checkout's (inside the write's transaction). */
  #fenced (checkoutId: string, fence: number | undefined): void {
    if (fence === undefined) return
    const row = this.#c.sql('SELECT lease_fence FROM checkouts WHERE id = ?').get(checkoutId) as Row | undefined
    if (row === undefined || row.lease_fence !== fence) throw new LeaseLost(checkoutId, fence)
  }

  markLinePosted (checkoutId: string, lineNo: number, postedAmount: Cents, detail: Record<string, unknown>, fence?: number): void {
    const c = this.#c
    c.relaxed(() => c.transaction(() => {
      this.#fenced(checkoutId, fence)
      const changed = c.sql('UPDATE checkout_lines SET posted_cents = ?, posted_at = ? WHERE checkout_id = ? AND line_no = ? AND posted_at IS NULL')
        .run(postedAmount, c.iso(), checkoutId, lineNo)
      if (changed.changes === 1) c.event(checkoutId, 'line.posted', null, null, { line: lineNo, posted: postedAmount, ...detail })
    }))
  }

  recordAlmaCall (call: Omit<AlmaCallEntry, 'id'>, fence?: number): void {
    const c = this.#c
    const insert = (): void => {
      c.sql(`INSERT INTO alma_calls (checkout_id, at, method, path, status, error_code, error_message, tracking_id, duration_ms)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(call.checkoutId, call.at, call.method, call.path, call.status, call.errorCode, call.errorMessage.slice(0, 1000), call.trackingId, call.durationMs)
    }
    if (fence === undefined) c.relaxed(insert)
    else c.relaxed(() => c.transaction(() => { this.#fenced(call.checkoutId, fence); insert() }))
  }

  recordAttempt (checkoutId: string, nextAttemptAt: Date | null, lastError: string, fence?: number): number {
    const c = this.#c
    return c.relaxed(() => c.transaction(() => {
      this.#fenced(checkoutId, fence)
      c.sql('UPDATE checkouts SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?')
        .run(nextAttemptAt?.toISOString() ?? null, lastError.slice(0, 1000), c.iso(), checkoutId)
      const row = c.sql('SELECT attempts FROM checkouts WHERE id = ?').get(checkoutId) as Row
      c.event(checkoutId, 'posting.attempt_failed', null, null, { attempt: row.attempts, error: lastError, retryAt: nextAttemptAt?.toISOString() ?? null })
      return row.attempts as number
    }))
  }

  requeue (checkoutId: string, by: string, action: 'retry' | 'post-confirmed', rule: StaffRule): StaffResult {
    const c = this.#c
    return c.transaction((): StaffResult => {
      const record = this.moneyRecord(checkoutId)
      if (record === undefined) return { done: false, reason: 'There is no checkout with that id.' }
      const refused = rule(record)
      if (refused !== null) return { done: false, reason: refused }
      const { checkout } = record
      const open = checkout.state === 'PAID' || (checkout.state === 'NEEDS_ATTENTION' && checkout.resolvedAt === null)
      if (!open || checkout.tx === null || checkout.tx === '') return { done: false, reason: `This payment is ${checkout.state}; it cannot be posted from here.` }
      c.sql("UPDATE checkouts SET state = 'PAID', attempts = 0, next_attempt_at = ?, updated_at = ? WHERE id = ?")
        .run(c.iso(), c.iso(), checkoutId)
      c.event(checkoutId, 'posting.retry_requested', checkout.state, 'PAID', action === 'retry' ? { by } : { by, action })
      return { done: true, checkout: this.getCheckout(checkoutId) as Checkout }
    })
  }

  resolveAttention (checkoutId: string, by: string, resolution: string, rule: StaffRule): StaffResult {
    return this.#c.transaction((): StaffResult => {
      const record = this.moneyRecord(checkoutId)
      if (record === undefined) return { done: false, reason: 'There is no checkout with that id.' }
      const refused = rule(record)
      if (refused !== null) return { done: false, reason: refused }
      if (!this.#settle(checkoutId, by, resolution)) {
        return { done: false, reason: `This payment is ${record.checkout.state}; only payments that need attention can be marked settled.` }
      }
      return { done: true, checkout: this.getCheckout(checkoutId) as Checkout }
    })
  }

  /** Marks an open NEEDS_ATTENTION payment settled; false if it is not open. */
  #settle (checkoutId: string, by: string, resolution: string): boolean {
    const c = this.#c
    const changed = c.sql("UPDATE checkouts SET resolved_at = ?, resolved_by = ?, resolution = ?, updated_at = ? WHERE id = ? AND state = 'NEEDS_ATTENTION' AND resolved_at IS NULL")
      .run(c.iso(), by, resolution, c.iso(), checkoutId)
    if (changed.changes === 1) c.event(checkoutId, 'attention.resolved', 'NEEDS_ATTENTION', 'NEEDS_ATTENTION', { by, resolution })
    return changed.changes === 1
  }

  reopenAttention (checkoutId: string, reopen: Reopen, detail: Record<string, unknown>): boolean {
    return this.#c.transaction(() => this.#reopen(checkoutId, reopen, detail))
  }

  /** A settled NEEDS_ATTENTION payment back in front of staff, as `reopen` says; false if it is not settled. */
  #reopen (checkoutId: string, reopen: Reopen, detail: Record<string, unknown>): boolean {
    const c = this.#c
    const before = this.getCheckout(checkoutId)
    if (before === undefined || before.state !== 'NEEDS_ATTENTION' || before.resolvedAt === null) return false
    const changed = c.sql(`UPDATE checkouts SET attention_kind = ?, attention_reason = ?, resolved_at = NULL, resolved_by = NULL, resolution = NULL, updated_at = ?
        WHERE id = ? AND state = 'NEEDS_ATTENTION' AND resolved_at IS NOT NULL`)
      .run(reopen.reopen, reopen.reason, c.iso(), checkoutId)
    if (changed.changes !== 1) return false
    c.event(checkoutId, 'attention.reopened', 'NEEDS_ATTENTION', 'NEEDS_ATTENTION', {
      kind: reopen.reopen,
      reason: reopen.reason,
      ...detail,
      settled: { by: before.resolvedBy, at: before.resolvedAt, resolution: before.resolution, kind: before.attentionKind }
    })
    return true
  }

  recordRefund (refund: RefundRequest, rules: RefundRules): RefundResult {
    const c = this.#c
    return c.transaction((): RefundResult => {
      const before = this.moneyRecord(refund.checkoutId)
      if (before === undefined) return { recorded: false, reason: 'no such checkout' }
      const refused = rules.refuse(before)
      if (refused !== null) return { recorded: false, reason: refused }
      const now = c.iso()
      // the unique index on (checkout, tx, reference) has the last word, whatever the rule let through
      const kind = refund.kind ?? 'refund'
      const inserted = c.sql('INSERT INTO refunds (checkout_id, tx, amount_cents, reference, note, by, at, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
        .run(refund.checkoutId, refund.tx, refund.amount, refund.reference, refund.note, refund.by, now, kind)
      if (inserted.changes === 0) return { recorded: false, reason: referenceRecorded(refund) }
      const id = Number(inserted.lastInsertRowid)
      c.event(refund.checkoutId, `${kind}.recorded`, null, null, { refund: id, tx: refund.tx, amount: refund.amount, reference: refund.reference, note: refund.note, by: refund.by })
      const after = this.moneyRecord(refund.checkoutId) as MoneyRecord
      const effect = rules.effect(after)
      const checkout = after.checkout
      if (effect === 'settle') {
        const resolution = `refund of ${formatDecimal(refund.amount)} recorded (${PROVIDER_LABEL[checkout.provider] ?? PROVIDER_LABEL.cashnet} refund ${refund.reference}): ${refund.note}`
        this.#settle(checkout.id, refund.by, resolution)
      } else if (effect === 'restore') {
        this.#restoreAfterDoubleCharge(checkout, refund.by, id)
      } else if (effect !== 'none') {
        const reopened = this.#reopen(checkout.id, effect, { refund: id, tx: refund.tx, reference: refund.reference })
        return { recorded: true, id, effect: reopened ? 'reopen' : 'none', checkout: this.getCheckout(checkout.id) as Checkout }
      }
      return { recorded: true, id, effect, checkout: this.getCheckout(checkout.id) as Checkout }
    })
  }

  /**
   * Every extra charge is refunded: the checkout goes back to the state its original payment had (PAID goes on
   * posting, POSTED stays posted, an earlier attention case comes back as it was), keeping the record.
   */
  #restoreAfterDoubleCharge (checkout: Checkout, by: string, refundId: number): void {
    const c = this.#c
    const raw = c.sql('SELECT attention_prior FROM checkouts WHERE id = ?').get(checkout.id) as Row
    let prior: PriorState | null = null
    try { prior = raw.attention_prior === null ? null : JSON.parse(raw.attention_prior) as PriorState } catch { prior = null }
    const allPosted = checkout.lines.every(l => l.postedAt !== null)
    let state: CheckoutState
    if (prior?.state === 'PAID' || prior?.state === 'POSTED' || prior?.state === 'NEEDS_ATTENTION') state = prior.state
    else state = allPosted && checkout.unapplied === 0 ? 'POSTED' : 'NEEDS_ATTENTION'
    const now = c.iso()
    if (state === 'NEEDS_ATTENTION') {
      const kind = prior?.state === 'NEEDS_ATTENTION' ? prior.kind ?? 'UNKNOWN' : 'UNKNOWN'
      const reason = prior?.state === 'NEEDS_ATTENTION' && prior.reason != null ? prior.reason : 'the double charge was refunded; the state before it was not recorded: check the history'
      c.sql(`UPDATE checkouts SET state = 'NEEDS_ATTENTION', updated_at = ?, attention_kind = ?, attention_reason = ?, attention_prior = NULL,
          resolved_at = ?, resolved_by = ?, resolution = ? WHERE id = ?`)
        .run(now, kind, reason, prior?.resolvedAt ?? null, prior?.resolvedBy ?? null, prior?.resolution ?? null, checkout.id)
    } else {
      c.sql(`UPDATE checkouts SET state = ?, updated_at = ?, attention_prior = NULL,
          next_attempt_at = CASE WHEN ? = 'PAID' THEN ? ELSE NULL END, attempts = CASE WHEN ? = 'PAID' THEN 0 ELSE attempts END WHERE id = ?`)
        .run(state, now, state, now, state, checkout.id)
    }
    c.event(checkout.id, 'double_charge.refunded', 'NEEDS_ATTENTION', state, { by, refund: refundId })
  }

  moneyRecord (checkoutId: string): MoneyRecord | undefined {
    const checkout = this.getCheckout(checkoutId)
    if (checkout === undefined) return undefined
    return { checkout, reports: this.reports(checkoutId), refunds: this.refunds(checkoutId) }
  }

  /** What CashNet reported in each successful postback for this checkout, oldest first. */
  reports (checkoutId: string): CashnetReport[] {
    return this.reportsOf([checkoutId]).get(checkoutId) ?? []
  }

  /** The same for several checkouts in one query (the ids as one JSON parameter), each one's oldest first. */
  reportsOf (checkoutIds: readonly string[]): Map<string, CashnetReport[]> {
    const rows = this.#c.sql(`SELECT p.checkout_id, p.id, p.tx, p.outcome, p.total_cents, i.item_no, i.item_code, i.amount_cents, i.qty
        FROM postbacks p LEFT JOIN postback_items i ON i.postback_id = p.id
        WHERE p.checkout_id IN (SELECT value FROM json_each(?)) AND p.result = '0' AND p.tx != '' AND p.total_cents IS NOT NULL
          AND p.outcome IN ('PAID', 'MISMATCH', 'DOUBLE_CHARGE')
        ORDER BY p.id, i.item_no`).all(JSON.stringify(checkoutIds)) as Row[]
    return reportsByCheckout(rows)
  }

  refunds (checkoutId: string): RefundRecord[] {
    return (this.#c.sql('SELECT * FROM refunds WHERE checkout_id = ? ORDER BY id').all(checkoutId) as Row[]).map(toRefund)
  }

  duePostings (now: Date): string[] {
    const at = now.toISOString()
    return (this.#c.sql(`SELECT id FROM checkouts WHERE state = 'PAID' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
        AND (lease_expires_at IS NULL OR lease_expires_at <= ?) ORDER BY paid_at`)
      .all(at, at) as Row[]).map(r => r.id)
  }

  /** Claims a PAID checkout's posting when no live lease is held on it: a new fence, in one statement. */
  claimPosting (checkoutId: string, holder: string, leaseMs: number): PostingLease | null {
    const c = this.#c
    return c.relaxed(() => c.transaction(() => {
      const now = c.now()
      const expiresAt = new Date(now.getTime() + leaseMs)
      const changed = c.sql(`UPDATE checkouts SET lease_holder = ?, lease_fence = lease_fence + 1, lease_expires_at = ?
          WHERE id = ? AND state = 'PAID' AND (lease_expires_at IS NULL OR lease_expires_at <= ?)`)
        .run(holder, expiresAt.toISOString(), checkoutId, now.toISOString())
      if (changed.changes !== 1) return null
      const row = c.sql('SELECT lease_fence FROM checkouts WHERE id = ?').get(checkoutId) as Row
      return { checkoutId, holder, fence: row.lease_fence as number, expiresAt }
    }))
  }

  /** Extends a lease still held under its fence (expired but not taken counts as held); false when lost. */
  renewPosting (lease: PostingLease, leaseMs: number): boolean {
    const c = this.#c
    return c.relaxed(() => {
      const changed = c.sql('UPDATE checkouts SET lease_expires_at = ? WHERE id = ? AND lease_fence = ? AND lease_holder = ?')
        .run(new Date(c.now().getTime() + leaseMs).toISOString(), lease.checkoutId, lease.fence, lease.holder)
      return changed.changes === 1
    })
  }

  /** Gives the posting up (the fence stays, so later writes under it are still this holder's last word). */
  releasePosting (lease: PostingLease): void {
    const c = this.#c
    c.relaxed(() => c.sql('UPDATE checkouts SET lease_holder = NULL, lease_expires_at = NULL WHERE id = ? AND lease_fence = ? AND lease_holder = ?')
      .run(lease.checkoutId, lease.fence, lease.holder))
  }

  /** Gives up any lease this holder holds on the checkout, whatever its fence (Ledger.releaseHeldBy). */
  releaseHeldBy (checkoutId: string, holder: string): boolean {
    const c = this.#c
    return c.relaxed(() => c.sql('UPDATE checkouts SET lease_holder = NULL, lease_expires_at = NULL WHERE id = ? AND lease_holder = ?')
      .run(checkoutId, holder)).changes === 1
  }

  /**
   * Up to `wanted` Alma calls for `holder` (one process) under a sliding window shared by every process on this
   * ledger, in one write (the rule: ../alma-budget.ts). Never waits for another process's lock (SQLITE_BUSY at
   * once: the caller asks again without blocking).
   *
   * A reservation counts while its `at_ms` is within the window. With `held` (AlmaCallHolds), a call granted counts
   * until it is told over: its `at_ms` is put `openMs` ahead (less the window), and an end told moves it to when
   * Alma read the call at the latest, so it counts a window from then. The same column as before, so an instance
   * from before this, beside this one in a rolling upgrade, counts these calls as long as this one does.
   */
  reserveAlmaCalls (key: string, limit: number, windowMs: number, wanted: number, holder: string, held?: AlmaCallHolds): AlmaCallReservation {
    const c = this.#c
    return c.withoutWaiting(() => c.relaxed(() => c.transaction((): AlmaCallReservation => {
      const now = c.now().getTime()
      if (held !== undefined) {
        // never later than it was put: a call counts at most its open bound, which the window's sharing counted on
        const end = c.sql('UPDATE alma_reservations SET at_ms = MIN(at_ms, ?) WHERE rowid = ? AND key = ?')
        for (const told of held.ends) end.run(now - Math.max(0, told.readAgoMs), told.id, key)
      }
      const expired = c.sql('DELETE FROM alma_reservations WHERE key = ? AND at_ms <= ?').run(key, now - windowMs).changes
      const row = c.sql('SELECT in_window, last_holder, shared_until_ms FROM alma_budget WHERE key = ?').get(key) as Row | undefined
      const state: BudgetState = {
        inWindow: Math.max(0, ((row?.in_window as number | undefined) ?? 0) - expired),
        lastHolder: (row?.last_holder as string | null | undefined) ?? null,
        sharedUntilMs: (row?.shared_until_ms as number | undefined) ?? 0
      }
      if (othersMayHold(state, holder)) state.latestAtMs = (c.sql('SELECT MAX(at_ms) AS latest FROM alma_reservations WHERE key = ?').get(key) as Row).latest as number | null
      const ask = { limit, windowMs, wanted, holder, now }
      let decision = decideReservation(state, ask)
      if (decision.recount) {
        const rows = (c.sql('SELECT COUNT(*) AS n FROM alma_reservations WHERE key = ?').get(key) as Row).n as number
        if (rows !== state.inWindow) decision = decideReservation({ ...state, inWindow: rows }, ask)
      }
      const insert = c.sql('INSERT INTO alma_reservations (key, at_ms) VALUES (?, ?)')
      const at = held === undefined ? now : now + Math.max(0, held.openMs - windowMs)
      const ids: number[] = []
      for (let i = 0; i < decision.granted; i++) ids.push(Number(insert.run(key, at).lastInsertRowid))
      c.sql(`INSERT INTO alma_budget (key, in_window, last_holder, shared_until_ms) VALUES (?, ?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET in_window = excluded.in_window, last_holder = excluded.last_holder, shared_until_ms = excluded.shared_until_ms`)
        .run(key, decision.state.inWindow, decision.state.lastHolder, decision.state.sharedUntilMs)
      if (decision.granted > 0) return held === undefined ? { granted: decision.granted, retryInMs: 0 } : { granted: decision.granted, retryInMs: 0, ids }
      const oldest = (c.sql('SELECT MIN(at_ms) AS oldest FROM alma_reservations WHERE key = ?').get(key) as Row).oldest as number | null
      return held === undefined ? { granted: 0, retryInMs: retryInMs(oldest, ask) } : { granted: 0, retryInMs: retryInMs(oldest, ask), ids }
    })))
  }

  underReviewBefore (cutoff: Date): Checkout[] {
    const ids = (this.#c.sql("SELECT id FROM checkouts WHERE review_tx IS NOT NULL AND state IN ('CREATED', 'EXPIRED') AND updated_at < ? ORDER BY updated_at, rowid")
      .all(cutoff.toISOString()) as Row[]).map(r => r.id as string)
    return ids.map(id => this.getCheckout(id)).filter((c): c is Checkout => c !== undefined)
  }

  expireCreated (createdBefore: Date): string[] {
    const c = this.#c
    return c.transaction(() => {
      const ids = (c.sql(`SELECT id FROM checkouts WHERE state = 'CREATED' AND created_at < ? AND review_tx IS NULL AND NOT ${HAS_PENDING}`)
        .all(createdBefore.toISOString()) as Row[]).map(r => r.id as string)
      for (const id of ids) {
        c.sql(`UPDATE checkouts SET state = 'EXPIRED', updated_at = ? WHERE id = ? AND state = 'CREATED' AND review_tx IS NULL AND NOT ${HAS_PENDING}`).run(c.iso(), id)
        c.event(id, 'checkout.expired', 'CREATED', 'EXPIRED', {})
      }
      return ids
    })
  }

  paidBefore (cutoff: Date): Checkout[] {
    return (this.#c.sql("SELECT id FROM checkouts WHERE state = 'PAID' AND paid_at < ?").all(cutoff.toISOString()) as Row[])
      .map(r => this.getCheckout(r.id) as Checkout)
  }

  audit (checkoutId: string | null, event: string, detail: Record<string, unknown>): void {
    this.#c.event(checkoutId, event, null, null, detail)
  }

  /** Insert-if-absent by id: a message already in the outbox (sent or not) is left as it is. Joins a running transaction. */
  /** The messages a state change calls for, on the checkout as it is now and its money record, into the outbox. */
  #compose (messages: ComposeMessages, checkoutId: string): void {
    const record = this.moneyRecord(checkoutId) as MoneyRecord
    this.enqueueMessages(messages(record.checkout, record))
  }

  enqueueMessages (messages: NewOutboxMessage[]): void {
    if (messages.length === 0) return
    const c = this.#c
    c.transaction(() => {
      const now = c.iso()
      const insert = c.sql(`INSERT INTO outbox (id, from_address, to_address, subject, text_body, html_body, created_at, attempts, next_attempt_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING`)
      for (const m of messages) insert.run(m.id, m.from, m.to, m.subject, m.text, m.html, now, now)
    })
  }

  claimDueMessages (now: Date, limit: number, leaseUntil: Date): OutboxMessage[] {
    const c = this.#c
    const at = now.toISOString()
    return c.transaction(() => {
      const rows = c.sql(`SELECT * FROM outbox WHERE sent_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= ?
          AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_attempt_at, created_at, id LIMIT ?`).all(at, at, limit) as Row[]
      const lease = c.sql('UPDATE outbox SET lease_until = ? WHERE id = ?')
      for (const r of rows) lease.run(leaseUntil.toISOString(), r.id)
      return rows.map(r => {
        const { id, from, to, subject, text, html, attempts } = toOutbox(r)
        return { id, from, to, subject, text, html, attempts }
      })
    })
  }

  markMessageSent (id: string, at: Date): void {
    this.#c.sql('UPDATE outbox SET sent_at = ?, lease_until = NULL WHERE id = ? AND sent_at IS NULL').run(at.toISOString(), id)
  }

  markMessageFailed (id: string, failure: OutboxFailure): void {
    const c = this.#c
    c.sql(`UPDATE outbox SET attempts = ?, last_error = ?, lease_until = NULL,
        next_attempt_at = COALESCE(?, next_attempt_at), gave_up_at = CASE WHEN ? IS NULL THEN ? ELSE gave_up_at END
      WHERE id = ? AND sent_at IS NULL`)
      .run(failure.attempts, failure.error.slice(0, 1000), failure.nextAttemptAt?.toISOString() ?? null, failure.nextAttemptAt?.toISOString() ?? null, c.iso(), id)
  }

  outboxMessage (id: string): OutboxRecord | undefined {
    const row = this.#c.sql('SELECT * FROM outbox WHERE id = ?').get(id) as Row | undefined
    return row === undefined ? undefined : toOutbox(row)
  }
}
