// Where the test run's private PostgreSQL server is written down (postgres-start.ts) and read (the tests).

import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'

export const STATE_FILE = resolve('test-output', 'postgres.json')

export interface PostgresState { url: string | null, why?: string }

/** The test server's URL, or why there is none. */
export function testPostgres (): PostgresState {
  if (process.env.TEST_DATABASE_URL !== undefined && process.env.TEST_DATABASE_URL !== '') return { url: process.env.TEST_DATABASE_URL }
  if (!existsSync(STATE_FILE)) return { url: null, why: 'the PostgreSQL test server was not started (tap runs test/support/postgres-start.ts before the tests)' }
  return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as PostgresState
}
