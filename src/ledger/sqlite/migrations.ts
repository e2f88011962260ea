// The ledger's schema as numbered migrations, applied in order when the service opens the ledger and tracked in
// PRAGMA user_version. A migration is SQL, or a function for what SQL alone cannot do (reading kept raw bodies).
// Jobs never migrate: they refuse a ledger older than SCHEMA_VERSION (connection.ts).

import type Database from 'better-sqlite3'
import { parseCents } from '../../money.ts'
import type { CashnetItem } from '../types.ts'
import type { Row } from './rows.ts'

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
  },
  // Issue 15: several processes share one ledger. A paid checkout's posting is claimed under a lease (holder,
  // expiry) with a fence that grows with every claim; the Alma calls reserved under the shared rate limit.
  `ALTER TABLE checkouts ADD COLUMN lease_holder TEXT;
   ALTER TABLE checkouts ADD COLUMN lease_fence INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE checkouts ADD COLUMN lease_expires_at TEXT;
   CREATE TABLE alma_reservations (
     key TEXT NOT NULL,
     at_ms INTEGER NOT NULL
   );
   CREATE INDEX alma_reservations_key ON alma_reservations (key, at_ms);`,
  // Issue 18: pay links staff e-mail to a patron; revocation is kept here, every use in audit_events.
  `CREATE TABLE pay_links (
     link_id TEXT PRIMARY KEY,
     patron_id TEXT NOT NULL,
     primary_id TEXT NOT NULL,
     issued_by TEXT NOT NULL,
     issued_at TEXT NOT NULL,
     expires_at TEXT NOT NULL,
     revoked_by TEXT,
     revoked_at TEXT
   );
   CREATE INDEX pay_links_patron ON pay_links (primary_id, issued_at);`,
  // Issue 17: which provider took a checkout's money (the GL clears each provider on its own account, reconcile
  // compares each with its own records). Every checkout before this was CashNet's.
  'ALTER TABLE checkouts ADD COLUMN provider TEXT NOT NULL DEFAULT \'cashnet\';',
  // Issue 18: a line keeps the fee's balance when the checkout was made (a part payment pays less than it); the
  // outbox holds e-mails (receipts) written in the same transaction as the state change they tell of.
  `ALTER TABLE checkout_lines ADD COLUMN balance_cents INTEGER;
   CREATE TABLE outbox (
     id TEXT PRIMARY KEY,
     from_address TEXT NOT NULL,
     to_address TEXT NOT NULL,
     subject TEXT NOT NULL,
     text_body TEXT NOT NULL,
     html_body TEXT NOT NULL,
     created_at TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at TEXT NOT NULL,
     lease_until TEXT,
     sent_at TEXT,
     gave_up_at TEXT,
     last_error TEXT
   );
   CREATE INDEX outbox_due ON outbox (sent_at, gave_up_at, next_attempt_at);`,
  // Issue 15: the service's own sessions, shared by every process on this file. Keyed by the SHA-256 of the
  // session id (the id itself is only ever in the patron's cookie); times in epoch milliseconds.
  `CREATE TABLE sessions (
     id_hash TEXT PRIMARY KEY,
     username TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('userobject', 'primo', 'pay-link')),
     pay_link TEXT,
     created_ms INTEGER NOT NULL,
     last_seen_ms INTEGER NOT NULL,
     expires_ms INTEGER NOT NULL
   );
   CREATE INDEX sessions_pay_link ON sessions (pay_link) WHERE pay_link IS NOT NULL;
   CREATE INDEX sessions_expires ON sessions (expires_ms);`,
  // Issue 15: the shared Alma budget counts the reservations in each key's window here, so a reservation costs
  // the same however large the budget (counting the window's rows cost one step per call already granted), and
  // knows which process reserved last and until when others share the window (a process alone is bounded by its
  // own limiter; the shared window applies while several reserve).
  `CREATE TABLE alma_budget (
     key TEXT PRIMARY KEY,
     in_window INTEGER NOT NULL,
     last_holder TEXT,
     shared_until_ms INTEGER NOT NULL DEFAULT 0
   );
   INSERT INTO alma_budget (key, in_window) SELECT key, COUNT(*) FROM alma_reservations GROUP BY key;`,
  // A refund reference names one refund at its provider: the same reference for the same checkout and tx is
  // recorded once, whoever records it (staff twice, staff after PayPal's webhook, two requests at once). Repeats
  // recorded before this are kept as they were booked (a past day's journal stays the same) and marked with the
  // refund they repeat, so that only they are outside the unique index.
  `ALTER TABLE refunds ADD COLUMN repeat_of INTEGER;
   UPDATE refunds SET repeat_of = (
       SELECT MIN(e.id) FROM refunds e
       WHERE e.checkout_id = refunds.checkout_id AND e.tx = refunds.tx AND e.reference = refunds.reference AND e.id < refunds.id);
   CREATE UNIQUE INDEX refunds_reference ON refunds (checkout_id, tx, reference) WHERE repeat_of IS NULL;`,
  // A PayPal capture held for review (PENDING) is marked on its checkout, in the same write as its audit event:
  // while the checkout is CREATED or EXPIRED it is a payment in progress (its fees are not sold again) and it does
  // not expire. Checkouts already waiting on a review when this runs are marked from their audit event.
  `ALTER TABLE checkouts ADD COLUMN review_tx TEXT;
   UPDATE checkouts SET review_tx = (
       SELECT COALESCE(json_extract(e.detail, '$.tx'), '') FROM audit_events e
       WHERE e.checkout_id = checkouts.id AND e.event = 'paypal.capture_pending' ORDER BY e.id DESC LIMIT 1)
     WHERE state IN ('CREATED', 'EXPIRED')
       AND EXISTS (SELECT 1 FROM audit_events e WHERE e.checkout_id = checkouts.id AND e.event = 'paypal.capture_pending');
   CREATE INDEX checkouts_review ON checkouts (state) WHERE review_tx IS NOT NULL;`,
  // Money a provider took back by itself (PayPal's PAYMENT.CAPTURE.REVERSED: a chargeback or a reversal) is kept
  // beside the refunds, as the same kind of money out: the GL journal and the reports spread it as they spread a
  // refund, and nothing taken back can be refunded or posted again. `kind` tells staff which it was.
  "ALTER TABLE refunds ADD COLUMN kind TEXT NOT NULL DEFAULT 'refund' CHECK (kind IN ('refund', 'reversal'));",
  // A checkout belongs to how its payer was identified as well as to the identifier: a pay-link session's user_id
  // is an Alma primary id, anyone else's a username, and the same text in both is two patrons. Checkouts from
  // before are recognised by what only a pay-link session could have made: user_id equal to primary_id (a pay-link
  // session's username is the primary id it reads Alma by), created while a pay link for that primary id was
  // usable (issued, not yet expired nor revoked; its sessions end with it). A patron whose username is their own
  // primary id and who paid through EZproxy while a link of theirs was open is counted as paying by the link: the
  // payment is then theirs on the link's pages only, never another patron's on theirs.
  `ALTER TABLE checkouts ADD COLUMN user_id_kind TEXT NOT NULL DEFAULT 'username' CHECK (user_id_kind IN ('username', 'primary-id'));
   UPDATE checkouts SET user_id_kind = 'primary-id'
     WHERE user_id = primary_id
       AND EXISTS (SELECT 1 FROM pay_links l
         WHERE l.patron_id = checkouts.user_id AND l.issued_at <= checkouts.created_at AND checkouts.created_at <= l.expires_at
           AND (l.revoked_at IS NULL OR checkouts.created_at <= l.revoked_at));`,
  // An instance from before migration 12, running beside newer ones during a rolling upgrade, writes only the audit
  // event of a review ('paypal.capture_pending'), never review_tx: such a checkout is held all the same, found by
  // that event on the fines page, at expiry and by the sweep that marks it. Few checkouts ever have one: small. The
  // fines page looks among the patron's own checkouts, by username or by primary id (as PostgreSQL's index).
  `CREATE INDEX audit_capture_pending ON audit_events (checkout_id) WHERE event = 'paypal.capture_pending';
   CREATE INDEX checkouts_primary ON checkouts (primary_id);`,
  // A session a revoked pay link opened is marked ended (revoked_ms), not deleted: its patron is told the link was
  // withdrawn, not sent to a sign-in, and the record stays until the session's absolute end.
  'ALTER TABLE sessions ADD COLUMN revoked_ms INTEGER;'
]

/** The ledger's schema version this code expects (the number of migrations). */
export const SCHEMA_VERSION = MIGRATIONS.length

/** Applies the migrations this ledger has not had yet, each in its own transaction with its version. */
export function migrate (db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number
  for (let i = version; i < MIGRATIONS.length; i++) {
    // Several service processes may open the ledger together (WEB_CONCURRENCY): each migration takes the write
    // lock first and reads the version again under it, so a migration another process applied meanwhile is skipped.
    db.transaction(() => {
      if ((db.pragma('user_version', { simple: true }) as number) > i) return
      const migration = MIGRATIONS[i]
      if (typeof migration === 'string') db.exec(migration)
      else migration(db)
      db.pragma(`user_version = ${i + 1}`)
    }).immediate()
  }
}
