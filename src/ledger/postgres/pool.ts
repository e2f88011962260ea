// The connection pool to PostgreSQL (node-postgres): how rows come back (BIGINT cents as numbers, TIMESTAMPTZ
// as the ISO strings the ledger's types carry), one transaction at a time on one pooled client, and a server
// out of reach turned into LedgerUnavailable (503, CashNet retries) rather than a driver error. The pool
// reconnects by itself: a client whose connection broke is discarded and the next query opens a new one.

import pg from 'pg'
import { LedgerUnavailable } from '../errors.ts'

/** A row as node-postgres returns it (snake_case columns). */
export type Row = Record<string, any>

const INT8 = 20
const TIMESTAMPTZ = 1184
const TIMESTAMP = 1114

/** '2026-03-02 10:00:00.123+00' (the server's text form, TimeZone=UTC) as '2026-03-02T10:00:00.123Z'. */
export function isoOf (text: string): string {
  return new Date(text.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString()
}

const types = {
  getTypeParser (oid: number, format?: any): any {
    // Cents and ids never approach 2^53; a number keeps the ledger's types the same on both databases.
    if (oid === INT8) return (text: string) => Number(text)
    if (oid === TIMESTAMPTZ || oid === TIMESTAMP) return isoOf
    return pg.types.getTypeParser(oid, format)
  }
}

/**
 * SQLSTATE classes and node errors meaning "the database cannot take this now", not "this is wrong": the
 * connection (08), the server shutting down or starting (57P0x), too many connections (53300), a serialization
 * failure or deadlock (40001, 40P01), a read-only server (25006: a replica after a failover), a lock not had in
 * time (55P03, lock_timeout), a session ended for idling in a transaction (25P03: this process was paused).
 */
export function isUnavailable (error: unknown): boolean {
  const code = String((error as { code?: unknown })?.code ?? '')
  if (code.startsWith('08') || code.startsWith('57P') || ['53300', '40001', '40P01', '25006', '55P03', '25P03'].includes(code)) return true
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN'].includes(code)) return true
  const message = String((error as Error)?.message ?? '')
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|server closed the connection|Connection ended/i.test(message)
}

/** Rethrows a database-out-of-reach error as LedgerUnavailable; anything else as it is. */
export function unavailable (error: unknown): never {
  if (isUnavailable(error)) throw new LedgerUnavailable(`PostgreSQL: ${(error as Error)?.message ?? String(error)}`)
  throw error
}

export interface PoolOptions {
  url: string
  /** sessions are read-only (default_transaction_read_only): the jobs */
  readOnly?: boolean
  max?: number
  /** a campus's schema (SPEC 12), the search_path of every connection; the database's default when absent */
  schema?: string
}

/** A query runner: the pool itself, or one client inside a transaction. */
export interface Queries {
  query: (sql: string, params?: unknown[]) => Promise<Row[]>
  /** rows changed by the statement */
  run: (sql: string, params?: unknown[]) => Promise<number>
}

/** search_path for a campus's schema: a plain lower-case identifier only (src/ledger/open.ts makes it one). */
function schemaOption (schema: string | undefined): string {
  if (schema === undefined) return ''
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`not a schema name: ${schema.slice(0, 70)}`)
  return ` -c search_path=${schema}`
}

export class Pool implements Queries {
  readonly pool: pg.Pool

  constructor (options: PoolOptions) {
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.max ?? 20,
      // a server out of reach must become a 503 well within CashNet's wait, not a hung postback
      connectionTimeoutMillis: 2000,
      types,
      // A session idle inside a transaction for 10 s (its process paused, or cut off) is ended by the server, so
      // the locks it holds (a budget key, a checkout's row) do not stall the other instances.
      options: `-c TimeZone=UTC -c idle_in_transaction_session_timeout=10000${options.readOnly === true ? ' -c default_transaction_read_only=on' : ''}${schemaOption(options.schema)}`,
      application_name: 'alma-cashnet'
    })
    // A pooled idle connection the server dropped (a restart) is reported here; the pool discards it and the
    // next query connects again. Unhandled, it would end the process.
    this.pool.on('error', () => {})
  }

  async query (sql: string, params: unknown[] = []): Promise<Row[]> {
    try {
      return (await this.pool.query(sql, params)).rows
    } catch (error) {
      unavailable(error)
    }
  }

  async run (sql: string, params: unknown[] = []): Promise<number> {
    try {
      return (await this.pool.query(sql, params)).rowCount ?? 0
    } catch (error) {
      unavailable(error)
    }
  }

  /** Runs work in one transaction on one client: committed when it resolves, rolled back when it throws. */
  async transaction<T> (work: (tx: Queries) => Promise<T>): Promise<T> {
    let client: pg.PoolClient
    try {
      client = await this.pool.connect()
    } catch (error) {
      unavailable(error)
    }
    // The connection dropping while this client is checked out is reported here as well as to the query in
    // flight (which rejects, and so does the transaction); unhandled, it would end the process.
    let dropped: unknown
    const onError = (error: unknown): void => { dropped = error }
    client.on('error', onError)
    const tx: Queries = {
      query: async (sql, params = []) => (await client.query(sql, params)).rows,
      run: async (sql, params = []) => (await client.query(sql, params)).rowCount ?? 0
    }
    let broken: unknown
    try {
      await client.query('BEGIN')
      const result = await work(tx)
      await client.query('COMMIT')
      return result
    } catch (error) {
      broken = isUnavailable(error) ? error : undefined
      await client.query('ROLLBACK').catch((rollback: unknown) => { broken = rollback })
      return unavailable(error)
    } finally {
      // a client whose connection failed is destroyed, not handed to the next caller
      client.removeListener('error', onError)
      broken ??= dropped
      client.release(broken instanceof Error ? broken : undefined)
    }
  }

  async end (): Promise<void> {
    await this.pool.end()
  }
}
