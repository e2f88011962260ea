// The ledger in SQLite (WAL, synchronous=FULL): a postback is on disk before the 200 goes out. Migrations are
// numbered SQL in this file and applied in order when the service opens the ledger, tracked in PRAGMA
// user_version. Jobs (reconcile, export:gl) open it read-only and never migrate: in WAL mode a reader never
// blocks the service's writer, so a job can never make the service miss CashNet's one-second answer.

import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { type Cents, formatDecimal, parseCents } from '../money.ts'
import type { Ledger, RefundRequest, RefundResult, RefundRules, TransitionRequest } from './ledger.ts'
import type {
  AlmaCallEntry, AttentionKind, AuditEvent, CashnetItem, CashnetReport, Checkout, CheckoutFilter, CheckoutHistory, CheckoutLine,
  CheckoutState, CheckoutSummary, IncomingPostback, MoneyRecord, NewCheckout, PostbackDecision, PostbackRecord, RefundRecord
} from './types.ts'
import { CHECKOUT_STATES, UNMATCHED_OUTCOMES } from './types.ts'

const AMOUNT = /^\d{1,9}(?:\.\d{1,2})?$/

/**
 * The items of a stored raw postback body (migration 3 reads the postbacks recorded before items were kept);
 * null when any amount is unreadable, so nothing unreadable ever counts as confirmed.
 */
export function itemsOfRawBody (raw: string): Array<Omit<CashnetItem, 'itemNo'>> | null {
  const fields = new Map<string, string>()
  for (const [k, v] of new URLSearchParams(raw)) fields.set(k.toLowerCase(), v.trim())
  let count = Number(fields.get('itemcnt') ?? '')
  if (!Number.isSafeInteger(count) || count < 0 || count > 200 || fields.get('itemcnt') === '') {
    count = 0
    while (count < 200 && (fields.has(`amount${count + 1}`) || fields.has(`itemcode${count + 1}`))) count++
  }
  const items: Array<Omit<CashnetItem, 'itemNo'>> = []
  for (let n = 1; n <= count; n++) {
    const text = fields.get(`amount${n}`) ?? ''
    if (!AMOUNT.test(text)) return null
    const qty = Number(fields.get(`qty${n}`) ?? '1')
    items.push({ itemCode: fields.get(`itemcode${n}`) ?? '', amount: parseCents(text), qty: Number.isSafeInteger(qty) ? qty : 0 })
  }
  return items
}

type Migration = string | ((db: Database.Database) => void)

export const MIGRATIONS: Migration[] = [
  `CREATE TABLE checkouts (
     id TEXT PRIMARY KEY,
     user_id TEXT NOT NULL,
     primary_id TEXT NOT NULL,
     patron_name TEXT NOT NULL,
     email TEXT NOT NULL,
     state TEXT NOT NULL,
     total_cents INTEGER NOT NULL,
     currency TEXT NOT NULL,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     paid_at TEXT,
     posted_at TEXT,
     tx TEXT,
     batchno TEXT,
     effdate TEXT,
     pmtcode TEXT,
     attention_reason TEXT,
     unapplied_cents INTEGER NOT NULL DEFAULT 0,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at TEXT,
     last_error TEXT
   );
   CREATE INDEX checkouts_user ON checkouts (user_id, created_at);
   CREATE INDEX checkouts_state ON checkouts (state, next_attempt_at);
   CREATE INDEX checkouts_tx ON checkouts (tx);
   CREATE TABLE checkout_lines (
     checkout_id TEXT NOT NULL REFERENCES checkouts (id),
     line_no INTEGER NOT NULL,
     fee_id TEXT NOT NULL,
     fee_type TEXT NOT NULL,
     fee_type_desc TEXT NOT NULL,
     owner TEXT NOT NULL,
     owner_desc TEXT NOT NULL,
     title TEXT NOT NULL,
     item_code TEXT NOT NULL,
     amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
     posted_cents INTEGER,
     posted_at TEXT,
     PRIMARY KEY (checkout_id, line_no)
   );
   CREATE INDEX lines_posted ON checkout_lines (posted_at);
   CREATE TABLE postbacks (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     checkout_id TEXT,
     received_at TEXT NOT NULL,
     peer TEXT NOT NULL,
     result TEXT NOT NULL,
     tx TEXT NOT NULL,
     outcome TEXT NOT NULL,
     reason TEXT NOT NULL,
     raw_body TEXT NOT NULL
   );
   CREATE INDEX postbacks_checkout ON postbacks (checkout_id);
   CREATE INDEX postbacks_tx ON postbacks (tx);
   CREATE TABLE alma_calls (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     checkout_id TEXT NOT NULL,
     at TEXT NOT NULL,
     method TEXT NOT NULL,
     path TEXT NOT NULL,
     status INTEGER NOT NULL,
     error_code TEXT NOT NULL,
     error_message TEXT NOT NULL,
     tracking_id TEXT NOT NULL,
     duration_ms INTEGER NOT NULL
   );
   CREATE INDEX alma_calls_checkout ON alma_calls (checkout_id);
   CREATE TABLE audit_events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     checkout_id TEXT,
     at TEXT NOT NULL,
     event TEXT NOT NULL,
     from_state TEXT,
     to_state TEXT,
     detail TEXT NOT NULL
   );
   CREATE INDEX audit_checkout ON audit_events (checkout_id);`,
  // Staff record how a payment that needed attention was settled (refunded in CashNet, credited in Alma); the
  // state stays NEEDS_ATTENTION, as SPEC names it, and re-entering that state clears the resolution.
  `ALTER TABLE checkouts ADD COLUMN resolved_at TEXT;
   ALTER TABLE checkouts ADD COLUMN resolved_by TEXT;
   ALTER TABLE checkouts ADD COLUMN resolution TEXT;`,
  // Issue 13: why a payment needs attention, as data (the safe staff actions depend on it); what CashNet reported
  // per postback (items and total, so nothing posted can exceed it); the refunds staff record. Rows from before:
  // the kind is read from the reason's wording, UNKNOWN (no posting allowed) when it cannot be; the items are read
  // from the kept raw bodies; a double charge's earlier state from its audit event.
  `ALTER TABLE checkouts ADD COLUMN attention_kind TEXT;
   ALTER TABLE checkouts ADD COLUMN attention_prior TEXT;
   ALTER TABLE postbacks ADD COLUMN total_cents INTEGER;
   CREATE TABLE postback_items (
     postback_id INTEGER NOT NULL REFERENCES postbacks (id),
     item_no INTEGER NOT NULL,
     item_code TEXT NOT NULL,
     amount_cents INTEGER NOT NULL,
     qty INTEGER NOT NULL,
     PRIMARY KEY (postback_id, item_no)
   );
   CREATE TABLE refunds (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     checkout_id TEXT NOT NULL REFERENCES checkouts (id),
     tx TEXT NOT NULL,
     amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
     reference TEXT NOT NULL,
     note TEXT NOT NULL,
     by TEXT NOT NULL,
     at TEXT NOT NULL
   );
   CREATE INDEX refunds_checkout ON refunds (checkout_id);
   CREATE INDEX postbacks_outcome ON postbacks (outcome, received_at);
   UPDATE checkouts SET attention_kind = CASE
       WHEN attention_reason LIKE 'second CashNet transaction %' THEN 'DOUBLE_CHARGE'
       WHEN attention_reason LIKE 'paid amounts differ from the checkout%'
         OR attention_reason LIKE 'CashNet reported success without a transaction number%'
         OR attention_reason LIKE 'paid checkout has no CashNet transaction number%' THEN 'MISMATCH'
       WHEN attention_reason LIKE '% could not be applied in Alma%' THEN 'UNAPPLIED'
       WHEN attention_reason LIKE 'Alma refused:%' THEN 'ALMA_ERROR'
       WHEN attention_reason LIKE 'gave up after %' THEN 'ATTEMPTS_EXHAUSTED'
       ELSE 'UNKNOWN' END
     WHERE state = 'NEEDS_ATTENTION';
   UPDATE checkouts SET attention_prior = (
       SELECT json_object('state', e.from_state, 'kind', CASE WHEN e.from_state = 'NEEDS_ATTENTION' THEN 'UNKNOWN' END)
       FROM audit_events e WHERE e.checkout_id = checkouts.id AND e.event = 'postback.double_charge' ORDER BY e.id LIMIT 1)
     WHERE attention_kind = 'DOUBLE_CHARGE';`,
  (db) => {
    const insert = db.prepare('INSERT INTO postback_items (postback_id, item_no, item_code, amount_cents, qty) VALUES (?, ?, ?, ?, ?)')
    const total = db.prepare('UPDATE postbacks SET total_cents = ? WHERE id = ?')
    // In pages: better-sqlite3 cannot write while a read is being iterated on the same connection.
    const page = db.prepare("SELECT id, raw_body FROM postbacks WHERE outcome NOT IN ('REJECTED') AND result = '0' AND id > ? ORDER BY id LIMIT 1000")
    for (let last = 0, rows = page.all(last) as Row[]; rows.length > 0; rows = page.all(last) as Row[]) {
      for (const row of rows) {
        last = row.id
        const items = itemsOfRawBody(String(row.raw_body))
        if (items === null) continue
        items.forEach((item, index) => insert.run(row.id, index + 1, item.itemCode, item.amount, item.qty))
        total.run(items.reduce((s, i) => s + i.amount, 0), row.id)
      }
    }
  }
]

type Row = Record<string, any>

function toCheckout (row: Row, lines: Row[]): Checkout {
  return { ...toSummary(row), lines: lines.map(toLine) }
}

function toLine (l: Row): CheckoutLine {
  return {
    lineNo: l.line_no,
    feeId: l.fee_id,
    feeType: l.fee_type,
    feeTypeDesc: l.fee_type_desc,
    owner: l.owner,
    ownerDesc: l.owner_desc,
    title: l.title,
    itemCode: l.item_code,
    amount: l.amount_cents as Cents,
    postedAmount: l.posted_cents as Cents | null,
    postedAt: l.posted_at
  }
}

function toSummary (row: Row): CheckoutSummary {
  return {
    id: row.id,
    userId: row.user_id,
    primaryId: row.primary_id,
    patronName: row.patron_name,
    email: row.email,
    state: row.state,
    total: row.total_cents as Cents,
    currency: row.currency,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    paidAt: row.paid_at,
    postedAt: row.posted_at,
    tx: row.tx,
    batchno: row.batchno,
    effdate: row.effdate,
    pmtcode: row.pmtcode,
    attentionReason: row.attention_reason,
    attentionKind: (row.attention_kind ?? null) as AttentionKind | null,
    unapplied: row.unapplied_cents as Cents,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    resolvedAt: row.resolved_at ?? null,
    resolvedBy: row.resolved_by ?? null,
    resolution: row.resolution ?? null
  }
}

function toPostback (row: Row): PostbackRecord {
  return {
    id: row.id,
    checkoutId: row.checkout_id,
    receivedAt: row.received_at,
    peer: row.peer,
    result: row.result,
    tx: row.tx,
    outcome: row.outcome,
    reason: row.reason,
    rawBody: row.raw_body,
    total: (row.total_cents ?? null) as Cents | null
  }
}

function toRefund (r: Row): RefundRecord {
  return { id: r.id, checkoutId: r.checkout_id, tx: r.tx, amount: r.amount_cents as Cents, reference: r.reference, note: r.note, by: r.by, at: r.at }
}

/** The state a checkout had before a double charge, kept while the double charge is open. */
interface PriorState {
  state: CheckoutState | null
  kind?: AttentionKind | null
  reason?: string | null
  resolvedAt?: string | null
  resolvedBy?: string | null
  resolution?: string | null
}

export interface SqliteLedgerOptions {
  path: string
  now?: () => Date
  /**
   * For jobs: open an existing ledger read-only; never create it, never migrate it. A ledger whose schema is
   * older than this code's (or that is not a WAL-mode ledger at all) is refused with LedgerSchemaError.
   */
  readOnly?: boolean
}

/**
 * How long a write waits for a lock held by another process. better-sqlite3 is synchronous, so this wait
 * blocks the event loop: every request, postback acknowledgements included, stands still meanwhile. The
 * service is the ledger's only writer (jobs read in WAL mode, which takes no lock a writer waits for), so a
 * lock held elsewhere is an accident (an operator's sqlite3 shell, a second instance); a short wait and a
 * 503, which CashNet retries, is better than a stalled service.
 */
export const BUSY_TIMEOUT_MS = 100
/** A job's reads may wait longer: only the job's own process waits. */
const READ_ONLY_BUSY_TIMEOUT_MS = 5000

/** The ledger's schema version this code expects (the number of migrations). */
export const SCHEMA_VERSION = MIGRATIONS.length

/** The ledger is not one a job can read: missing tables, an older schema, or not in WAL mode. */
export class LedgerSchemaError extends Error {
  readonly kind = 'LedgerSchemaError'
}

/** A write met a lock held by another process (SQLITE_BUSY after BUSY_TIMEOUT_MS); nothing was written. */
export class LedgerBusy extends Error {
  readonly kind = 'LedgerBusy'
  readonly statusCode = 503
  constructor (cause: unknown) {
    super(`the ledger is locked by another process (${typeof cause === 'string' ? cause : (cause as Error)?.message ?? String(cause)}); nothing was written`)
  }
}

/** True for better-sqlite3's SQLITE_BUSY (and its extended codes, e.g. SQLITE_BUSY_SNAPSHOT). */
export function isBusy (error: unknown): boolean {
  const code = (error as { code?: unknown })?.code
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY')
}

export class SqliteLedger implements Ledger {
  readonly #db: Database.Database
  readonly #now: () => Date
  // Each statement is compiled once. Preparing per call cost CPU, and SQLite's memory for each discarded
  // statement stayed allocated, outside V8's heap and invisible to it, until a major GC happened to collect
  // its wrapper: the service's resident memory grew by tens of MB over a burst of postbacks (docs/performance.md).
  readonly #statements = new Map<string, Database.Statement>()

  constructor (options: SqliteLedgerOptions) {
    this.#now = options.now ?? (() => new Date())
    if (options.readOnly === true) {
      this.#db = SqliteLedger.#openReadOnly(options.path)
      return
    }
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true })
    this.#db = new Database(options.path)
    this.#db.pragma('journal_mode = WAL')
    this.#db.pragma('synchronous = FULL')
    this.#db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
    this.#db.pragma('foreign_keys = ON')
    this.#migrate()
  }

  static #openReadOnly (path: string): Database.Database {
    const db = new Database(path, { readonly: true, fileMustExist: true })
    try {
      db.pragma(`busy_timeout = ${READ_ONLY_BUSY_TIMEOUT_MS}`)
      const version = db.pragma('user_version', { simple: true }) as number
      const mode = String(db.pragma('journal_mode', { simple: true }))
      if (version === 0) {
        throw new LedgerSchemaError(`${path} is not a payments ledger (no schema); point DATABASE_PATH at the file the service uses`)
      }
      if (version < SCHEMA_VERSION) {
        throw new LedgerSchemaError(`the ledger ${path} has schema version ${version}, this version of the jobs needs ${SCHEMA_VERSION}: ` +
          'start the service once (it migrates the ledger when it starts), then run the job again. Jobs never migrate the ledger.')
      }
      // In rollback-journal mode a reader's lock would block the service's commits; the service always sets WAL.
      if (mode !== 'wal') {
        throw new LedgerSchemaError(`the ledger ${path} is in ${mode} journal mode, not WAL, so reading it could stall the service: start the service once (it sets WAL), then run the job again`)
      }
      return db
    } catch (error) {
      db.close()
      throw error
    }
  }

  #migrate (): void {
    const version = this.#db.pragma('user_version', { simple: true }) as number
    for (let i = version; i < MIGRATIONS.length; i++) {
      this.#db.transaction(() => {
        const migration = MIGRATIONS[i]
        if (typeof migration === 'string') this.#db.exec(migration)
        else migration(this.#db)
        this.#db.pragma(`user_version = ${i + 1}`)
      })()
    }
  }

  /** The prepared statement for this SQL, compiled on first use (the SQL texts are a fixed, small set). */
  #sql (source: string): Database.Statement {
    let statement = this.#statements.get(source)
    if (statement === undefined) {
      statement = this.#db.prepare(source)
      this.#statements.set(source, statement)
    }
    return statement
  }

  #iso (): string {
    return this.#now().toISOString()
  }

  /**
   * Writes that Alma's own record makes recoverable skip the fsync (WAL with synchronous=NORMAL: safe against a
   * killed process, may be lost with the machine's power). A lost "line posted" or "POSTED" is found again by
   * the next posting, which reads each fee's transactions for our tx (the "pay started" event that makes it
   * look stays fully durable); a lost Alma-call record is diagnostics. Each fsync blocks the event loop for
   * milliseconds, and a posting made five; postbacks and checkouts keep theirs.
   */
  #relaxed<T> (write: () => T): T {
    this.#sql('PRAGMA synchronous = NORMAL').run()
    try {
      return write()
    } finally {
      this.#sql('PRAGMA synchronous = FULL').run()
    }
  }

  #event (checkoutId: string | null, event: string, fromState: string | null, toState: string | null, detail: Record<string, unknown>): void {
    this.#sql('INSERT INTO audit_events (checkout_id, at, event, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?, ?)')
      .run(checkoutId, this.#iso(), event, fromState, toState, JSON.stringify(detail))
  }

  createCheckout (checkout: NewCheckout): Checkout {
    const now = this.#iso()
    const total = checkout.lines.reduce((s, l) => s + l.amount, 0)
    this.#db.transaction(() => {
      this.#sql(`INSERT INTO checkouts (id, user_id, primary_id, patron_name, email, state, total_cents, currency, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, 'CREATED', ?, ?, ?, ?)`)
        .run(checkout.id, checkout.userId, checkout.primaryId, checkout.patronName, checkout.email, total, checkout.currency, now, now)
      const insertLine = this.#sql(`INSERT INTO checkout_lines (checkout_id, line_no, fee_id, fee_type, fee_type_desc, owner, owner_desc, title, item_code, amount_cents)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      for (const line of checkout.lines) {
        insertLine.run(checkout.id, line.lineNo, line.feeId, line.feeType, line.feeTypeDesc, line.owner, line.ownerDesc, line.title, line.itemCode, line.amount)
      }
      this.#event(checkout.id, 'checkout.created', null, 'CREATED', { total, lines: checkout.lines.length })
    })()
    return this.getCheckout(checkout.id) as Checkout
  }

  getCheckout (id: string): Checkout | undefined {
    const row = this.#sql('SELECT * FROM checkouts WHERE id = ?').get(id) as Row | undefined
    if (row === undefined) return undefined
    const lines = this.#sql('SELECT * FROM checkout_lines WHERE checkout_id = ? ORDER BY line_no').all(id) as Row[]
    return toCheckout(row, lines)
  }

  latestCheckoutForUser (userId: string): Checkout | undefined {
    const row = this.#sql('SELECT id FROM checkouts WHERE user_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1').get(userId) as Row | undefined
    return row === undefined ? undefined : this.getCheckout(row.id)
  }

  paymentsInProgress (userId: string, primaryId: string): Checkout[] {
    // by state first (indexed, and few checkouts are ever PAID or open for staff), then the patron
    const rows = this.#sql(`SELECT id FROM checkouts
      WHERE state IN ('PAID', 'NEEDS_ATTENTION') AND (state = 'PAID' OR resolved_at IS NULL)
        AND (user_id = ? OR primary_id = ?)
        AND EXISTS (SELECT 1 FROM checkout_lines WHERE checkout_id = checkouts.id AND posted_at IS NULL)
      ORDER BY created_at, rowid`).all(userId, primaryId) as Row[]
    return rows.map(r => this.getCheckout(r.id) as Checkout)
  }

  inTransaction<T> (work: () => T): T {
    return this.#db.transaction(work).immediate()
  }

  recordPostback (postback: IncomingPostback, decide: (checkout: Checkout | undefined, earlier: PostbackRecord[], elsewhere: string[]) => PostbackDecision): { id: number, decision: PostbackDecision, checkout: Checkout | undefined } {
    return this.#db.transaction(() => {
      const checkout = postback.checkoutId === null ? undefined : this.getCheckout(postback.checkoutId)
      const earlier = checkout === undefined
        ? []
        : (this.#sql('SELECT * FROM postbacks WHERE checkout_id = ? ORDER BY id').all(checkout.id) as Row[]).map(toPostback)
      const elsewhere = postback.tx === '' ? [] : this.#checkoutsWithTx(postback.tx, checkout?.id ?? postback.checkoutId ?? '')
      const decision = decide(checkout, earlier, elsewhere)
      const items = postback.items ?? null
      const info = this.#sql('INSERT INTO postbacks (checkout_id, received_at, peer, result, tx, outcome, reason, raw_body, total_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(checkout?.id ?? postback.checkoutId, this.#iso(), postback.peer, postback.result, postback.tx, decision.outcome, decision.reason, postback.rawBody,
          items === null ? null : items.reduce((s, i) => s + i.amount, 0))
      const id = Number(info.lastInsertRowid)
      if (items !== null) {
        const insert = this.#sql('INSERT INTO postback_items (postback_id, item_no, item_code, amount_cents, qty) VALUES (?, ?, ?, ?, ?)')
        items.forEach((item, index) => insert.run(id, index + 1, item.itemCode, item.amount, item.qty))
      }
      // A new reason for attention (a double charge on a payment staff had settled) reopens it.
      if (checkout !== undefined && decision.to !== undefined && (decision.to !== checkout.state || decision.to === 'NEEDS_ATTENTION')) {
        const now = this.#iso()
        const payment = decision.payment
        const kind = decision.to === 'NEEDS_ATTENTION' ? decision.attentionKind ?? 'UNKNOWN' : null
        // A double charge keeps the state the original payment had, to go back to once its refund is recorded.
        const openDouble = checkout.state === 'NEEDS_ATTENTION' && checkout.attentionKind === 'DOUBLE_CHARGE'
        const prior: PriorState | null = kind === 'DOUBLE_CHARGE' && !openDouble
          ? { state: checkout.state, kind: checkout.state === 'NEEDS_ATTENTION' ? checkout.attentionKind : null, reason: checkout.attentionReason, resolvedAt: checkout.resolvedAt, resolvedBy: checkout.resolvedBy, resolution: checkout.resolution }
          : null
        this.#sql(`UPDATE checkouts SET state = ?, updated_at = ?,
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
        this.#event(checkout.id, `postback.${decision.outcome.toLowerCase()}`, checkout.state, decision.to, { postback: id, tx: postback.tx, result: postback.result, reason: decision.reason, ...(kind !== null ? { kind } : {}) })
      } else {
        this.#event(checkout?.id ?? null, `postback.${decision.outcome.toLowerCase()}`, checkout?.state ?? null, checkout?.state ?? null, { postback: id, tx: postback.tx, result: postback.result, reason: decision.reason, checkout: postback.checkoutId })
      }
      return { id, decision, checkout: checkout === undefined ? undefined : this.getCheckout(checkout.id) }
    }).immediate()
  }

  /** Other checkouts a tx is already recorded for: as their payment, or in a postback that reported money taken. */
  #checkoutsWithTx (tx: string, exceptId: string): string[] {
    return (this.#sql(`SELECT id FROM checkouts WHERE tx = ? AND id != ?
        UNION SELECT checkout_id FROM postbacks WHERE tx = ? AND result = '0' AND checkout_id IS NOT NULL AND checkout_id != ?
          AND outcome IN ('PAID', 'MISMATCH', 'DOUBLE_CHARGE', 'DUPLICATE')`)
      .all(tx, exceptId, tx, exceptId) as Row[]).map(r => r.id as string)
  }

  transition (request: TransitionRequest): boolean {
    return this.#relaxed(() => this.#db.transaction(() => {
      const row = this.#sql('SELECT state FROM checkouts WHERE id = ?').get(request.checkoutId) as Row | undefined
      if (row === undefined || !request.from.includes(row.state)) return false
      const now = this.#iso()
      const kind = request.to === 'NEEDS_ATTENTION' ? request.attentionKind ?? 'UNKNOWN' : null
      this.#sql(`UPDATE checkouts SET state = ?, updated_at = ?,
          posted_at = CASE WHEN ? = 'POSTED' THEN ? ELSE posted_at END,
          attention_reason = COALESCE(?, attention_reason),
          attention_kind = COALESCE(?, attention_kind),
          unapplied_cents = COALESCE(?, unapplied_cents),
          next_attempt_at = CASE WHEN ? IN ('POSTED', 'NEEDS_ATTENTION') THEN NULL ELSE next_attempt_at END,
          resolved_at = NULL, resolved_by = NULL, resolution = NULL
        WHERE id = ?`)
        .run(request.to, now, request.to, now, request.attentionReason ?? null, kind, request.unapplied ?? null, request.to, request.checkoutId)
      this.#event(request.checkoutId, request.event, row.state, request.to, { ...(kind !== null ? { kind } : {}), ...request.detail })
      return true
    }).immediate())
  }

  markLinePosted (checkoutId: string, lineNo: number, postedAmount: Cents, detail: Record<string, unknown>): void {
    this.#relaxed(() => this.#db.transaction(() => {
      const changed = this.#sql('UPDATE checkout_lines SET posted_cents = ?, posted_at = ? WHERE checkout_id = ? AND line_no = ? AND posted_at IS NULL')
        .run(postedAmount, this.#iso(), checkoutId, lineNo)
      if (changed.changes === 1) this.#event(checkoutId, 'line.posted', null, null, { line: lineNo, posted: postedAmount, ...detail })
    }).immediate())
  }

  recordAlmaCall (call: Omit<AlmaCallEntry, 'id'>): void {
    this.#relaxed(() => this.#sql(`INSERT INTO alma_calls (checkout_id, at, method, path, status, error_code, error_message, tracking_id, duration_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(call.checkoutId, call.at, call.method, call.path, call.status, call.errorCode, call.errorMessage.slice(0, 1000), call.trackingId, call.durationMs))
  }

  recordAttempt (checkoutId: string, nextAttemptAt: Date | null, lastError: string): number {
    return this.#relaxed(() => this.#db.transaction(() => {
      this.#sql('UPDATE checkouts SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?')
        .run(nextAttemptAt?.toISOString() ?? null, lastError.slice(0, 1000), this.#iso(), checkoutId)
      const row = this.#sql('SELECT attempts FROM checkouts WHERE id = ?').get(checkoutId) as Row
      this.#event(checkoutId, 'posting.attempt_failed', null, null, { attempt: row.attempts, error: lastError, retryAt: nextAttemptAt?.toISOString() ?? null })
      return row.attempts as number
    }).immediate())
  }

  requeue (checkoutId: string, by: string, action: 'retry' | 'post-confirmed' = 'retry'): boolean {
    return this.#db.transaction(() => {
      const row = this.#sql('SELECT state, tx, resolved_at FROM checkouts WHERE id = ?').get(checkoutId) as Row | undefined
      if (row === undefined || row.tx === null || row.tx === '') return false
      if (!(row.state === 'PAID' || (row.state === 'NEEDS_ATTENTION' && row.resolved_at === null))) return false
      this.#sql("UPDATE checkouts SET state = 'PAID', attempts = 0, next_attempt_at = ?, updated_at = ? WHERE id = ?")
        .run(this.#iso(), this.#iso(), checkoutId)
      this.#event(checkoutId, 'posting.retry_requested', row.state, 'PAID', action === 'retry' ? { by } : { by, action })
      return true
    }).immediate()
  }

  resolveAttention (checkoutId: string, by: string, resolution: string): boolean {
    return this.#db.transaction(() => {
      const changed = this.#sql("UPDATE checkouts SET resolved_at = ?, resolved_by = ?, resolution = ?, updated_at = ? WHERE id = ? AND state = 'NEEDS_ATTENTION' AND resolved_at IS NULL")
        .run(this.#iso(), by, resolution, this.#iso(), checkoutId)
      if (changed.changes === 1) this.#event(checkoutId, 'attention.resolved', 'NEEDS_ATTENTION', 'NEEDS_ATTENTION', { by, resolution })
      return changed.changes === 1
    }).immediate()
  }

  recordRefund (refund: RefundRequest, rules: RefundRules): RefundResult {
    return this.#db.transaction((): RefundResult => {
      const before = this.moneyRecord(refund.checkoutId)
      if (before === undefined) return { recorded: false, reason: 'no such checkout' }
      const refused = rules.refuse(before)
      if (refused !== null) return { recorded: false, reason: refused }
      const now = this.#iso()
      const id = Number(this.#sql('INSERT INTO refunds (checkout_id, tx, amount_cents, reference, note, by, at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(refund.checkoutId, refund.tx, refund.amount, refund.reference, refund.note, refund.by, now).lastInsertRowid)
      this.#event(refund.checkoutId, 'refund.recorded', null, null, { refund: id, tx: refund.tx, amount: refund.amount, reference: refund.reference, note: refund.note, by: refund.by })
      const after = this.moneyRecord(refund.checkoutId) as MoneyRecord
      const effect = rules.effect(after)
      const checkout = after.checkout
      if (effect === 'settle') {
        const resolution = `refund of ${formatDecimal(refund.amount)} recorded (CashNet refund ${refund.reference}): ${refund.note}`
        this.resolveAttention(checkout.id, refund.by, resolution)
      } else if (effect === 'restore') {
        this.#restoreAfterDoubleCharge(checkout, refund.by, id)
      }
      return { recorded: true, id, effect, checkout: this.getCheckout(checkout.id) as Checkout }
    }).immediate()
  }

  /**
   * Every extra charge is refunded: the checkout goes back to the state its original payment had (PAID goes on
   * posting, POSTED stays posted, an earlier attention case comes back as it was), keeping the record.
   */
  #restoreAfterDoubleCharge (checkout: Checkout, by: string, refundId: number): void {
    const raw = this.#sql('SELECT attention_prior FROM checkouts WHERE id = ?').get(checkout.id) as Row
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
      this.#sql(`UPDATE checkouts SET state = 'NEEDS_ATTENTION', updated_at = ?, attention_kind = ?, attention_reason = ?, attention_prior = NULL,
          resolved_at = ?, resolved_by = ?, resolution = ? WHERE id = ?`)
        .run(now, kind, reason, prior?.resolvedAt ?? null, prior?.resolvedBy ?? null, prior?.resolution ?? null, checkout.id)
    } else {
      this.#sql(`UPDATE checkouts SET state = ?, updated_at = ?, attention_prior = NULL,
          next_attempt_at = CASE WHEN ? = 'PAID' THEN ? ELSE NULL END, attempts = CASE WHEN ? = 'PAID' THEN 0 ELSE attempts END WHERE id = ?`)
        .run(state, now, state, now, state, checkout.id)
    }
    this.#event(checkout.id, 'double_charge.refunded', 'NEEDS_ATTENTION', state, { by, refund: refundId })
  }

  moneyRecord (checkoutId: string): MoneyRecord | undefined {
    const checkout = this.getCheckout(checkoutId)
    if (checkout === undefined) return undefined
    return { checkout, reports: this.#reports(checkoutId), refunds: this.#refunds(checkoutId) }
  }

  #reports (checkoutId: string): CashnetReport[] {
    const rows = this.#sql(`SELECT p.id, p.tx, p.outcome, p.total_cents, i.item_no, i.item_code, i.amount_cents, i.qty
        FROM postbacks p LEFT JOIN postback_items i ON i.postback_id = p.id
        WHERE p.checkout_id = ? AND p.result = '0' AND p.tx != '' AND p.total_cents IS NOT NULL
          AND p.outcome IN ('PAID', 'MISMATCH', 'DOUBLE_CHARGE')
        ORDER BY p.id, i.item_no`).all(checkoutId) as Row[]
    const reports = new Map<number, CashnetReport>()
    for (const r of rows) {
      let report = reports.get(r.id)
      if (report === undefined) {
        report = { postbackId: r.id, tx: r.tx, outcome: r.outcome, items: [], total: r.total_cents as Cents }
        reports.set(r.id, report)
      }
      if (r.item_no !== null) report.items.push({ itemNo: r.item_no, itemCode: r.item_code, amount: r.amount_cents as Cents, qty: r.qty })
    }
    return [...reports.values()]
  }

  #refunds (checkoutId: string): RefundRecord[] {
    return (this.#sql('SELECT * FROM refunds WHERE checkout_id = ? ORDER BY id').all(checkoutId) as Row[]).map(toRefund)
  }

  duePostings (now: Date): string[] {
    return (this.#sql("SELECT id FROM checkouts WHERE state = 'PAID' AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY paid_at")
      .all(now.toISOString()) as Row[]).map(r => r.id)
  }

  expireCreated (createdBefore: Date): string[] {
    return this.#db.transaction(() => {
      const ids = (this.#sql("SELECT id FROM checkouts WHERE state = 'CREATED' AND created_at < ?").all(createdBefore.toISOString()) as Row[]).map(r => r.id as string)
      for (const id of ids) {
        this.#sql("UPDATE checkouts SET state = 'EXPIRED', updated_at = ? WHERE id = ? AND state = 'CREATED'").run(this.#iso(), id)
        this.#event(id, 'checkout.expired', 'CREATED', 'EXPIRED', {})
      }
      return ids
    }).immediate()
  }

  paidBefore (cutoff: Date): Checkout[] {
    return (this.#sql("SELECT id FROM checkouts WHERE state = 'PAID' AND paid_at < ?").all(cutoff.toISOString()) as Row[])
      .map(r => this.getCheckout(r.id) as Checkout)
  }

  /** The WHERE clause and parameters of a list filter (states, unresolved, search). */
  #where (filter: CheckoutFilter): { where: string[], params: unknown[] } {
    const where: string[] = []
    const params: unknown[] = []
    if (filter.states !== undefined && filter.states.length > 0) {
      where.push(`state IN (${filter.states.map(() => '?').join(', ')})`)
      params.push(...filter.states)
    }
    if (filter.unresolved === true) where.push('resolved_at IS NULL')
    const search = filter.search?.trim() ?? ''
    if (search !== '') {
      where.push('(id = ? OR tx = ? OR user_id = ? OR primary_id = ? OR patron_name LIKE ? ESCAPE \'\\\' OR id IN (SELECT checkout_id FROM postbacks WHERE tx = ?))')
      const like = '%' + search.replace(/[\\%_]/g, c => '\\' + c) + '%'
      params.push(search, search, search, search, like, search)
    }
    return { where, params }
  }

  listCheckouts (filter: CheckoutFilter): { checkouts: Checkout[], total: number } {
    const { where, params } = this.#where(filter)
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    const total = (this.#sql(`SELECT COUNT(*) AS n FROM checkouts ${clause}`).get(...params) as Row).n as number
    if (filter.limit === 0) return { checkouts: [], total }
    const rows = this.#sql(`SELECT id FROM checkouts ${clause} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`)
      .all(...params, filter.limit ?? 50, filter.offset ?? 0) as Row[]
    return { checkouts: rows.map(r => this.getCheckout(r.id) as Checkout), total }
  }

  countCheckouts (search: string): { byState: Record<CheckoutState, number>, openAttention: number } {
    const { where, params } = this.#where({ search })
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    const rows = this.#sql(`SELECT state, COUNT(*) AS n, SUM(CASE WHEN state = 'NEEDS_ATTENTION' AND resolved_at IS NULL THEN 1 ELSE 0 END) AS open
        FROM checkouts ${clause} GROUP BY state`).all(...params) as Row[]
    const byState = Object.fromEntries(CHECKOUT_STATES.map(state => [state, 0])) as Record<CheckoutState, number>
    let openAttention = 0
    for (const row of rows) {
      if (row.state in byState) byState[row.state as CheckoutState] = row.n
      openAttention += row.open ?? 0
    }
    return { byState, openAttention }
  }

  checkoutPage (filter: CheckoutFilter, after: { createdAt: string, rowid: number } | null, limit: number): Array<CheckoutSummary & { rowid: number }> {
    const { where, params } = this.#where(filter)
    if (after !== null) {
      where.push('(created_at, rowid) < (?, ?)')
      params.push(after.createdAt, after.rowid)
    }
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    return (this.#sql(`SELECT rowid AS row_id, * FROM checkouts ${clause} ORDER BY created_at DESC, rowid DESC LIMIT ?`).all(...params, limit) as Row[])
      .map(r => ({ ...toSummary(r), rowid: r.row_id as number }))
  }

  history (checkoutId: string): CheckoutHistory | undefined {
    const checkout = this.getCheckout(checkoutId)
    if (checkout === undefined) return undefined
    return {
      checkout,
      postbacks: (this.#sql('SELECT * FROM postbacks WHERE checkout_id = ? ORDER BY id').all(checkoutId) as Row[]).map(toPostback),
      almaCalls: (this.#sql('SELECT * FROM alma_calls WHERE checkout_id = ? ORDER BY id').all(checkoutId) as Row[]).map((r): AlmaCallEntry => ({
        id: r.id, checkoutId: r.checkout_id, at: r.at, method: r.method, path: r.path, status: r.status, errorCode: r.error_code, errorMessage: r.error_message, trackingId: r.tracking_id, durationMs: r.duration_ms
      })),
      events: (this.#sql('SELECT * FROM audit_events WHERE checkout_id = ? ORDER BY id').all(checkoutId) as Row[]).map((r): AuditEvent => ({
        id: r.id, checkoutId: r.checkout_id, at: r.at, event: r.event, fromState: r.from_state, toState: r.to_state, detail: r.detail
      })),
      reports: this.#reports(checkoutId),
      refunds: this.#refunds(checkoutId)
    }
  }

  unmatchedPostbacks (since?: Date, limit = -1): PostbackRecord[] {
    return (this.#sql(`SELECT * FROM postbacks WHERE outcome IN (${UNMATCHED_OUTCOMES.map(o => `'${o}'`).join(', ')}) AND received_at >= ? ORDER BY id DESC LIMIT ?`)
      .all((since ?? new Date(0)).toISOString(), limit) as Row[]).map(toPostback)
  }

  countUnmatchedPostbacks (): number {
    return (this.#sql(`SELECT COUNT(*) AS n FROM postbacks WHERE outcome IN (${UNMATCHED_OUTCOMES.map(o => `'${o}'`).join(', ')})`).get() as Row).n as number
  }

  checkoutsTouchedSince (since: Date): Checkout[] {
    const at = since.toISOString()
    return (this.#sql(`SELECT id FROM checkouts WHERE paid_at >= ? OR updated_at >= ?
        OR id IN (SELECT checkout_id FROM postbacks WHERE received_at >= ? AND checkout_id IS NOT NULL) ORDER BY created_at, rowid`)
      .all(at, at, at) as Row[]).map(r => this.getCheckout(r.id) as Checkout)
  }

  postbacksWithTx (tx: string): PostbackRecord[] {
    return (this.#sql('SELECT * FROM postbacks WHERE tx = ? ORDER BY id').all(tx) as Row[]).map(toPostback)
  }

  postedLines (from: Date, to: Date): Array<{ checkout: Checkout, lineNo: number }> {
    const rows = this.#sql('SELECT checkout_id, line_no FROM checkout_lines WHERE posted_at >= ? AND posted_at < ? AND posted_cents > 0 ORDER BY posted_at, checkout_id, line_no')
      .all(from.toISOString(), to.toISOString()) as Row[]
    const cache = new Map<string, Checkout>()
    return rows.map(r => {
      let checkout = cache.get(r.checkout_id)
      if (checkout === undefined) {
        checkout = this.getCheckout(r.checkout_id) as Checkout
        cache.set(r.checkout_id, checkout)
      }
      return { checkout, lineNo: r.line_no }
    })
  }

  audit (checkoutId: string | null, event: string, detail: Record<string, unknown>): void {
    this.#event(checkoutId, event, null, null, detail)
  }

  writable (): boolean {
    try {
      this.#sql('BEGIN IMMEDIATE').run()
      this.#sql('ROLLBACK').run()
      return true
    } catch {
      return false
    }
  }

  close (): void {
    if (this.#db.open) this.#db.close()
  }
}
