// A payment asks its guard (is the posting lease still ours?) after its rate-limit slot is granted and before it
// is written. The shared Alma budget counts a call at most ALMA_TIMEOUT_MS and a window from its grant, so the
// time the guard took comes off the call's timeout: a call whose guard was slow cannot be read by Alma after the
// budget stopped counting it. Over HTTP against the Alma sandbox, which answers 600 ms late.

import t from 'tap'
import pino from 'pino'
import { AlmaClient } from '../src/alma/client.ts'
import { AlmaUnavailable } from '../src/alma/errors.ts'
import { cents } from '../src/money.ts'
import { AlmaSandbox } from '../src/sandbox/alma.ts'
import { SANDBOX_API_KEY } from '../src/sandbox/stack.ts'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

t.test('the time a payment\'s guard takes comes off its ALMA_TIMEOUT_MS', async t => {
  const alma = new AlmaSandbox({ apiKey: SANDBOX_API_KEY, faults: { latencyMs: 600 } })
  await alma.start()
  const client = new AlmaClient({ baseUrl: alma.baseUrl, apiKey: SANDBOX_API_KEY, userIdType: 'all_unique', rateLimit: 20, timeoutMs: 1000, logger: pino({ level: 'silent' }) })
  t.teardown(async () => {
    await client.close()
    await alma.close()
  })
  const pay = { userId: 'alice', amount: cents(100), method: 'ONLINE', externalTransactionId: 'T1', comment: 'guard test' }

  // a quick guard leaves the whole second: Alma's 600 ms answer arrives
  const paid = await client.payFee({ ...pay, feeId: '100001' }, undefined, async () => {})
  t.equal(paid.balance, 400, 'paid: a quick guard leaves the call its whole timeout')

  // a guard that took 500 ms leaves 500 ms: the call gives up before Alma's answer, as if it had been granted then
  const started = performance.now()
  const refused = await client.payFee({ ...pay, feeId: '100003', externalTransactionId: 'T2' }, undefined, async () => { await sleep(500) }).then(() => null, (error: unknown) => error)
  const took = performance.now() - started
  t.ok(refused instanceof AlmaUnavailable, 'the call timed out')
  t.match((refused as Error).message, 'TIMEOUT')
  t.ok(took >= 950 && took < 1300, `over about ALMA_TIMEOUT_MS after its grant, guard included (${took.toFixed(0)} ms)`)
})
