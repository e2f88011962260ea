// Runs once after the test files (tap's `after`): stops the private PostgreSQL server postgres-start.ts began.

import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { STATE_FILE } from './postgres-state.ts'

if (existsSync(STATE_FILE)) {
  const state = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as { started: boolean, dir?: string, data?: string, bin?: string, asRoot?: boolean }
  if (state.started && state.dir !== undefined && state.data !== undefined && state.bin !== undefined) {
    const args = ['-D', state.data, '-m', 'fast', '-w', 'stop']
    try {
      if (state.asRoot === true) execFileSync('runuser', ['-u', 'postgres', '--', join(state.bin, 'pg_ctl'), ...args], { stdio: 'ignore' })
      else execFileSync(join(state.bin, 'pg_ctl'), args, { stdio: 'ignore' })
    } catch {}
    rmSync(state.dir, { recursive: true, force: true })
  }
  rmSync(STATE_FILE, { force: true })
}
