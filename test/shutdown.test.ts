// Issue 13, item 17: SIGTERM while Alma is slowly answering a payment. The service (a child process) waits for
// the posting in flight, bounded by ALMA_TIMEOUT_MS plus a margin, before the ledger closes, so the outcome is
// recorded; a posting still running past that bound is abandoned visibly and resumed at the next start.

import t from 'tap'
import { SqliteLedger } from '../src/ledger/sqlite/index.ts'
import { Browser, build, checkoutIdFrom, until } from './helper.ts'
import { childSandboxes, serviceProcess } from './support/service-process.ts'

/** Longer than the 10 s the worker used to wait, shorter than ALMA_TIMEOUT_MS. */
const SLOW_PAY_MS = 11_000

t.test('SIGTERM during a slow Alma payment: the service waits for it, records it, and the restart finishes the rest', async t => {
  const sandboxes = await childSandboxes(t, 'alma-cashnet-shutdown-', { ALMA_TIMEOUT_MS: '14000' })
  const { alma, env } = sandboxes
  const service = serviceProcess(t, env)
  await service.start()

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
  const alice = new Browser(sandboxes).login('alice')
  const { fields, action } = await alice.checkout()
  const id = checkoutIdFrom(fields)
  await alice.payOnCashnet(action, fields)
  await until(() => payArrived, 'the first payment to reach Alma')

  t.equal(await service.stop('SIGTERM'), 0, 'a clean exit')
  const log = service.output.join('')
  t.notMatch(log, 'posting.abandoned', 'nothing abandoned: the wait covered the slow answer')
  t.match(log, 'worker.stopping', 'the wait is logged')

  const ledger = new SqliteLedger({ path: env.DATABASE_PATH })
  t.teardown(async () => { await ledger.close() })
  const stopped = await ledger.getCheckout(id)
  const tx = stopped?.tx ?? ''
  t.equal(stopped?.state, 'PAID', 'stopped between two fees')
  t.equal(stopped?.lines.filter(l => l.postedAt !== null).length, 1, 'the payment Alma took during shutdown is recorded as posted')
  t.equal(alma.paymentsFor(tx).length, 1)

  await service.start()
  await until(async () => (await ledger.getCheckout(id))?.state === 'POSTED', 'the restart to finish the posting', 30000)
  t.same(alma.paymentsFor(tx).map(p => `${p.feeId}:${p.amountCents}`).sort(), ['100001:500', '100002:4550', '100003:1225'], 'each fee paid once')
  await service.stop('SIGTERM')
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
