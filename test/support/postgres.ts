// A fresh PostgreSQL database for one test, on the test run's private server (postgres-start.ts): CREATE
// DATABASE with a random name, dropped again when the test ends. Without a server the test is skipped with
// the reason, except under CI=true, where a missing server is a failure (CI must run these).

import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { Test } from 'tap'
import { testPostgres } from './postgres-state.ts'

/** The server's URL with another database name. */
export function withDatabase (url: string, database: string): string {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** The test server's URL, or null after skipping (or failing, under CI) the test with the reason. */
export function postgresServer (t: Test): string | null {
  const state = testPostgres()
  if (state.url !== null) return state.url
  const why = `no PostgreSQL test server: ${state.why ?? 'unknown reason'}`
  if (process.env.CI === 'true') t.fail(`${why} (CI must run the PostgreSQL specifications)`)
  else t.test(why, { skip: why }, () => {})
  return null
}

async function admin (url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

/** Creates an empty database on `server` for this test, dropped at teardown (after the test's own teardowns). */
export async function freshDatabaseOn (t: Test, server: string): Promise<string> {
  const name = `ledger_test_${randomBytes(6).toString('hex')}`
  await admin(server, `CREATE DATABASE ${name}`)
  t.teardown(async () => {
    // WITH (FORCE) ends connections a failed test left open
    await admin(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {})
  })
  return withDatabase(server, name)
}

/** A fresh database on the test run's server, or null when the test was skipped (no server). */
export async function freshDatabase (t: Test): Promise<string | null> {
  const server = postgresServer(t)
  return server === null ? null : await freshDatabaseOn(t, server)
}
