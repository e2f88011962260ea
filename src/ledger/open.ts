// The one place the service opens its ledger: for one campus of a system deployment (SPEC 12) its own store,
// so no row can be read or written across campuses and no query needs a campus filter. SQLite: the file
// config.databasePath, which src/campuses/config.ts has already made `<directory of DATABASE_PATH>/<campus>.sqlite`.
// (A PostgreSQL ledger gives each campus a schema of its own here.) Audit events written through the Ledger
// interface carry the campus in their detail.

import type { Config } from '../config.ts'
import type { Ledger } from './ledger.ts'
import { SqliteLedger } from './sqlite/index.ts'

export function openLedger (config: Pick<Config, 'databasePath'>, campus?: string): Ledger {
  const ledger: Ledger = new SqliteLedger({ path: config.databasePath })
  if (campus === undefined) return ledger
  const audit = ledger.audit.bind(ledger)
  ledger.audit = async (checkoutId, event, detail) => { await audit(checkoutId, event, { ...detail, campus }) }
  return ledger
}
