// Moving a single-instance ledger to PostgreSQL (`npm run migrate -- --from FILE.sqlite`): every row of every
// table copied with its id, state, times and amounts, in one PostgreSQL transaction from one consistent SQLite
// snapshot, into an EMPTY ledger only; the identity sequences then follow the highest ids copied, and the
// counts and money totals are compared table by table before the copy is committed. Nothing is half copied.
// Not copied: the posting lease (holder, fence, expiry) and the Alma call reservations, which only mean
// something to processes running on the SQLite ledger, and none may be while it is copied.

import Database from 'better-sqlite3'
import { LedgerSchemaError } from '../errors.ts'
import { SCHEMA_VERSION as SQLITE_SCHEMA_VERSION } from '../sqlite/migrations.ts'
import { IDENTITY_TABLES } from './migrations.ts'
import type { Pool, Queries } from './pool.ts'

/** A table and the columns both ledgers have; `seq` is SQLite's rowid. */
const TABLES: ReadonlyArray<{ table: string, columns: string[], source?: string, order: string }> = [
  {
    table: 'checkouts',
    columns: ['id', 'seq', 'user_id', 'user_id_kind', 'primary_id', 'patron_name', 'email', 'provider', 'state', 'total_cents', 'currency', 'created_at', 'updated_at', 'paid_at', 'posted_at',
      'tx', 'batchno', 'effdate', 'pmtcode', 'attention_reason', 'attention_kind', 'attention_prior', 'unapplied_cents', 'attempts', 'next_attempt_at', 'last_error',
      'resolved_at', 'resolved_by', 'resolution', 'review_tx'],
    source: 'SELECT rowid AS seq, * FROM checkouts',
    order: 'rowid'
  },
  {
    table: 'checkout_lines',
    columns: ['checkout_id', 'line_no', 'fee_id', 'fee_type', 'fee_type_desc', 'owner', 'owner_desc', 'title', 'item_code', 'amount_cents', 'posted_cents', 'posted_at',
      'balance_cents'],
    order: 'checkout_id, line_no'
  },
  { table: 'postbacks', columns: ['id', 'checkout_id', 'received_at', 'peer', 'result', 'tx', 'outcome', 'reason', 'raw_body', 'total_cents'], order: 'id' },
  { table: 'postback_items', columns: ['postback_id', 'item_no', 'item_code', 'amount_cents', 'qty'], order: 'postback_id, item_no' },
  { table: 'alma_calls', columns: ['id', 'checkout_id', 'at', 'method', 'path', 'status', 'error_code', 'error_message', 'tracking_id', 'duration_ms'], order: 'id' },
  { table: 'audit_events', columns: ['id', 'checkout_id', 'at', 'event', 'from_state', 'to_state', 'detail'], order: 'id' },
  { table: 'refunds', columns: ['id', 'checkout_id', 'tx', 'amount_cents', 'reference', 'note', 'by', 'at', 'repeat_of', 'kind'], order: 'id' },
  { table: 'pay_links', columns: ['link_id', 'patron_id', 'primary_id', 'issued_by', 'issued_at', 'expires_at', 'revoked_by', 'revoked_at'], order: 'link_id' },
  // the e-mails with their delivery state: unsent ones go on being sent from PostgreSQL, sent ones never again
  {
    table: 'outbox',
    columns: ['id', 'from_address', 'to_address', 'subject', 'text_body', 'html_body', 'created_at', 'attempts', 'next_attempt_at', 'lease_until', 'sent_at',
      'gave_up_at', 'last_error'],
    order: 'id'
  }
]

/** What is compared after the copy, on both sides: rows per table and every money column's sum. */
const CHECKS: ReadonlyArray<[name: string, sql: string]> = [
  ...TABLES.map(({ table }) => [`${table} rows`, `SELECT COUNT(*) AS v FROM ${table}`] as [string, string]),
  ['checkouts total_cents', 'SELECT COALESCE(SUM(total_cents), 0) AS v FROM checkouts'],
  ['checkouts unapplied_cents', 'SELECT COALESCE(SUM(unapplied_cents), 0) AS v FROM checkouts'],
  ['checkout_lines amount_cents', 'SELECT COALESCE(SUM(amount_cents), 0) AS v FROM checkout_lines'],
  ['checkout_lines posted_cents', 'SELECT COALESCE(SUM(posted_cents), 0) AS v FROM checkout_lines'],
  ['checkout_lines balance_cents', 'SELECT COALESCE(SUM(balance_cents), 0) AS v FROM checkout_lines'],
  ['postbacks total_cents', 'SELECT COALESCE(SUM(total_cents), 0) AS v FROM postbacks'],
  ['postback_items amount_cents', 'SELECT COALESCE(SUM(amount_cents), 0) AS v FROM postback_items'],
  ['refunds amount_cents', 'SELECT COALESCE(SUM(amount_cents), 0) AS v FROM refunds'],
  ...['CREATED', 'PAID', 'POSTED', 'DECLINED', 'CANCELLED', 'EXPIRED', 'NEEDS_ATTENTION'].map(state =>
    [`checkouts in ${state}`, `SELECT COUNT(*) AS v FROM checkouts WHERE state = '${state}'`] as [string, string]),
  ['checkouts paid from a pay link', "SELECT COUNT(*) AS v FROM checkouts WHERE user_id_kind = 'primary-id'"],
  ['checkouts needing attention and not settled', "SELECT COUNT(*) AS v FROM checkouts WHERE state = 'NEEDS_ATTENTION' AND resolved_at IS NULL"],
  ['pay links revoked', 'SELECT COUNT(*) AS v FROM pay_links WHERE revoked_at IS NOT NULL'],
  ['outbox messages sent', 'SELECT COUNT(*) AS v FROM outbox WHERE sent_at IS NOT NULL'],
  ['outbox messages given up', 'SELECT COUNT(*) AS v FROM outbox WHERE gave_up_at IS NOT NULL']
]

const BATCH = 500

export interface CopyReport {
  /** rows copied per table */
  rows: Record<string, number>
  /** every check, with the value both sides agreed on */
  checks: Record<string, number>
}

/** Copies the SQLite ledger at `path` into the (migrated, empty) PostgreSQL ledger behind `pool`. */
export async function copyFromSqlite (path: string, pool: Pool): Promise<CopyReport> {
  const source = new Database(path, { readonly: true, fileMustExist: true })
  try {
    const version = source.pragma('user_version', { simple: true }) as number
    if (version === 0) throw new LedgerSchemaError(`${path} is not a payments ledger (no schema)`)
    if (version !== SQLITE_SCHEMA_VERSION) {
      throw new LedgerSchemaError(`${path} has schema version ${version}, this version copies ${SQLITE_SCHEMA_VERSION}: ` +
        'run npm run migrate on it first (DATABASE_PATH set to it, DATABASE_URL empty), then copy it')
    }
    // one read transaction: every table from the same moment, even if a writer is still at work
    source.exec('BEGIN')
    try {
      return await pool.transaction(async q => {
        await refuseNonEmpty(q)
        const rows: Record<string, number> = {}
        for (const spec of TABLES) rows[spec.table] = await copyTable(source, q, spec)
        for (const [table, column] of IDENTITY_TABLES) {
          await q.query(`SELECT setval(pg_get_serial_sequence('${table}', '${column}'), GREATEST((SELECT COALESCE(MAX(${column}), 0) FROM ${table}), 1), (SELECT COUNT(*) > 0 FROM ${table}))`)
        }
        const checks: Record<string, number> = {}
        for (const [name, sql] of CHECKS) {
          const expected = Number((source.prepare(sql).get() as { v: number | bigint }).v)
          const copied = Number((await q.query(sql))[0].v)
          if (expected !== copied) throw new Error(`the copy does not match the source: ${name} is ${copied}, the SQLite ledger has ${expected}; nothing was committed`)
          checks[name] = copied
        }
        return { rows, checks }
      })
    } finally {
      source.exec('ROLLBACK')
    }
  } finally {
    source.close()
  }
}

async function refuseNonEmpty (q: Queries): Promise<void> {
  for (const { table } of TABLES) {
    const found = await q.query(`SELECT EXISTS (SELECT 1 FROM ${table}) AS present`)
    if (found[0].present === true) {
      throw new LedgerSchemaError(`the PostgreSQL ledger already has rows in ${table}: --from copies only into an empty ledger (a new database), so that nothing is mixed or doubled`)
    }
  }
}

async function copyTable (source: Database.Database, q: Queries, spec: typeof TABLES[number]): Promise<number> {
  const statement = source.prepare(`${spec.source ?? `SELECT * FROM ${spec.table}`} ORDER BY ${spec.order}`)
  const columns = spec.columns.map(c => `"${c}"`).join(', ')
  let batch: unknown[][] = []
  let count = 0
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return
    const width = spec.columns.length
    const values = batch.map((_, r) => `(${spec.columns.map((_, c) => `$${r * width + c + 1}`).join(', ')})`).join(', ')
    await q.run(`INSERT INTO ${spec.table} (${columns}) OVERRIDING SYSTEM VALUE VALUES ${values}`, batch.flat())
    count += batch.length
    batch = []
  }
  for (const row of statement.iterate() as Iterable<Record<string, unknown>>) {
    batch.push(spec.columns.map(c => {
      const value = row[c]
      return typeof value === 'bigint' ? Number(value) : value ?? null
    }))
    if (batch.length >= BATCH) await flush()
  }
  await flush()
  return count
}
