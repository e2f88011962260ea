// How every job opens the payments ledger: read-only, never created, never migrated. A ledger the job cannot
// read safely is a configuration problem (exit 2), with the one thing to do in the message.

import { LedgerSchemaError } from '../../src/ledger/errors.ts'
import type { Ledger } from '../../src/ledger/ledger.ts'
import { SqliteLedger } from '../../src/ledger/sqlite/index.ts'
import { UsageError } from './cli.ts'

export function openLedgerReadOnly (path: string): Ledger {
  try {
    return new SqliteLedger({ path, readOnly: true })
  } catch (error) {
    if (error instanceof LedgerSchemaError) throw new UsageError(`configuration: DATABASE_PATH: ${error.message}`)
    if ((error as { code?: string })?.code === 'SQLITE_NOTADB') throw new UsageError(`configuration: DATABASE_PATH: ${path} is not an SQLite database`)
    throw error
  }
}
