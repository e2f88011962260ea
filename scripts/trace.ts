// npm run trace -- <tx | checkout id | username> [--json]: a payment's whole story from the shell, read-only.
// Several payments match (a username): each is told. Exit 0 when something matched, 1 when nothing did, 2 on
// a usage problem.

import { parseArgs } from 'node:util'
import { jobDefault } from '../src/config.ts'
import { isTimeZone, processTimeZone } from '../src/jobs/dates.ts'
import { findPayments, traceText } from '../src/jobs/trace.ts'
import { campusArguments, existingFile, UsageError } from './lib/cli.ts'
import { campusOf, openLedgerReadOnly } from './lib/ledger.ts'

const HELP = `Usage: npm run trace -- <tx | checkout id | username | Alma primary id> [--json]

Prints a payment's whole story: its fee lines, CashNet's postbacks, the Alma calls, the audit events in words
and the refunds, as the admin page shows them. Reads the ledger only.

  --json                 the stories as JSON (an array, one element per payment)
  --campus ID            with CAMPUSES_FILE (required then): that campus's ledger (env CAMPUS)
  --database PATH        the ledger (env DATABASE_PATH; default ${jobDefault('export:gl', 'DATABASE_PATH')})
  --timezone ZONE        times in this zone (env TIMEZONE; default the process's zone)

Exit 0: found; 1: nothing matches; 2: usage.
`

async function main (): Promise<number> {
  let parsed
  let env: Record<string, string | undefined>
  try {
    // --campus ID (or CAMPUS) with CAMPUSES_FILE: that campus's ledger and time zone
    const campus = campusArguments(process.argv.slice(2), process.env)
    env = campus.env
    parsed = parseArgs({ args: campus.argv, allowPositionals: true, strict: true, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, database: { type: 'string' }, timezone: { type: 'string' } } })
  } catch (error) {
    process.stderr.write(`trace: ${(error as Error).message.split('\n')[0]}\n${HELP}`)
    return 2
  }
  if (parsed.values.help === true) {
    process.stdout.write(HELP)
    return 0
  }
  if (parsed.positionals.length !== 1) {
    process.stderr.write(`trace: give one tx, checkout id or username\n${HELP}`)
    return 2
  }
  const zone = parsed.values.timezone ?? (env.TIMEZONE !== undefined && env.TIMEZONE !== '' ? env.TIMEZONE : processTimeZone())
  if (!isTimeZone(zone)) {
    process.stderr.write(`trace: "${zone}" is not a time zone (e.g. America/Los_Angeles)\n`)
    return 2
  }
  const databaseUrl = env.DATABASE_URL ?? ''
  let database = ''
  if (databaseUrl === '') {
    try {
      database = existingFile(parsed.values.database ?? (env.DATABASE_PATH !== undefined && env.DATABASE_PATH !== '' ? env.DATABASE_PATH : jobDefault('export:gl', 'DATABASE_PATH')))
    } catch (error) {
      process.stderr.write(`trace: DATABASE_PATH: ${(error as Error).message}\n`)
      return 2
    }
  }
  let ledger
  try {
    ledger = await openLedgerReadOnly({ databasePath: database, databaseUrl, ...campusOf(env) })
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`trace: ${error.message}\n`)
      return 2
    }
    throw error
  }
  try {
    const key = parsed.positionals[0]
    const found = await findPayments(ledger, key)
    if (found.length === 0) {
      process.stderr.write(`trace: no payment matches "${key}" (searched checkout id, CashNet tx, username and Alma primary id)\n`)
      return 1
    }
    if (parsed.values.json === true) {
      process.stdout.write(JSON.stringify(found, null, 2) + '\n')
    } else {
      if (found.length > 1) process.stdout.write(`${found.length} payments match "${key}", oldest first.\n\n`)
      process.stdout.write(found.map(h => traceText(h, zone)).join('\n'))
    }
    return 0
  } finally {
    await ledger.close()
  }
}

process.exitCode = await main()
