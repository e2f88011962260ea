// Which ledger this process uses, in one place for the service and every job (SPEC 11): PostgreSQL when
// DATABASE_URL is set, else the SQLite file at DATABASE_PATH. The service's ledger is created or migrated
// as it opens (PostgreSQL's under an advisory lock, so instances starting together do not race); a job's is
// read-only, never created, never migrated, and an older schema is refused with LedgerSchemaError.
//
// A campus of a system deployment (SPEC 12) gets its own store, so no row can be read or written across campuses
// and no query needs a campus filter. SQLite: the file databasePath, which src/campuses/config.ts has already made
// `<directory of DATABASE_PATH>/<campus>.sqlite`. PostgreSQL: the schema `campus_<id>` (a `-` in the id becomes
// `_`) of the DATABASE_URL database, set as the search_path of every pooled connection and created by the
// migration step (the service's start, or npm run migrate --campus ID). Audit events written through the Ledger
// interface carry the campus in their detail. A campus's SQLite connection keeps at most CAMPUS_CACHE_KIB of
// page cache (SQLite's own default, where better-sqlite3's is 16 MB): one process holds every campus's connection.

import type { Ledger } from './ledger.ts'
import { PostgresLedger } from './postgres/index.ts'
import { SqliteLedger } from './sqlite/index.ts'

export interface LedgerLocation {
  databasePath: string
  databaseUrl: string
  /** the campus of a system deployment (SPEC 12) whose store this is; absent for the one campus */
  campus?: string
}

export interface OpenLedgerOptions {
  readOnly?: boolean
  now?: () => Date
}

/**
 * The page cache of one campus's SQLite connection, in KiB: SQLite's default 2 MB, not better-sqlite3's 16 MB, so
 * twenty campuses' caches stay within 40 MB however large their ledgers grow: about 500 pages, room for the upper
 * levels of the indexes the patron pages and postbacks look up; other pages are read from the OS's file cache.
 */
export const CAMPUS_CACHE_KIB = 2000

/** Whether this configuration keeps the ledger in PostgreSQL. */
export function usesPostgres (config: LedgerLocation): boolean {
  return config.databaseUrl !== ''
}

/** A campus's PostgreSQL schema: `campus_` and its id with `-` as `_` (ids are a-z 0-9 -, so no two collide). */
export function campusSchema (campus: string): string {
  if (!/^[a-z0-9-]{1,32}$/.test(campus)) throw new Error(`not a campus id: ${campus.slice(0, 40)}`)
  return `campus_${campus.replace(/-/g, '_')}`
}

export async function openLedger (config: LedgerLocation, options: OpenLedgerOptions = {}): Promise<Ledger> {
  const campus = config.campus
  const ledger: Ledger = usesPostgres(config)
    ? await PostgresLedger.open({ url: config.databaseUrl, readOnly: options.readOnly, now: options.now, schema: campus === undefined ? undefined : campusSchema(campus) })
    : new SqliteLedger({ path: config.databasePath, readOnly: options.readOnly, now: options.now, cacheKib: campus === undefined ? undefined : CAMPUS_CACHE_KIB })
  if (campus === undefined) return ledger
  const audit = ledger.audit.bind(ledger)
  ledger.audit = async (checkoutId, event, detail) => { await audit(checkoutId, event, { ...detail, campus }) }
  return ledger
}
