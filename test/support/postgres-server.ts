// Starting and stopping a private PostgreSQL server: the test run's own (postgres-start.ts, postgres-stop.ts) and
// one a test owns so that it can stop and restart it (the outage specifications). A temporary data directory,
// a free port, fsync on; as root the server runs as the `postgres` user, as PostgreSQL requires.

import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

export interface PostgresServer {
  url: string
  dir: string
  data: string
  bin: string
  port: number
  asRoot: boolean
}

export function findBinaries (): string | undefined {
  if (process.env.POSTGRES_BIN !== undefined) return process.env.POSTGRES_BIN
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter(v => existsSync(join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a))
  return versions.length > 0 ? join(root, versions[0], 'bin') : undefined
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    })
  })
}

function run (server: Pick<PostgresServer, 'bin' | 'asRoot'>, command: string, args: string[]): void {
  const file = join(server.bin, command)
  if (server.asRoot) execFileSync('runuser', ['-u', 'postgres', '--', file, ...args], { stdio: ['ignore', 'ignore', 'inherit'] })
  else execFileSync(file, args, { stdio: ['ignore', 'ignore', 'inherit'] })
}

/** (Re)starts the server on its data directory and port; resolves when it accepts connections. */
export function startServer (server: PostgresServer): void {
  // fsync stays on: the durability specifications mean something only when commits really reach the disk
  run(server, 'pg_ctl', ['-D', server.data, '-o', `-p ${server.port} -k ${server.dir} -c listen_addresses=127.0.0.1 -c max_connections=300`,
    '-l', join(server.dir, 'server.log'), '-w', 'start'])
}

/** Stops the server: `immediate` is a crash (no checkpoint), `fast` a clean shutdown. */
export function stopServer (server: PostgresServer, mode: 'fast' | 'immediate' = 'fast'): void {
  run(server, 'pg_ctl', ['-D', server.data, '-m', mode, '-w', 'stop'])
}

/** stopServer without blocking this process's event loop (a service under test runs in it). */
export async function stopServerSoon (server: PostgresServer, mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
  const file = join(server.bin, 'pg_ctl')
  const args = ['-D', server.data, '-m', mode, '-w', 'stop']
  if (server.asRoot) await promisify(execFile)('runuser', ['-u', 'postgres', '--', file, ...args])
  else await promisify(execFile)(file, args)
}

/** A new server in a temporary directory, started; undefined when PostgreSQL is not installed. */
export async function newServer (): Promise<PostgresServer | undefined> {
  const bin = findBinaries()
  if (bin === undefined) return undefined
  const asRoot = process.getuid?.() === 0
  const dir = mkdtempSync(join(tmpdir(), 'alma-cashnet-pg-'))
  if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), Number(execFileSync('id', ['-g', 'postgres']).toString().trim()))
  const user = asRoot ? 'postgres' : (process.env.USER ?? 'postgres')
  const server: PostgresServer = { url: '', dir, data: join(dir, 'data'), bin, port: await freePort(), asRoot }
  run(server, 'initdb', ['-D', server.data, '--auth=trust', '-U', user, '--no-sync', '-E', 'UTF8'])
  startServer(server)
  server.url = `postgres://${user}@127.0.0.1:${server.port}/postgres`
  return server
}

/** Stops the server (if running) and removes its directory. */
export function destroyServer (server: Pick<PostgresServer, 'dir' | 'data' | 'bin' | 'asRoot'>): void {
  try {
    run(server, 'pg_ctl', ['-D', server.data, '-m', 'fast', '-w', 'stop'])
  } catch {}
  rmSync(server.dir, { recursive: true, force: true })
}

/**
 * A server this test owns (it may stop and restart it), destroyed when the test ends; undefined when PostgreSQL is
 * not installed: the test is skipped with the reason, or failed under CI=true (CI must run the outage specifications).
 */
export async function ownedServer (t: Test): Promise<PostgresServer | undefined> {
  const server = await newServer()
  if (server === undefined) {
    if (process.env.CI === 'true') t.fail('no PostgreSQL installed (CI must run the outage specification)')
    else t.comment('skipped: no PostgreSQL installed')
    return undefined
  }
  t.teardown(() => { destroyServer(server) })
  return server
}
