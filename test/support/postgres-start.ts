// Runs once before the test files (tap's `before`): a private PostgreSQL server for the ledger specifications
// and the several-instance tests, on a free port in a temporary directory, stopped again by postgres-stop.ts.
// When TEST_DATABASE_URL is already set, that server is used and nothing is started. When no PostgreSQL is
// installed, nothing is started and the PostgreSQL tests say so (and fail under CI, which must install it).

import { mkdirSync, writeFileSync } from 'node:fs'
import { newServer } from './postgres-server.ts'
import { STATE_FILE } from './postgres-state.ts'

mkdirSync('test-output', { recursive: true })
if (process.env.TEST_DATABASE_URL !== undefined && process.env.TEST_DATABASE_URL !== '') {
  writeFileSync(STATE_FILE, JSON.stringify({ url: process.env.TEST_DATABASE_URL, started: false }))
  process.exit(0)
}
const server = await newServer()
if (server === undefined) {
  writeFileSync(STATE_FILE, JSON.stringify({ url: null, started: false, why: 'no PostgreSQL binaries under /usr/lib/postgresql (apt-get install -y postgresql)' }))
  process.exit(0)
}
writeFileSync(STATE_FILE, JSON.stringify({ ...server, started: true }))
