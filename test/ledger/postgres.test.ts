// The PostgreSQL ledger against the ledger's contract (ledger-spec.ts, the same suite SQLite runs), each test
// on a database of its own; then what is PostgreSQL's own: the schema migrated once under a lock by instances
// starting together, the posting lease and its fence, the Alma budget every process shares, jobs read only.

import pg from 'pg'
import t from 'tap'
import { LeaseLost, LedgerSchemaError, LedgerUnavailable } from '../../src/ledger/errors.ts'
import { PostgresLedger, SCHEMA_VERSION, schemaVersion } from '../../src/ledger/postgres/index.ts'
import { MIGRATIONS } from '../../src/ledger/postgres/migrations.ts'
import type { IncomingPostback, NewCheckout } from '../../src/ledger/types.ts'
import type { Cents } from '../../src/money.ts'
import { specifyLedger } from './ledger-spec.ts'
import { freshDatabase, postgresServer } from '../support/postgres.ts'

const server = postgresServer(t)

/** What a call rejected with (null when it resolved). */
const failure = async (call: Promise<unknown>): Promise<unknown> => await call.then(() => null, (error: unknown) => error)

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

if (server !== null) {
  t.test('the ledger contract, on PostgreSQL', async t => {
    // sameAs: a second ledger (another instance) on the first one's database
    const urls = new WeakMap<object, string>()
    specifyLedger(t, async ({ now, sameAs }) => {
      const url = sameAs === undefined ? await freshDatabase(t) as string : urls.get(sameAs) as string
      const ledger = await PostgresLedger.open({ url, now, poolSize: 4 })
      urls.set(ledger, url)
      return ledger
    }, {
      forgetAlmaReservations: async (ledger, key) => { await (ledger as PostgresLedger).pool.query('DELETE FROM alma_call_slots WHERE key = $1', [key]) }
    })
  })

  t.test('instances starting together migrate the schema once, under the lock; the version is recorded', async t => {
    const url = await freshDatabase(t) as string
    const ledgers = await Promise.all(Array.from({ length: 4 }, async () => await PostgresLedger.open({ url, poolSize: 2 })))
    t.teardown(async () => { for (const l of ledgers) await l.close() })
    t.equal(await schemaVersion(ledgers[0].pool), SCHEMA_VERSION)
    t.same(await ledgers[0].pool.query('SELECT version FROM schema_migrations ORDER BY version'), Array.from({ length: SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })))
    await ledgers[1].createCheckout(checkout('c1'))
    t.equal((await ledgers[3].getCheckout('c1'))?.state, 'CREATED', 'one database behind every instance')
  })

  t.test('eight instances starting together on new databases, ten times: every start succeeds, each database migrated once', async t => {
    // the schema_migrations table itself is created under the migration lock: created bare, two instances racing
    // on CREATE TABLE IF NOT EXISTS failed a start now and then (a duplicate type, 42710)
    for (let round = 0; round < 10; round++) {
      const url = await freshDatabase(t) as string
      const started = await Promise.allSettled(Array.from({ length: 8 }, async () => await PostgresLedger.open({ url, poolSize: 1 })))
      const failed = started.filter(s => s.status === 'rejected').map(s => String((s as PromiseRejectedResult).reason?.message))
      for (const s of started) if (s.status === 'fulfilled') await s.value.close()
      t.same(failed, [], `round ${round + 1}: all eight started`)
      const check = await PostgresLedger.open({ url, poolSize: 1 })
      t.same(await check.pool.query('SELECT version FROM schema_migrations ORDER BY version'), Array.from({ length: SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })), `round ${round + 1}: each migration once`)
      await check.close()
    }
  })

  t.test('a checkout\'s concurrent postbacks on two instances: one PAID, the other sees it (row locked FOR UPDATE)', async t => {
    const url = await freshDatabase(t) as string
    const a = await PostgresLedger.open({ url, poolSize: 4 })
    const b = await PostgresLedger.open({ url, poolSize: 4 })
    t.teardown(async () => { await a.close(); await b.close() })
    await a.createCheckout(checkout('c1'))
    const decide = (tx: string) => (c: any, earlier: any[]) => earlier.length === 0 && c.state === 'CREATED'
      ? pay(tx)()
      : { outcome: 'DUPLICATE' as const, reason: `after ${earlier.length}` }
    const results = await Promise.all([
      ...Array.from({ length: 5 }, async () => await a.recordPostback(postback('c1', '7001'), decide('7001'))),
      ...Array.from({ length: 5 }, async () => await b.recordPostback(postback('c1', '7001'), decide('7001')))
    ])
    t.equal(results.filter(r => r.decision.outcome === 'PAID').length, 1, 'exactly one postback decided PAID')
    t.equal(results.filter(r => r.decision.outcome === 'DUPLICATE').length, 9)
    t.equal((await a.history('c1'))?.postbacks.length, 10, 'every postback recorded')
  })

  t.test('outbox senders on two instances claiming at once never hold the same message; together they take every due one', async t => {
    const clock = new Date('2026-03-02T10:00:00.000Z')
    const url = await freshDatabase(t) as string
    const a = await PostgresLedger.open({ url, now: () => clock, poolSize: 6 })
    const b = await PostgresLedger.open({ url, now: () => clock, poolSize: 6 })
    t.teardown(async () => { await a.close(); await b.close() })
    const ids = Array.from({ length: 60 }, (_, i) => `m${String(i).padStart(2, '0')}`)
    await a.enqueueMessages(ids.map(id => ({ id, from: 'fines@example.edu', to: `${id}@example.edu`, subject: id, text: id, html: id })))
    const leaseUntil = new Date('2026-03-02T10:05:00.000Z')
    const claims = await Promise.all(Array.from({ length: 12 }, async (_, i) => await (i % 2 === 0 ? a : b).claimDueMessages(clock, 7, leaseUntil)))
    const claimed = claims.flat().map(m => m.id)
    t.equal(new Set(claimed).size, claimed.length, `no message claimed twice (${claimed.length} claimed)`)
    const rest = await b.claimDueMessages(clock, 100, leaseUntil)
    t.same([...claimed, ...rest.map(m => m.id)].sort(), ids, 'every message claimed exactly once, the ones passed over by the next claim')
    t.equal((await a.outboxMessage('m00'))?.leaseUntil, leaseUntil.toISOString())
  })

  t.test('the posting lease: one holder at a time, the fence grows with each claim, a stale holder writes nothing', async t => {
    let clock = new Date('2026-03-02T10:00:00.000Z')
    const url = await freshDatabase(t) as string
    const ledger = await PostgresLedger.open({ url, now: () => clock, poolSize: 4 })
    t.teardown(async () => { await ledger.close() })
    await ledger.createCheckout(checkout('c1'))
    t.equal(await ledger.claimPosting('c1', 'one', 60_000), null, 'a CREATED checkout is not for posting')
    await ledger.recordPostback(postback('c1', '7001'), pay('7001'))
    t.same(await ledger.duePostings(clock), ['c1'])
    const first = await ledger.claimPosting('c1', 'one', 60_000)
    t.match(first, { checkoutId: 'c1', holder: 'one', fence: 1 })
    t.equal(first?.expiresAt.toISOString(), '2026-03-02T10:01:00.000Z')
    t.equal(await ledger.claimPosting('c1', 'two', 60_000), null, 'a live lease is not taken')
    t.same(await ledger.duePostings(clock), [], 'a leased checkout is not due')
    clock = new Date('2026-03-02T10:00:30.000Z')
    t.equal(await ledger.renewPosting(first!, 60_000), true, 'the holder renews')
    clock = new Date('2026-03-02T10:01:20.000Z')
    t.equal(await ledger.claimPosting('c1', 'two', 60_000), null, 'renewed: still live at 10:01:20')
    clock = new Date('2026-03-02T10:01:31.000Z')
    t.same(await ledger.duePostings(clock), ['c1'], 'expired: due again')
    const second = await ledger.claimPosting('c1', 'two', 60_000)
    t.match(second, { holder: 'two', fence: 2 })
    t.equal(await ledger.renewPosting(first!, 60_000), false, 'the first holder learns it lost the lease')
    const call = { checkoutId: 'c1', at: clock.toISOString(), method: 'POST', path: '/x', status: 200, errorCode: '', errorMessage: '', trackingId: '', durationMs: 5 }
    t.ok(await failure(ledger.markLinePosted('c1', 1, 500 as Cents, {}, first!.fence)) instanceof LeaseLost)
    t.ok(await failure(ledger.recordAttempt('c1', null, 'boom', first!.fence)) instanceof LeaseLost)
    t.ok(await failure(ledger.recordAlmaCall(call, first!.fence)) instanceof LeaseLost)
    t.ok(await failure(ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'POSTED', event: 'posting.done' }, first!.fence)) instanceof LeaseLost)
    let history = await ledger.history('c1')
    t.equal(history?.checkout.state, 'PAID', 'the stale holder changed nothing')
    t.equal(history?.checkout.lines[0].postedAt, null)
    t.equal(history?.checkout.attempts, 0)
    t.equal(history?.almaCalls.length, 0)
    await ledger.recordAlmaCall(call, second!.fence)
    await ledger.markLinePosted('c1', 1, 500 as Cents, {}, second!.fence)
    t.equal(await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'POSTED', event: 'posting.done' }, second!.fence), true)
    await ledger.releasePosting(second!)
    history = await ledger.history('c1')
    t.equal(history?.checkout.state, 'POSTED', 'the live holder\'s writes go through')
    t.equal(history?.almaCalls.length, 1)
    t.equal(await ledger.claimPosting('c1', 'three', 60_000), null, 'a POSTED checkout is not claimed again')
  })

  t.test('a released lease is free at once, and renewing it afterwards fails', async t => {
    const clock = new Date('2026-03-02T10:00:00.000Z')
    const url = await freshDatabase(t) as string
    const ledger = await PostgresLedger.open({ url, now: () => clock, poolSize: 2 })
    t.teardown(async () => { await ledger.close() })
    await ledger.createCheckout(checkout('c1'))
    await ledger.recordPostback(postback('c1', '7001'), pay('7001'))
    const lease = await ledger.claimPosting('c1', 'one', 60_000)
    await ledger.releasePosting(lease!)
    t.equal(await ledger.renewPosting(lease!, 60_000), false)
    t.same(await ledger.duePostings(clock), ['c1'])
    t.match(await ledger.claimPosting('c1', 'two', 60_000), { fence: 2 })
  })

  t.test('the Alma call budget is shared by every process: never more than the limit in a window', async t => {
    let clock = new Date('2026-03-02T10:00:00.000Z')
    const url = await freshDatabase(t) as string
    const a = await PostgresLedger.open({ url, now: () => clock, poolSize: 8 })
    const b = await PostgresLedger.open({ url, now: () => clock, poolSize: 8 })
    t.teardown(async () => { await a.close(); await b.close() })
    // both instances have asked (the first alone, then the second: the window is shared from then on) ...
    t.match(await a.reserveAlmaCalls('inst-1', 20, 1000, 1, 'instance-a'), { granted: 1 })
    t.match(await b.reserveAlmaCalls('inst-1', 20, 1000, 1, 'instance-b'), { granted: 1 })
    // ... then 30 questions at once from both, some asking for several calls: 45 calls asked for, 18 left
    const answers = await Promise.all(Array.from({ length: 30 }, async (_, i) => await (i % 2 === 0 ? a : b).reserveAlmaCalls('inst-1', 20, 1000, i % 3 === 0 ? 3 : 1, i % 2 === 0 ? 'instance-a' : 'instance-b')))
    t.equal(answers.reduce((sum, x) => sum + x.granted, 0), 18, 'exactly the limit granted across both')
    t.ok(answers.every((x, i) => x.granted <= (i % 3 === 0 ? 3 : 1)), 'never more granted than asked for')
    t.ok(answers.filter(x => x.granted === 0).every(x => x.retryInMs > 0 && x.retryInMs <= 1000), 'the others told how long to wait')
    t.match(await a.reserveAlmaCalls('inst-2', 20, 1000, 1, 'instance-a'), { granted: 1 }, 'another institution has its own budget')
    clock = new Date('2026-03-02T10:00:00.400Z')
    t.match(await a.reserveAlmaCalls('inst-1', 20, 1000, 1, 'instance-a'), { granted: 0, retryInMs: 600 })
    t.match(await b.reserveAlmaCalls('inst-1', 20, 1000, 1, 'instance-b'), { granted: 0, retryInMs: 600 }, 'both told to wait (and both asked: the window stays shared until 1.4 s)')
    clock = new Date('2026-03-02T10:00:01.000Z')
    t.match(await b.reserveAlmaCalls('inst-1', 20, 1000, 20, 'instance-b'), { granted: 10 }, 'the window moved on, still shared (another instance asked 1 s ago): half the room')
    clock = new Date('2026-03-02T10:00:03.000Z')
    t.match(await b.reserveAlmaCalls('inst-1', 20, 1000, 20, 'instance-b'), { granted: 20 }, 'a whole window with one instance: alone, what its own limiter lets through')
  })

  t.test('a job\'s read-only ledger reads and never writes; a database with no ledger is refused', async t => {
    const url = await freshDatabase(t) as string
    const noLedger = await failure(PostgresLedger.open({ url, readOnly: true }))
    t.ok(noLedger instanceof LedgerSchemaError, 'no schema: refused, not created')
    t.match((noLedger as Error).message, /no payments ledger/)
    const service = await PostgresLedger.open({ url })
    await service.createCheckout(checkout('c1'))
    await service.close()
    const job = await PostgresLedger.open({ url, readOnly: true })
    t.teardown(async () => { await job.close() })
    t.equal((await job.getCheckout('c1'))?.id, 'c1')
    const refused = await failure(job.createCheckout(checkout('c2')))
    t.ok(refused instanceof LedgerUnavailable, 'a write on a read-only session is refused (503), never made')
    t.match((refused as Error).message, /read-only transaction/)
    t.equal(await job.writable(), false)
  })

  t.test('the payer-kind migration: a checkout made in a pay-link session before kinds were kept is recognised as paid by primary id', async t => {
    const url = await freshDatabase(t) as string
    const before = MIGRATIONS.findIndex(m => m.includes('user_id_kind'))
    t.ok(before > 0, 'the migration is found')
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await client.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())')
      for (let i = 0; i < before; i++) {
        await client.query(MIGRATIONS[i])
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [i + 1])
      }
      const link = 'INSERT INTO pay_links (link_id, patron_id, primary_id, issued_by, issued_at, expires_at, revoked_at) VALUES ($1, $2, $2, \'staff\', $3, $4, $5)'
      await client.query(link, ['L1', 'alice', '2026-01-01T00:00:00Z', '2026-01-04T00:00:00Z', null])
      await client.query(link, ['L2', 'dora', '2026-01-01T00:00:00Z', '2026-01-04T00:00:00Z', '2026-01-02T00:00:00Z'])
      for (const [id, userId, primaryId, createdAt] of [
        ['by-link', 'alice', 'alice', '2026-01-02T10:00:00Z'], ['zed', 'alice', 'zed', '2026-01-02T11:00:00Z'],
        ['after-expiry', 'alice', 'alice', '2026-01-05T10:00:00Z'], ['dora-after-revoke', 'dora', 'dora', '2026-01-03T10:00:00Z']
      ]) {
        await client.query(`INSERT INTO checkouts (id, user_id, primary_id, patron_name, email, state, total_cents, currency, created_at, updated_at)
          VALUES ($1, $2, $3, 'P', '', 'POSTED', 500, 'USD', $4, $4)`, [id, userId, primaryId, createdAt])
      }
    } finally {
      await client.end()
    }
    const ledger = await PostgresLedger.open({ url, poolSize: 1 })
    t.teardown(async () => { await ledger.close() })
    t.same(await Promise.all(['by-link', 'zed', 'after-expiry', 'dora-after-revoke'].map(async id => (await ledger.getCheckout(id))?.userIdKind)),
      ['primary-id', 'username', 'username', 'username'], 'only the one made while alice\'s link was usable, under her primary id')
    t.same((await ledger.patronPayments('alice', 50)).map(c => c.id), ['after-expiry', 'zed'], 'EZproxy\'s "alice" keeps only the username\'s')
    t.same((await ledger.patronPayments('alice', 50, 'primary-id')).map(c => c.id), ['by-link'], 'alice\'s pay link sees hers')
  })

  t.test('the server out of reach: every call rejects with LedgerUnavailable, not a driver error', async t => {
    const url = new URL(server)
    url.port = '1'
    const ledger = await PostgresLedger.open({ url: url.toString(), migrate: false })
    t.teardown(async () => { await ledger.close() })
    const refused = await failure(ledger.recordPostback(postback('c1', '7001'), pay('7001')))
    t.ok(refused instanceof LedgerUnavailable)
    t.equal((refused as LedgerUnavailable).statusCode, 503)
    t.ok(await failure(ledger.getCheckout('c1')) instanceof LedgerUnavailable)
    t.equal(await ledger.writable(), false)
  })
}
