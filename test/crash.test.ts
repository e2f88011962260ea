// Crash safety: the service runs as a child process and is killed (SIGKILL) at each dangerous instant, at a
// step signalled by the Alma sandbox; it is restarted on the same ledger, and what Alma recorded is compared
// with what was paid. Also: SIGTERM stops it gracefully in the middle of a posting.

import t, { type Test } from 'tap'
import { SqliteLedger } from '../src/ledger/sqlite/index.ts'
import type { AlmaSandbox } from '../src/sandbox/alma.ts'
import type { CashnetSandbox } from '../src/sandbox/cashnet.ts'
import type { EzproxyStandIn } from '../src/sandbox/ezproxy.ts'
import { Browser, checkoutIdFrom, send, until } from './helper.ts'
import { childSandboxes, serviceProcess } from './support/service-process.ts'

interface Rig {
  alma: AlmaSandbox
  cashnet: CashnetSandbox
  ezproxy: EzproxyStandIn
  ledger: SqliteLedger
  browser: Browser
  start: () => Promise<void>
  kill: (signal?: NodeJS.Signals) => Promise<number | null>
  output: string[]
}

async function rig (t: Test): Promise<Rig> {
  const sandboxes = await childSandboxes(t, 'alma-cashnet-crash-', {
    ALMA_TIMEOUT_MS: '2000',
    POSTING_RETRY_BASE_MS: '50',
    // a killed process keeps its posting's lease until it expires; the restarted one takes it over then
    POSTING_LEASE_SECONDS: '2'
  })
  const ledger = new SqliteLedger({ path: sandboxes.env.DATABASE_PATH })
  t.teardown(async () => { await ledger.close() })
  const service = serviceProcess(t, sandboxes.env)
  await service.start()
  const browser = new Browser(sandboxes).login('alice')
  return { ...sandboxes, ledger, browser, start: service.start, kill: service.stop, output: service.output }
}

async function assertPaidOnce (t: Test, r: Rig, id: string): Promise<void> {
  const checkout = await r.ledger.getCheckout(id)
  t.equal(checkout?.state, 'POSTED')
  t.same(
    r.alma.paymentsFor(checkout?.tx as string).map(p => `${p.feeId}:${p.amountCents}`).sort(),
    (checkout?.lines ?? []).map(l => `${l.feeId}:${l.amount}`).sort(),
    'Alma shows each fee paid exactly once, for its amount'
  )
}

/** The posting worker's first call for a checkout: the fee list read by primary id. */
const isPostingRead = (call: { method: string, path: string, query: Record<string, string> }): boolean =>
  call.method === 'GET' && call.path.endsWith('/fees') && call.query.user_id_type === undefined

t.test('killed before the postback was committed: CashNet retries and it is posted once', async t => {
  const r = await rig(t)
  const { fields, action } = await r.browser.checkout()
  const id = checkoutIdFrom(fields)
  await r.kill()
  r.cashnet.behaviour.returnMode = 'bare'
  const page = await r.browser.request(action, { method: 'POST', body: new URLSearchParams(fields).toString() })
  t.equal(page.status, 200)
  const postback = r.cashnet.resultFields({ id: 'x', finished: false, fields: new Map(fields.map(([k, v]) => [k.toLowerCase(), v])) }, 'pay')
  const lost = await r.cashnet.sendPostback(postback)
  t.equal(lost.status, 0, 'nobody answered: CashNet keeps it for a retry')
  t.equal((await r.ledger.getCheckout(id))?.state, 'CREATED')
  await r.start()
  const retried = await r.cashnet.sendPostback(postback)
  t.equal(retried.status, 200)
  await until(async () => (await r.ledger.getCheckout(id))?.state === 'POSTED', 'posting after the retry')
  await assertPaidOnce(t, r, id)
})

t.test('killed between the commit and the first Alma call: posted on restart', async t => {
  const r = await rig(t)
  const { fields, action } = await r.browser.checkout()
  const id = checkoutIdFrom(fields)
  let armed = true
  r.alma.beforeCall = async (call) => {
    if (armed && isPostingRead(call)) {
      armed = false
      await r.kill()
      return 'drop'
    }
    return undefined
  }
  await r.browser.payOnCashnet(action, fields)
  await until(() => !armed, 'the kill')
  t.equal((await r.ledger.getCheckout(id))?.state, 'PAID', 'the postback was durable before the 200')
  t.same(r.alma.allExternalPayments(), [])
  await r.start()
  await until(async () => (await r.ledger.getCheckout(id))?.state === 'POSTED', 'posting after restart')
  await assertPaidOnce(t, r, id)
})

t.test('killed between two fee payments: the rest is paid on restart, the first not again', async t => {
  const r = await rig(t)
  const { fields, action } = await r.browser.checkout()
  const id = checkoutIdFrom(fields)
  let pays = 0
  let killed = false
  r.alma.beforeCall = async (call) => {
    if (call.method === 'POST' && ++pays === 2 && !killed) {
      killed = true
      await r.kill()
      return 'drop'
    }
    return undefined
  }
  await r.browser.payOnCashnet(action, fields)
  await until(() => killed, 'the kill')
  t.equal(r.alma.allExternalPayments().length, 1, 'one fee paid before the kill')
  await r.start()
  await until(async () => (await r.ledger.getCheckout(id))?.state === 'POSTED', 'posting after restart')
  await assertPaidOnce(t, r, id)
})

t.test('killed after Alma applied a payment but before its answer was recorded: not paid twice', async t => {
  const r = await rig(t)
  const { fields, action } = await r.browser.checkout()
  const id = checkoutIdFrom(fields)
  let killed = false
  r.alma.onPayment = async () => {
    if (killed) return
    killed = true
    await r.kill()
  }
  await r.browser.payOnCashnet(action, fields)
  await until(() => killed, 'the kill')
  const before = await r.ledger.getCheckout(id)
  t.equal(before?.lines.filter(l => l.postedAt !== null).length, 0, 'the ledger never heard the answer')
  t.equal(r.alma.allExternalPayments().length, 1, 'but Alma applied the payment')
  await r.start()
  await until(async () => (await r.ledger.getCheckout(id))?.state === 'POSTED', 'posting after restart')
  await assertPaidOnce(t, r, id)
  const recovered = (await r.ledger.history(id))?.events.filter(e => e.event === 'line.posted' && e.detail.includes('already shows this tx'))
  t.equal(recovered?.length, 1, 'the first line was recovered from Alma\'s record of our tx')
})

t.test('SIGTERM mid-posting: the service stops gracefully and the posting completes after restart', async t => {
  const r = await rig(t)
  const { fields, action } = await r.browser.checkout()
  const id = checkoutIdFrom(fields)
  r.alma.faults.latencyMs = 300
  let stopping: Promise<number | null> | undefined
  r.alma.onPayment = () => {
    stopping ??= r.kill('SIGTERM')
  }
  await r.browser.payOnCashnet(action, fields)
  await until(() => stopping !== undefined, 'the first payment')
  const code = await stopping
  t.equal(code, 0, 'exit code 0 after a graceful stop')
  t.match(r.output.join(''), 'service.stopping')
  r.alma.faults.latencyMs = 0
  await r.start()
  await until(async () => (await r.ledger.getCheckout(id))?.state === 'POSTED', 'posting after restart')
  await assertPaidOnce(t, r, id)
  const health = await send(`${r.ezproxy.url}/healthz`)
  t.equal(health.status, 302, 'the stand-in still asks strangers to sign in')
})
