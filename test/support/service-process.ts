// The service as a real child process, for the specifications that kill, pause or signal it (crash safety,
// graceful shutdown, several instances, receipts after a SIGKILL), and `npm run demo` as a newcomer runs it.

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { AlmaSandbox } from '../../src/sandbox/alma.ts'
import { CashnetSandbox } from '../../src/sandbox/cashnet.ts'
import { EzproxyStandIn } from '../../src/sandbox/ezproxy.ts'
import { seedUsers } from '../../src/sandbox/seed.ts'
import { SANDBOX_API_KEY, SANDBOX_COOKIE_SECRET } from '../../src/sandbox/stack.ts'
import { CASHNET_PEER, freePort, until } from '../helper.ts'
import { npmScriptArgs, tsNodeArgs } from './ts-child.ts'

/** A fresh folder under the system's temporary one, removed when the test ends. */
export function tempDir (t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

/** Spawns a command with stdout and stderr appended to `output`, chunk by chunk. */
function spawnCollecting (command: string, args: string[], env: NodeJS.ProcessEnv, output: string[], detached = false): ChildProcess {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached })
  child.stdout?.on('data', (chunk) => { output.push(String(chunk)) })
  child.stderr?.on('data', (chunk) => { output.push(String(chunk)) })
  return child
}

/** The environment that points a service process at the sandboxes: everything but the ledger and the timings. */
export function serviceEnv (to: { port: number, publicUrl: string, alma: AlmaSandbox, cashnet: CashnetSandbox }): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PORT: String(to.port),
    PUBLIC_URL: to.publicUrl,
    ALMA_API_URL: to.alma.baseUrl,
    ALMA_API_KEY: SANDBOX_API_KEY,
    CASHNET_CHECKOUT_URL: to.cashnet.checkoutUrl,
    CASHNET_ITEM_CODE: 'LIB-FINE',
    CASHNET_POSTBACK_ALLOW: CASHNET_PEER,
    EZPROXY_ALLOW: '127.0.0.1',
    COOKIE_SECRET: SANDBOX_COOKIE_SECRET,
    LOG_LEVEL: 'info'
  }
}

export interface ServiceProcess {
  /** everything the process wrote to stdout and stderr, chunk by chunk, across restarts */
  readonly output: string[]
  /** the process started last (running or not); undefined before the first start */
  readonly child: ChildProcess | undefined
  /** Spawns `node src/server.ts` (with the TypeScript loader this process runs under: test/support/ts-child.ts) and waits for its service.started log line. */
  start: () => Promise<void>
  /** Sends the signal (SIGKILL unless told) and waits for the exit: its code, null when a signal ended it. Not running: nothing sent, the last exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/**
 * The service as a child process with the given environment, not yet started; it can be stopped and started
 * again on the same environment. Stopped with SIGKILL at the test's end, before whatever was set up for the
 * test earlier (t.teardown runs last registered first): create it after the sandboxes and the ledger it uses.
 */
export function serviceProcess (t: Test, env: NodeJS.ProcessEnv, options: { name?: string } = {}): ServiceProcess {
  const output: string[] = []
  let child: ChildProcess | undefined
  const stop = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> => {
    const running = child
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return running?.exitCode ?? null
    const exited = new Promise<number | null>(resolve => running.once('exit', (code) => { resolve(code) }))
    running.kill(signal)
    return await exited
  }
  t.teardown(async () => { await stop() })
  return {
    output,
    get child () { return child },
    start: async () => {
      const from = output.length
      const started = spawnCollecting(process.execPath, [...tsNodeArgs(), 'src/server.ts'], env, output)
      child = started
      const name = options.name ?? 'the service'
      const said = (): string => output.slice(from).join('')
      try {
        await until(() => {
          if (said().includes('service.started')) return true
          // exited before it started: say so now, with what it wrote, instead of waiting out the limit
          if (started.exitCode !== null || started.signalCode !== null) throw new Error(`${name} exited (${started.exitCode ?? started.signalCode}) before it started`)
          return false
        }, `${name} to start`, 60000)
      } catch (error) {
        throw new Error(`${(error as Error).message}; it wrote:\n${said().slice(-4000)}`)
      }
    },
    stop
  }
}

export interface ChildSandboxes {
  /** a fresh folder, removed at the end; the ledger is payments.sqlite in it */
  dir: string
  alma: AlmaSandbox
  /** posts its postbacks to the service's port, from CASHNET_PEER */
  cashnet: CashnetSandbox
  /** in front of the service's port, with the seeded patrons */
  ezproxy: EzproxyStandIn
  publicUrl: string
  /** serviceEnv for these sandboxes, DATABASE_PATH in `dir`, then `extra` */
  env: NodeJS.ProcessEnv & { DATABASE_PATH: string }
}

/** Alma, CashNet and EZproxy sandboxes for one service process on a free port, closed (and `dir` removed) at the test's end. */
export async function childSandboxes (t: Test, prefix: string, extra: Record<string, string>): Promise<ChildSandboxes> {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const port = await freePort()
  const serviceUrl = `http://127.0.0.1:${port}`
  const alma = new AlmaSandbox({ apiKey: SANDBOX_API_KEY })
  await alma.start()
  const cashnet = new CashnetSandbox({ store: 'LIBFINESTEST', postbackUrl: `${serviceUrl}/cashnet/postback`, postbackFrom: CASHNET_PEER })
  await cashnet.start()
  const ezproxy = new EzproxyStandIn({ target: serviceUrl, users: seedUsers() })
  const publicUrl = await ezproxy.start()
  t.teardown(async () => {
    rmSync(dir, { recursive: true, force: true })
    await ezproxy.close()
    await cashnet.close()
    await alma.close()
  })
  const env = { ...serviceEnv({ port, publicUrl, alma, cashnet }), DATABASE_PATH: join(dir, 'payments.sqlite'), ...extra }
  return { dir, alma, cashnet, ezproxy, publicUrl, env }
}

/** The environment `npm run demo` gets: this process's without the demo's choices (so `{}` is the plain demo), then `env`. */
export function demoEnv (env: Record<string, string>): NodeJS.ProcessEnv {
  const { DEMO_AUTH_MODE: _mode, DEMO_PROVIDER: _provider, DEMO_CAMPUSES: _campuses, ...inherited } = process.env
  return { ...inherited, ...env }
}

/**
 * `npm run demo` (package.json's command, with the test's TypeScript loader: npmScriptArgs) on a free port
 * (DEMO_PORT, and the next one for a second campus) with its database in a fresh folder (DEMO_DATABASE_PATH),
 * started once it says "demo is running"; its whole process group gets SIGTERM at the test's end. `env` holds
 * the demo's choices; none are inherited.
 */
export async function runDemo (t: Test, prefix: string, env: Record<string, string>): Promise<{ port: number, dir: string, output: () => string }> {
  let port = await freePort()
  for (let i = 0; i < 20 && !await portFree(port + 1); i++) port = await freePort()
  const dir = tempDir(t, prefix)
  const output: string[] = []
  const demo = spawnCollecting(process.execPath, npmScriptArgs('demo'), demoEnv({ DEMO_PORT: String(port), DEMO_DATABASE_PATH: join(dir, 'demo.sqlite'), ...env }), output, true)
  t.teardown(() => {
    try { process.kill(-(demo.pid as number), 'SIGTERM') } catch {}
  })
  await until(() => output.join('').includes('demo is running'), 'the demo to start', 60000)
  return { port, dir, output: () => output.join('') }
}

async function portFree (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const server = createServer()
    server.once('error', () => { resolve(false) })
    server.listen(port, '127.0.0.1', () => { server.close(() => { resolve(true) }) })
  })
}
