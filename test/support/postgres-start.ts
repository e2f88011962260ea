// Runs once before the test files (tap's `before`): a private PostgreSQL server for the ledger specifications
// and the several-instance tests, on a free port in a temporary directory, stopped again by postgres-stop.ts.
// When TEST_DATABASE_URL is already set, that server is used and nothing is started. When no PostgreSQL is
// installed, nothing is started and the PostgreSQL tests say so (and fail under CI, which must install it).

import { execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { STATE_FILE } from './postgres-state.ts'

function findBinaries (): string | undefined {
  if (process.env.POSTGRES_BIN !== undefined) return process.env.POSTGRES_BIN
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter(v => existsSync(join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a))
  return versions.length > 0 ? join(root, versions[0], 'bin') : undefined
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    })
  })
}

mkdirSync('test-output', { recursive: true })
if (process.env.TEST_DATABASE_URL !== undefined && process.env.TEST_DATABASE_URL !== '') {
  writeFileSync(STATE_FILE, JSON.stringify({ url: process.env.TEST_DATABASE_URL, started: false }))
  process.exit(0)
}
const bin = findBinaries()
if (bin === undefined) {
  writeFileSync(STATE_FILE, JSON.stringify({ url: null, started: false, why: 'no PostgreSQL binaries under /usr/lib/postgresql (apt-get install -y postgresql)' }))
  process.exit(0)
}

// PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user in a directory it owns.
const asRoot = process.getuid?.() === 0
const dir = mkdtempSync(join(tmpdir(), 'alma-cashnet-pg-'))
const data = join(dir, 'data')
const run = (command: string, args: string[]): void => {
  const file = join(bin, command)
  if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', file, ...args], { stdio: ['ignore', 'ignore', 'inherit'] })
  else execFileSync(file, args, { stdio: ['ignore', 'ignore', 'inherit'] })
}
if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), Number(execFileSync('id', ['-g', 'postgres']).toString().trim()))
const user = asRoot ? 'postgres' : (process.env.USER ?? 'postgres')
run('initdb', ['-D', data, '--auth=trust', '-U', user, '--no-sync', '-E', 'UTF8'])
const port = await freePort()
// fsync stays on: the durability specifications mean something only when commits really reach the disk
run('pg_ctl', ['-D', data, '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=300`, '-l', join(dir, 'server.log'), '-w', 'start'])
writeFileSync(STATE_FILE, JSON.stringify({ url: `postgres://${user}@127.0.0.1:${port}/postgres`, started: true, dir, data, bin, asRoot }))
