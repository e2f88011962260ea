// Issue 19: `npm run trace` finds a payment by each of its keys (checkout id, CashNet tx, username, Alma
// primary id, a double charge's second tx), tells its story in words with times in TIMEZONE, --json parses,
// and nothing found is exit 1. Run as the admin would, as a child process on a real SQLite ledger.

import { join } from 'node:path'
import t from 'tap'
import { SqliteLedger } from '../../src/ledger/sqlite/index.ts'
import { type Cents, cents } from '../../src/money.ts'
import { runScript, tempDir } from './cli.ts'

async function fill (path: string): Promise<void> {
  let clock = new Date('2026-10-06T06:30:00Z')
  const ledger = new SqliteLedger({ path, now: () => clock })
  const create = async (id: string, user: string, amounts: number[]): Promise<void> => {
    await ledger.createCheckout({
      id,
      userId: user,
      primaryId: `P-${user}`,
      patronName: `${user} Able`,
      email: '',
      currency: 'USD',
      lines: amounts.map((amount, i) => ({ lineNo: i + 1, feeId: `${id}-fee${i + 1}`, feeType: 'OVERDUEFINE', feeTypeDesc: 'Overdue fine', owner: 'MAIN', ownerDesc: 'Main', title: 'Book', itemCode: 'LIB-FINE', amount: amount as Cents }))
    })
  }
  const paid = (tx: string) => () => ({ outcome: 'PAID' as const, reason: 'ok', to: 'PAID' as const, payment: { tx, batchno: 'B7', effdate: '2026-10-05', pmtcode: 'VISA' } })
  await create('chk-alice-1', 'alice', [500])
  await ledger.recordPostback({ checkoutId: 'chk-alice-1', peer: '127.0.0.4', result: '0', tx: '7001', rawBody: 'result=0&tx=7001', items: [{ itemCode: 'LIB-FINE', amount: cents(500), qty: 1 }] }, paid('7001'))
  await ledger.recordAlmaCall({ checkoutId: 'chk-alice-1', at: clock.toISOString(), method: 'POST', path: 'users/P-alice/fees/chk-alice-1-fee1', status: 200, errorCode: '', errorMessage: '', trackingId: '', durationMs: 42 })
  await ledger.markLinePosted('chk-alice-1', 1, cents(500), { feeId: 'chk-alice-1-fee1' })
  await ledger.transition({ checkoutId: 'chk-alice-1', from: ['PAID'], to: 'POSTED', event: 'payment.posted' })
  // charged twice; the second charge refunded
  await ledger.recordPostback({ checkoutId: 'chk-alice-1', peer: '127.0.0.4', result: '0', tx: '7009', rawBody: 'result=0&tx=7009', items: [{ itemCode: 'LIB-FINE', amount: cents(500), qty: 1 }] },
    () => ({ outcome: 'DOUBLE_CHARGE', reason: 'second CashNet transaction 7009', to: 'NEEDS_ATTENTION', attentionKind: 'DOUBLE_CHARGE' }))
  clock = new Date('2026-10-06T18:00:00Z')
  await ledger.recordRefund({ checkoutId: 'chk-alice-1', tx: '7009', amount: cents(500), reference: 'RF-77', note: 'second charge refunded', by: 'staff' }, { refuse: () => null, effect: () => 'restore' })
  await create('chk-alice-2', 'alice', [250])
  await create('chk-bob-1', 'bob', [100])
  await ledger.close()
}

t.test('npm run trace finds a payment by each of its keys, in words, in the library\'s zone', async t => {
  const dir = tempDir(t)
  const database = join(dir, 'ledger.sqlite')
  await fill(database)
  const trace = async (...args: string[]): Promise<Awaited<ReturnType<typeof runScript>>> => await runScript('trace.ts', args, { DATABASE_PATH: database, TIMEZONE: 'America/Los_Angeles' })

  for (const key of ['chk-alice-1', '7001', '7009', 'P-alice']) {
    const run = await trace(key)
    t.equal(run.code, 0, `${key}: found (${run.stderr})`)
    t.match(run.stdout, 'Checkout chk-alice-1: POSTED', `${key}: the payment`)
  }
  const story = (await trace('7001')).stdout
  t.match(story, 'CashNet tx 7001', 'its tx')
  t.match(story, 'payment recorded in Alma: 5.00 for Overdue fine', 'events in words')
  t.match(story, '[line.posted]', 'with the raw event name')
  t.match(story, '2026-10-05 23:30:00 PDT', 'times in TIMEZONE, the zone shown')
  t.match(story, /Postbacks \(2\):[\s\S]*PAID {2}tx 7001[\s\S]*DOUBLE_CHARGE {2}tx 7009/, 'both postbacks')
  t.match(story, /Alma calls \(1\):\n.*POST users\/P-alice\/fees\/chk-alice-1-fee1 {2}200/, 'the Alma call')
  t.match(story, /Refunds \(1\):\n.*\$5\.00 of tx 7009, CashNet refund RF-77, by staff: second charge refunded/, 'the refund')
  t.match(story, 'refund recorded by staff: 5.00 of CashNet tx 7009')

  const byUser = await trace('alice')
  t.equal(byUser.code, 0)
  t.match(byUser.stdout, '2 payments match "alice"', 'a username lists each payment')
  t.match(byUser.stdout, /Checkout chk-alice-1[\s\S]*Checkout chk-alice-2/)
  t.notMatch(byUser.stdout, 'chk-bob-1')

  const json = await trace('alice', '--json')
  t.equal(json.code, 0)
  const parsed = JSON.parse(json.stdout)
  t.same(parsed.map((h: any) => h.checkout.id), ['chk-alice-1', 'chk-alice-2'], '--json parses: one story per payment')
  t.same(parsed[0].refunds.map((r: any) => r.reference), ['RF-77'])
  t.ok(parsed[0].events.some((e: any) => e.event === 'line.posted'))

  const none = await trace('7777')
  t.equal(none.code, 1, 'nothing matches: exit 1')
  t.match(none.stderr, 'no payment matches "7777"')
  t.equal(none.stdout, '')
  t.equal((await trace('Able')).code, 1, 'part of a name is not a key')
  t.equal((await trace()).code, 2, 'no key: usage')
  t.equal((await runScript('trace.ts', ['7001'], { DATABASE_PATH: join(dir, 'missing.sqlite') })).code, 2, 'no ledger: usage')
})
