// Which ledger this process uses, in one place for the service and every job (SPEC 11): PostgreSQL when
// DATABASE_URL is set, else the SQLite file at DATABASE_PATH. The service's ledger is created or migrated
// as it opens (PostgreSQL's under an advisory lock, so instances starting together do not race); a job's is
// read-only, never created, never migrated, and an older schema is refused with LedgerSchemaError.

import type { Ledger } from './ledger.ts'
import { PostgresLedger } from './postgres/index.ts'
import { SqliteLedger } from './sqlite/index.ts'

export interface LedgerLocation {
  databasePath: string
  databaseUrl: string
}

export interface OpenLedgerOptions {
  readOnly?: boolean
  now?: () => Date
}

/** Whether this configuration keeps the ledger in PostgreSQL. */
export function usesPostgres (config: LedgerLocation): boolean {
  return config.databaseUrl !== ''
}

export async function openLedger (config: LedgerLocation, options: OpenLedgerOptions = {}): Promise<Ledger> {
  if (usesPostgres(config)) return await PostgresLedger.open({ url: config.databaseUrl, readOnly: options.readOnly, now: options.now })
  return new SqliteLedger({ path: config.databasePath, readOnly: options.readOnly, now: options.now })
}
