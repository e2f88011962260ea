// npm run migrate: creates or upgrades the schema of the configured ledger (PostgreSQL at DATABASE_URL, else the
// SQLite file at DATABASE_PATH); `--from FILE.sqlite` also copies a single-instance SQLite ledger into an empty
// PostgreSQL one, keeping every id, and checks the copy before committing it (SPEC 11). `npm start` migrates too,
// under the same lock, so this is for doing it ahead of a deployment, or for the move to PostgreSQL.

import { existsSync } from 'node:fs'
import { loadJobConfig } from '../src/config.ts'
import { LedgerSchemaError, LedgerUnavailable } from '../src/ledger/errors.ts'
import { copyFromSqlite } from '../src/ledger/postgres/copy-from-sqlite.ts'
import { campusSchema } from '../src/ledger/open.ts'
import { PostgresLedger, redactUrl, SCHEMA_VERSION as PG_SCHEMA_VERSION } from '../src/ledger/postgres/index.ts'
import { SCHEMA_VERSION as SQLITE_SCHEMA_VERSION, SqliteLedger } from '../src/ledger/sqlite/index.ts'
import { type CommandSpec, existingFile, runCommand, UsageError } from './lib/cli.ts'

const spec: CommandSpec = {
  name: 'migrate',
  summary: 'Creates or upgrades the payments ledger\'s schema: PostgreSQL when DATABASE_URL is set, else the SQLite file at DATABASE_PATH.\n' +
    'With --from, copies an SQLite ledger into an EMPTY PostgreSQL one (every id, state, line, postback, Alma call, audit event and\n' +
    'refund), resets the id sequences and compares counts and money totals before committing. Stop the service first.',
  options: [
    { name: 'from', env: 'MIGRATE_FROM', description: 'an SQLite ledger to copy into the PostgreSQL ledger at DATABASE_URL', parse: existingFile }
  ],
  epilog: 'Examples:\n  DATABASE_URL=postgres://payments@db.example.edu/payments npm run migrate\n' +
    '  DATABASE_URL=postgres://payments@db.example.edu/payments npm run migrate -- --from data/payments.sqlite'
}

await runCommand(spec, async (o, env) => {
  // with CAMPUSES_FILE, --campus ID: that campus's SQLite file or PostgreSQL schema (src/ledger/open.ts)
  const config = loadJobConfig('migrate', env)
  if (config.databaseUrl === '') {
    if (o.from !== '') throw new UsageError('--from copies into PostgreSQL: set DATABASE_URL to the (empty) PostgreSQL database')
    const existed = existsSync(config.databasePath)
    const ledger = new SqliteLedger({ path: config.databasePath })
    await ledger.close()
    process.stdout.write(`${config.databasePath}: ${existed ? 'SQLite ledger' : 'new SQLite ledger'} at schema version ${SQLITE_SCHEMA_VERSION}\n`)
    return
  }
  const schema = config.campus === undefined ? undefined : campusSchema(config.campus)
  const where = `${redactUrl(config.databaseUrl)}${schema === undefined ? '' : ` (schema ${schema})`}`
  let ledger: PostgresLedger
  try {
    ledger = await PostgresLedger.open({ url: config.databaseUrl, schema })
  } catch (error) {
    if (error instanceof LedgerUnavailable) throw new UsageError(`configuration: DATABASE_URL: the PostgreSQL ledger at ${where} cannot be reached (${error.message})`)
    throw error
  }
  try {
    process.stdout.write(`${where}: PostgreSQL ledger at schema version ${PG_SCHEMA_VERSION}\n`)
    if (o.from === '') return
    let report
    try {
      report = await copyFromSqlite(o.from, ledger.pool)
    } catch (error) {
      if (error instanceof LedgerSchemaError) throw new UsageError(error.message)
      throw error
    }
    for (const [table, rows] of Object.entries(report.rows)) process.stdout.write(`  ${table}: ${rows} row(s) copied\n`)
    process.stdout.write(`copied ${o.from} into ${where}; ${Object.keys(report.checks).length} counts and totals match the source\n`)
  } finally {
    await ledger.close()
  }
})
