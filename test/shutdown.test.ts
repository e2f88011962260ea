// Issue 13, item 17: SIGTERM while Alma is slowly answering a payment. The service (a child process) waits for
// the posting in flight, bounded by ALMA_TIMEOUT_MS plus a margin, before the ledger closes, so the outcome is
// recorded; a posting still running past that bound is abandoned visibly and resumed at the next start.

import t from 'tap'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteLedger } from '../src/ledger/sqlite/index.ts'
import { AlmaSandbox } from '../src/sandbox/alma.ts'
import { CashnetSandbox } from '../src/sandbox/cashnet.ts'
import { EzproxyStandIn } from '../src/sandbox/ezproxy.ts'
import { seedUsers } from '../src/sandbox/seed.ts'
import { SANDBOX_API_KEY, SANDBOX_COOKIE_SECRET, type Stack } from '../src/sandbox/stack.ts'
import { Browser, build, CASHNET_PEER, checkoutIdFrom, freePort, until } from './helper.ts'

/** Longer than the 10 s the worker used to wait, shorter than ALMA_TIMEOUT_MS. */
const SLOW_PAY_MS = 11_000

t.test('SIGTERM during a slow Alma payment: the service waits for it, records it, and the restart finishes the rest', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'alma-cashnet-shutdown-'))
  const port = await freePort()
  const serviceUrl = `http://127.0.0.1:${port}`
  const alma = new AlmaSandbox({ apiKey: SANDBOX_API_KEY })
  await alma.start()
  const cashnet = new CashnetSandbox({ store: 'LIBFINESTEST', postbackUrl: `${serviceUrl}/cashnet/postback`, postbackFrom: CASHNET_PEER })
  await cashnet.start()
  const ezproxy = new EzproxyStandIn({ target: serviceUrl, users: seedUsers() })
  const publicUrl = await ezproxy.start()
  const env = {
    ...process.env,
    PORT: String(port),
    PUBLIC_URL: publicUrl,
    ALMA_API_URL: alma.baseUrl,
    ALMA_API_KEY: SANDBOX_API_KEY,
    ALMA_TIMEOUT_MS: '14000',
    CASHNET_CHECKOUT_URL: cashnet.checkoutUrl,
    CASHNET_ITEM_CODE: 'LIB-FINE',
    CASHNET_POSTBACK_ALLOW: CASHNET_PEER,
    EZPROXY_ALLOW: '127.0.0.1',
    COOKIE_SECRET: SANDBOX_COOKIE_SECRET,
    DATABASE_PATH: join(dir, 'payments.sqlite'),
    LOG_LEVEL: 'info'
  }
  const output: string[] = []
  let child: ChildProcess | undefined
  const startService = async (): Promise<void> => {
    const from = output.length
    child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout?.on('data', (chunk) => { output.push(String(chunk)) })
    child.stderr?.on('data', (chunk) => { output.push(String(chunk)) })
    await until(() => output.slice(from).join('').includes('service.started'), 'the service to start', 60000)
  }
  t.teardown(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
    await ezproxy.close()
    await cashnet.close()
    await alma.close()
  })
  await startService()

  let payArrived = false
  let slow = true
  alma.beforeCall = async (call) => {
    if (call.method === 'POST' && slow) {
      slow = false
      payArrived = true
      await new Promise(resolve => setTimeout(resolve, SLOW_PAY_MS))
    }
    return undefined
  }
  const alice = new Browser({ ezproxy, publicUrl } as unknown as Stack).login('alice')
  const { fields, action } = await alice.checkout()
  const id = checkoutIdFrom(fields)
  await alice.payOnCashnet(action, fields)
  await until(() => payArrived, 'the first payment to reach Alma')

  const running = child as ChildProcess
  const exited = new Promise<number | null>(resolve => running.once('exit', (code) => { resolve(code) }))
  running.kill('SIGTERM')
  const code = await exited
  t.equal(code, 0, 'a clean exit')
  const log = output.join('')
  t.notMatch(log, 'posting.abandoned', 'nothing abandoned: the wait covered the slow answer')
  t.match(log, 'worker.stopping', 'the wait is logged')

  const ledger = new SqliteLedger({ path: env.DATABASE_PATH })
  t.teardown(async () => { await ledger.close() })
  const stopped = await ledger.getCheckout(id)
  const tx = stopped?.tx ?? ''
  t.equal(stopped?.state, 'PAID', 'stopped between two fees')
  t.equal(stopped?.lines.filter(l => l.postedAt !== null).length, 1, 'the payment Alma took during shutdown is recorded as posted')
  t.equal(alma.paymentsFor(tx).length, 1)

  await startService()
  await until(async () => (await ledger.getCheckout(id))?.state === 'POSTED', 'the restart to finish the posting', 30000)
  t.same(alma.paymentsFor(tx).map(p => `${p.feeId}:${p.amountCents}`).sort(), ['100001:500', '100002:4550', '100003:1225'], 'each fee paid once')
  const done = new Promise<number | null>(resolve => (child as ChildProcess).once('exit', (c) => { resolve(c) }))
  ;(child as ChildProcess).kill('SIGTERM')
  await done
})

t.test('a posting still running when the wait runs out is abandoned visibly and stays PAID', async t => {
  const stack = await build(t)
  let release: () => void = () => {}
  let held = false
  stack.alma.beforeCall = async (call) => {
    if (call.method === 'POST' && !held) {
      held = true
      await new Promise<void>(resolve => { release = resolve })
    }
    return undefined
  }
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout()
  const id = checkoutIdFrom(fields)
  await alice.payOnCashnet(action, fields)
  await until(() => held, 'the payment to be held')
  const abandoned = await stack.app.worker.stop(100)
  t.same(abandoned, [id])
  const line = stack.logLines().find(l => l.event === 'posting.abandoned')
  t.match(line, { checkout: id, level: 50 }, 'an operator error line names the checkout')
  t.match(line?.msg, 'stays PAID and is resumed at the next start')
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'PAID')
  release()
})
