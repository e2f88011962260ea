// One SQLite connection for the ledger: opening (WAL, synchronous=FULL, a short busy timeout) or, for jobs,
// opening read-only with the checks that make reading safe beside the running service; each statement
// prepared once; the relaxed-durability window for writes Alma's own record makes recoverable; the audit event.

import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { LedgerSchemaError } from '../errors.ts'
import { migrate, SCHEMA_VERSION } from './migrations.ts'

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

export interface OpenOptions {
  /**
   * The most page cache this connection may hold, in KiB (PRAGMA cache_size = -N). better-sqlite3's default is
   * 16 MB per connection, SQLite's own 2 MB; a process holding one connection per campus (SPEC 12) asks for
   * less so twenty campuses' caches cannot grow to hundreds of MB. Absent: better-sqlite3's default.
   */
  cacheKib?: number
}

/** True for better-sqlite3's SQLITE_BUSY (and its extended codes, e.g. SQLITE_BUSY_SNAPSHOT). */
export function isBusy (error: unknown): boolean {
  const code = (error as { code?: unknown })?.code
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY')
}

export class Connection {
  readonly db: Database.Database
  readonly #now: () => Date
  // Each statement is compiled once. Preparing per call cost CPU, and SQLite's memory for each discarded
  // statement stayed allocated, outside V8's heap and invisible to it, until a major GC happened to collect
  // its wrapper: the service's resident memory grew by tens of MB over a burst of postbacks (docs/performance.md).
  readonly #statements = new Map<string, Database.Statement>()

  private constructor (db: Database.Database, now: () => Date) {
    this.db = db
    this.#now = now
  }

  /** The service's connection: created if missing, WAL, every commit durable unless relaxed, migrated. */
  static open (path: string, now: () => Date, options: OpenOptions = {}): Connection {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    const db = new Database(path)
    // at start-up, another process opening the same ledger (WEB_CONCURRENCY) may hold the lock while it migrates
    db.pragma(`busy_timeout = ${READ_ONLY_BUSY_TIMEOUT_MS}`)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = ON')
    if (options.cacheKib !== undefined) db.pragma(`cache_size = ${-Math.max(1, Math.floor(options.cacheKib))}`)
    migrate(db)
    // Migrating (and, on a new ledger, creating every table) read every page of the schema into the page cache and
    // left SQLite's allocations of the migration statements behind: about 150 KB a connection that the service
    // never reads again, once per campus in a system deployment. Freed here; pages come back as queries read them.
    db.pragma('shrink_memory')
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
    return new Connection(db, now)
  }

  /**
   * For jobs: an existing ledger, read-only; never created, never migrated. A ledger whose schema is older than
   * this code's (or that is not a WAL-mode ledger at all) is refused with LedgerSchemaError.
   */
  static openReadOnly (path: string, now: () => Date): Connection {
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
      return new Connection(db, now)
    } catch (error) {
      db.close()
      throw error
    }
  }

  /** The prepared statement for this SQL, compiled on first use (the SQL texts are a fixed, small set). */
  sql (source: string): Database.Statement {
    let statement = this.#statements.get(source)
    if (statement === undefined) {
      statement = this.db.prepare(source)
      this.#statements.set(source, statement)
    }
    return statement
  }

  iso (): string {
    return this.#now().toISOString()
  }

  now (): Date {
    return this.#now()
  }

  /**
   * Runs work in one write transaction (BEGIN IMMEDIATE, so the write lock is taken up front). Called inside
   * another transaction, it becomes a savepoint of it (group commit relies on that).
   */
  transaction<T> (work: () => T): T {
    return this.db.transaction(work).immediate()
  }

  /**
   * Writes that Alma's own record makes recoverable skip the fsync (WAL with synchronous=NORMAL: safe against a
   * killed process, may be lost with the machine's power). A lost "line posted" or "POSTED" is found again by
   * the next posting, which reads each fee's transactions for our tx (the "pay started" event that makes it
   * look stays fully durable); a lost Alma-call record is diagnostics. Each fsync blocks the event loop for
   * milliseconds, and a posting made five; postbacks and checkouts keep theirs.
   */
  relaxed<T> (write: () => T): T {
    this.sql('PRAGMA synchronous = NORMAL').run()
    try {
      return write()
    } finally {
      this.sql('PRAGMA synchronous = FULL').run()
    }
  }

  /**
   * Runs a write that must not wait for another process's lock: SQLITE_BUSY at once instead of the busy timeout's
   * sleeps, which would hold this process's event loop still (every request with it) while another process,
   * perhaps itself waiting for a core, holds the lock. The caller waits, without blocking, and asks again.
   */
  withoutWaiting<T> (write: () => T): T {
    this.sql('PRAGMA busy_timeout = 0').run()
    try {
      return write()
    } finally {
      this.sql(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`).run()
    }
  }

  event (checkoutId: string | null, event: string, fromState: string | null, toState: string | null, detail: Record<string, unknown>): void {
    this.sql('INSERT INTO audit_events (checkout_id, at, event, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?, ?)')
      .run(checkoutId, this.iso(), event, fromState, toState, JSON.stringify(detail))
  }

  /** Whether a write lock can be taken now. */
  writable (): boolean {
    try {
      this.sql('BEGIN IMMEDIATE').run()
      this.sql('ROLLBACK').run()
      return true
    } catch {
      return false
    }
  }

  close (): void {
    if (this.db.open) this.db.close()
  }
}
