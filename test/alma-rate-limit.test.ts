// The Alma rate limit, judged where it matters: at Alma. Three processes, as in production: the service
// (src/server.ts), the Alma sandbox (which stamps each call when it arrives and refuses with 429 whatever
// exceeds its threshold in any second), and this test as the crowd. 500 patrons open their fines page at the
// same instant: the service must spend ALMA_RATE_LIMIT calls a second at Alma and not one more, and every
// patron must get their page.

import { type ChildProcess, fork, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { createRateLimiter } from '../src/alma/rate-limit.ts'
import type { CallStats } from '../src/sandbox/alma-process.ts'
import type { SeedUser } from '../src/sandbox/seed.ts'
import { SANDBOX_API_KEY, SANDBOX_COOKIE_SECRET } from '../src/sandbox/stack.ts'
import { freePort, send } from './helper.ts'

interface AlmaProcess {
  baseUrl: string
  call: (command: string, args?: unknown) => Promise<any>
}

/** The Alma sandbox in a child process, driven over IPC (src/sandbox/alma-process.ts). */
async function almaProcess (t: Test): Promise<AlmaProcess> {
  const child: ChildProcess = fork(new URL('../src/sandbox/alma-process.ts', import.meta.url).pathname, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  t.teardown(() => { child.disconnect() })
  let nextId = 1
  const waiting = new Map<number, (message: { result?: unknown, error?: string }) => void>()
  const url = await new Promise<string>((resolve, reject) => {
    child.on('message', (message: any) => {
      if (message.ready !== undefined) { resolve(message.ready); return }
      waiting.get(message.id)?.(message)
      waiting.delete(message.id)
    })
    child.once('exit', (code) => { reject(new Error(`the Alma sandbox process exited with ${code}`)) })
  })
  const call = async (command: string, args?: unknown): Promise<any> => await new Promise((resolve, reject) => {
    const id = nextId++
    waiting.set(id, (message) => { if (message.error !== undefined) reject(new Error(message.error)); else resolve(message.result) })
    child.send({ id, command, args })
  })
  return { baseUrl: `${url}/almaws/v1`, call }
}

/** The service as `npm start` runs it, in its own process; its log lines are kept. */
async function serviceProcess (t: Test, env: Record<string, string>): Promise<{ url: string, logLines: () => Array<Record<string, any>> }> {
  const dir = mkdtempSync(join(tmpdir(), 'alma-cashnet-rate-'))
  const port = await freePort()
  const output: string[] = []
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      ...process.env,
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      ALMA_API_KEY: SANDBOX_API_KEY,
      CASHNET_CHECKOUT_URL: 'http://127.0.0.1:9/cashnet',
      CASHNET_ITEM_CODE: 'LIB-FINE',
      CASHNET_POSTBACK_ALLOW: '127.0.0.4',
      EZPROXY_ALLOW: '127.0.0.1',
      COOKIE_SECRET: SANDBOX_COOKIE_SECRET,
      DATABASE_PATH: join(dir, 'payments.sqlite'),
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stdout.on('data', (chunk) => { output.push(String(chunk)) })
  child.stderr.on('data', (chunk) => { output.push(String(chunk)) })
  t.teardown(async () => {
    if (child.exitCode === null) {
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })
  let ready = false
  const url = `http://127.0.0.1:${port}`
  while (!ready) {
    if (child.exitCode !== null) throw new Error(`the service exited: ${output.join('')}`)
    ready = await send(`${url}/healthz`).then(answer => answer.status === 200, () => false)
    if (!ready) await new Promise(resolve => setTimeout(resolve, 100))
  }
  const logLines = (): Array<Record<string, any>> => output.join('').split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l))
  return { url, logLines }
}

function crowd (size: number): SeedUser[] {
  return Array.from({ length: size }, (_, i) => ({
    primaryId: `crowd${i}`,
    firstName: 'Crowd',
    lastName: String(i),
    email: '',
    userGroup: 'UG',
    identifiers: [],
    blocks: [],
    story: '',
    fees: [{ id: `8${String(i).padStart(5, '0')}`, type: 'OVERDUEFINE', typeDesc: 'Overdue fine', balance: '1.25', owner: 'MAIN', ownerDesc: 'Main Library', title: 'Book', barcode: '1', created: '2026-10-01T00:00:00Z' }]
  }))
}

t.test('500 patrons at the same instant with ALMA_RATE_LIMIT 20: Alma never receives more than 20 calls in a second, every page is served', async t => {
  const alma = await almaProcess(t)
  const patrons = 500
  await alma.call('addUsers', crowd(patrons))
  // Alma's own threshold at the configured limit: one call too many in any second is a 429, and a patron's error page.
  await alma.call('faults', { perSecondThreshold: 20 })
  const service = await serviceProcess(t, { ALMA_API_URL: alma.baseUrl, ALMA_RATE_LIMIT: '20', PATRON_RATE_LIMIT: '1000', LOG_LEVEL: 'warn' })
  await alma.call('resetCalls')

  const answers = await Promise.all(Array.from({ length: patrons }, async (_, i) =>
    await send(`${service.url}/`, { from: '127.0.0.1', headers: { 'x-ezproxy-user': `crowd${i}` } })))

  const stats: CallStats = await alma.call('stats')
  t.equal(stats.calls, 2 * patrons, 'two Alma calls a page, none repeated')
  t.ok(stats.maxInAnySecond <= 20, `at most 20 calls reached Alma within any one second (saw ${stats.maxInAnySecond})`)
  t.same(stats.byStatus, { 200: 2 * patrons }, 'Alma never had to refuse a call (no 429)')
  t.equal(answers.filter(a => a.status === 200).length, patrons, 'every patron got their fines page')
  t.equal(service.logLines().filter(l => l.event === 'alma.unavailable').length, 0, 'no patron was told the library system is unavailable')
})

t.test('a slot counts from when its request is written, and holds the budget until then', async t => {
  const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
  const limit = createRateLimiter(2, 300)
  const first = await limit()
  const second = await limit()
  let third = false
  const pending = limit().then(slot => { third = true; return slot })
  await sleep(400)
  t.notOk(third, 'two slots granted, their requests not yet written: the third waits, longer than a window')
  first.sent()
  second.sent()
  await sleep(100)
  t.notOk(third, 'written now: the window starts now, not when the slots were granted')
  await sleep(400)
  t.ok(third, 'a window after they were written, the third is granted')
  ;(await pending).sent()
  const fourth = await limit()
  fourth.sent()
  fourth.sent()
  const fifth = await Promise.race([limit().then(() => 'granted'), sleep(100).then(() => 'waiting')])
  t.equal(fifth, 'waiting', 'the third and fourth fill the window: sent() twice counts once and frees nothing')
})
