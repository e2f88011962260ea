// The SQLite ledger against the ledger's contract (ledger-spec.ts), on a real file, then what is SQLite's own:
// postbacks arriving together share one durable commit, each answered only after it; closing commits what
// is waiting; another process's lock is LedgerUnavailable (503), not a driver error; jobs read only.

import Database from 'better-sqlite3'
import { join } from 'node:path'
import t from 'tap'
import { LedgerUnavailable } from '../../src/ledger/errors.ts'
import type { IncomingPostback, NewCheckout } from '../../src/ledger/types.ts'
import { BUSY_TIMEOUT_MS, SqliteLedger } from '../../src/ledger/sqlite/index.ts'
import type { Cents } from '../../src/money.ts'
import { tempDir } from '../jobs/cli.ts'
import { specifyLedger } from './ledger-spec.ts'

let files = 0

t.test('the ledger contract, on an SQLite file', async t => {
  const dir = tempDir(t)
  const paths = new WeakMap<object, string>()
  specifyLedger(t, async ({ now, sameAs }) => {
    const path = sameAs === undefined ? join(dir, `ledger-${++files}.sqlite`) : paths.get(sameAs) as string
    const ledger = new SqliteLedger({ path, now })
    paths.set(ledger, path)
    return ledger
  }, {
    forgetAlmaReservations: async (ledger, key) => {
      const db = new Database(paths.get(ledger) as string)
      db.prepare('DELETE FROM alma_reservations WHERE key = ?').run(key)
      db.close()
    }
  })
})

const checkout = (id: string): NewCheckout => ({
  id,
  userId: 'alice',
  primaryId: 'P-alice',
  patronName: 'Alice',
  email: '',
  currency: 'USD',
  lines: [{ lineNo: 1, feeId: 'f1', feeType: 'OVERDUEFINE', feeTypeDesc: 'Overdue fine', owner: 'MAIN', ownerDesc: 'Main', title: 't', itemCode: 'LIB-FINE', amount: 500 as Cents }]
})
const postback = (id: string, tx: string): IncomingPostback => ({ checkoutId: id, peer: '127.0.0.9', result: '0', tx, rawBody: `tx=${tx}`, items: [{ itemCode: 'LIB-FINE', amount: 500 as Cents, qty: 1 }] })
const pay = (tx: string) => () => ({ outcome: 'PAID' as const, reason: 'paid', to: 'PAID' as const, payment: { tx, batchno: 'B', effdate: 'E', pmtcode: 'P' } })

t.test('postbacks arriving together are each durable when their promise resolves, and one failing rule spoils no other', async t => {
  const path = join(tempDir(t), 'ledger.sqlite')
  const ledger = new SqliteLedger({ path })
  t.teardown(async () => { await ledger.close() })
  for (let i = 0; i < 20; i++) await ledger.createCheckout(checkout(`c${i}`))
  const answers = await Promise.allSettled(Array.from({ length: 20 }, async (_, i) =>
    await ledger.recordPostback(postback(`c${i}`, `70${i}`), i === 7 ? () => { throw new Error('rule bug') } : pay(`70${i}`))))
  t.equal(answers.filter(a => a.status === 'fulfilled').length, 19)
  t.match(answers[7], { status: 'rejected', reason: { message: 'rule bug' } })
  // another connection (as a crash-restarted service would) sees every resolved one
  const reader = new Database(path, { readonly: true })
  t.teardown(() => { reader.close() })
  const paid = reader.prepare("SELECT id FROM checkouts WHERE state = 'PAID' ORDER BY id").all() as Array<{ id: string }>
  t.equal(paid.length, 19)
  t.notOk(paid.some(r => r.id === 'c7'), 'the failed one left nothing')
  t.equal((reader.prepare('SELECT COUNT(*) AS n FROM postbacks').get() as { n: number }).n, 19)
})

t.test('closing the ledger commits the postbacks still waiting for their shared commit', async t => {
  const path = join(tempDir(t), 'ledger.sqlite')
  const ledger = new SqliteLedger({ path })
  await ledger.createCheckout(checkout('c1'))
  const waiting = ledger.recordPostback(postback('c1', '7001'), pay('7001'))
  await ledger.close()
  t.equal((await waiting).checkout?.state, 'PAID', 'answered after its commit')
  const again = new SqliteLedger({ path })
  t.teardown(async () => { await again.close() })
  t.equal((await again.getCheckout('c1'))?.state, 'PAID', 'on disk')
})

t.test('a lock held by another process: writes reject with LedgerUnavailable at once, nothing written; then they go through', async t => {
  const path = join(tempDir(t), 'ledger.sqlite')
  const ledger = new SqliteLedger({ path })
  t.teardown(async () => { await ledger.close() })
  await ledger.createCheckout(checkout('c1'))
  const holder = new Database(path)
  t.teardown(() => { if (holder.open) holder.close() })
  holder.exec('BEGIN IMMEDIATE')
  const started = performance.now()
  const refused = await ledger.recordPostback(postback('c1', '7001'), pay('7001')).then(() => null, (error: unknown) => error)
  t.ok(refused instanceof LedgerUnavailable, 'the ledger\'s own error, not the driver\'s')
  t.equal((refused as LedgerUnavailable).statusCode, 503)
  const failure = async (write: Promise<unknown>): Promise<unknown> => await write.then(() => null, (error: unknown) => error)
  t.ok(await failure(ledger.createCheckout(checkout('c2'))) instanceof LedgerUnavailable, 'any write, not only postbacks')
  t.ok(await failure(ledger.transition({ checkoutId: 'c1', from: ['CREATED'], to: 'EXPIRED', event: 'x' })) instanceof LedgerUnavailable)
  t.ok(performance.now() - started < 1000, 'well within CashNet\'s second')
  t.equal(await ledger.writable(), false, 'not ready while locked')
  t.equal((await ledger.getCheckout('c1'))?.state, 'CREATED', 'reads go on')
  holder.exec('ROLLBACK')
  t.equal(await ledger.writable(), true)
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal((await ledger.recordPostback(postback('c1', '7001'), pay('7001'))).checkout?.state, 'PAID')
  t.equal(await ledger.getCheckout('c2'), undefined, 'the refused checkout was never written')
})

t.test('the Alma budget meets another process\'s lock: it waits with the event loop free, goes through when the lock goes, and gives up after the busy timeout', async t => {
  const path = join(tempDir(t), 'ledger.sqlite')
  const ledger = new SqliteLedger({ path })
  t.teardown(async () => { await ledger.close() })
  const holder = new Database(path)
  t.teardown(() => { if (holder.open) holder.close() })
  holder.exec('BEGIN IMMEDIATE')
  // a timer that should fire every 5 ms: how late it came is how long the event loop was held
  let latest = performance.now()
  let worstLateMs = 0
  const ticker = setInterval(() => { const now = performance.now(); worstLateMs = Math.max(worstLateMs, now - latest - 5); latest = now }, 5)
  t.teardown(() => { clearInterval(ticker) })
  const asked = ledger.reserveAlmaCalls('alma', 20, 1400, 2, 'p1')
  await new Promise(resolve => setTimeout(resolve, 40))
  holder.exec('ROLLBACK')
  t.same(await asked, { granted: 2, retryInMs: 0 }, 'granted once the lock was gone')
  // Held in SQLite's busy handler, the event loop could not run the timer that releases the lock: it would stand
  // still for the whole busy timeout. Anything well short of that is a free loop (on a busy machine a timer comes
  // tens of milliseconds late for reasons of its own: a bound of 20 ms failed there).
  t.ok(worstLateMs < BUSY_TIMEOUT_MS / 2, `the event loop was never held waiting for the lock (the worst timer came ${worstLateMs.toFixed(1)} ms late; held, it would be ${BUSY_TIMEOUT_MS} ms)`)

  holder.exec('BEGIN IMMEDIATE')
  const started = performance.now()
  const refused = await ledger.reserveAlmaCalls('alma', 20, 1400, 1, 'p1').then(() => null, (error: unknown) => error)
  t.ok(refused instanceof LedgerUnavailable, 'a lock held on: LedgerUnavailable, as for any write')
  t.ok(performance.now() - started >= BUSY_TIMEOUT_MS, 'after the busy timeout')
  holder.exec('ROLLBACK')
  t.same(await ledger.reserveAlmaCalls('alma', 20, 1400, 1, 'p1'), { granted: 1, retryInMs: 0 }, 'and asks again afterwards')
})

t.test('a job\'s read-only ledger reads and never writes', async t => {
  const path = join(tempDir(t), 'ledger.sqlite')
  const service = new SqliteLedger({ path })
  await service.createCheckout(checkout('c1'))
  await service.close()
  const job = new SqliteLedger({ path, readOnly: true })
  t.teardown(async () => { await job.close() })
  t.equal((await job.getCheckout('c1'))?.id, 'c1')
  await t.rejects(job.createCheckout(checkout('c2')), { code: 'SQLITE_READONLY' })
  await t.rejects(job.recordPostback(postback('c1', '7001'), pay('7001')), { code: 'SQLITE_READONLY' })
})
