// Runs once after the test files (tap's `after`): stops the private PostgreSQL server postgres-start.ts began.

import { existsSync, readFileSync, rmSync } from 'node:fs'
import { destroyServer, type PostgresServer } from './postgres-server.ts'
import { STATE_FILE } from './postgres-state.ts'

if (existsSync(STATE_FILE)) {
  const state = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as Partial<PostgresServer> & { started: boolean }
  if (state.started && state.dir !== undefined && state.data !== undefined && state.bin !== undefined) {
    destroyServer({ dir: state.dir, data: state.data, bin: state.bin, asRoot: state.asRoot === true })
  }
  rmSync(STATE_FILE, { force: true })
}
