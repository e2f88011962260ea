// How every job opens the payments ledger: PostgreSQL when DATABASE_URL is set, else the SQLite file; read-only,
// never created, never migrated. A ledger the job cannot read safely is a configuration problem (exit 2), with
// the one thing to do in the message.

import { LedgerSchemaError, LedgerUnavailable } from '../../src/ledger/errors.ts'
import type { Ledger } from '../../src/ledger/ledger.ts'
import { openLedger, type LedgerLocation } from '../../src/ledger/open.ts'
import { UsageError } from './cli.ts'

/** The --campus of a system deployment (CAMPUS, set by campusArguments): its PostgreSQL schema; {} for the one campus. */
export function campusOf (env: Record<string, string | undefined>): { campus?: string } {
  return env.CAMPUS !== undefined && env.CAMPUS !== '' ? { campus: env.CAMPUS } : {}
}

export async function openLedgerReadOnly (location: LedgerLocation): Promise<Ledger> {
  const variable = location.databaseUrl !== '' ? 'DATABASE_URL' : 'DATABASE_PATH'
  try {
    return await openLedger(location, { readOnly: true })
  } catch (error) {
    if (error instanceof LedgerSchemaError) throw new UsageError(`configuration: ${variable}: ${error.message}`)
    if (error instanceof LedgerUnavailable) throw new UsageError(`configuration: DATABASE_URL: the PostgreSQL ledger cannot be reached (${error.message})`)
    if ((error as { code?: string })?.code === 'SQLITE_NOTADB') throw new UsageError(`configuration: DATABASE_PATH: ${location.databasePath} is not an SQLite database`)
    if (location.databaseUrl !== '') throw new UsageError(`configuration: DATABASE_URL: ${(error as Error)?.message ?? String(error)}`)
    throw error
  }
}
