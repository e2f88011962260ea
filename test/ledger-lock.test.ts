// Another process holding the ledger's write lock must not stall the service: CashNet wants its answer within
// a second. Jobs open the ledger read-only and never create or migrate it, so in WAL mode they never hold a
// lock the service waits for; a lock held anyway (an operator's sqlite3 shell) makes postbacks answer 503,
// which CashNet retries, instead of freezing the event loop for seconds.

import Database from 'better-sqlite3'
import { join } from 'node:path'
import t from 'tap'
import { SqliteLedger } from '../src/ledger/sqlite/index.ts'
import { build, Browser, checkoutIdFrom, until } from './helper.ts'
import { runScript, tempDir } from './jobs/cli.ts'

t.test('a write lock held by another connection: each postback is answered within 1 s, 503 while held, 200 after', async t => {
  const dir = tempDir(t)
  const databasePath = join(dir, 'payments.sqlite')
  const stack = await build(t, { env: { DATABASE_PATH: databasePath } })
  const alice = new Browser(stack).login('alice')
  const { fields } = await alice.checkout()
  const id = checkoutIdFrom(fields)
  const postback = stack.cashnet.resultFields({ fields: new Map(fields.map(([k, v]) => [k.toLowerCase(), v])), id: 'x', finished: false }, 'pay')

  const holder = new Database(databasePath)
  t.teardown(() => { if (holder.open) holder.close() })
  holder.exec('BEGIN IMMEDIATE')
  holder.prepare('UPDATE checkouts SET updated_at = updated_at WHERE id = ?').run(id)
  const timed = async (): Promise<{ status: number, ms: number }> => {
    const started = performance.now()
    const answer = await stack.cashnet.sendPostback(postback)
    return { status: answer.status, ms: performance.now() - started }
  }
  const whileLocked = await Promise.all(Array.from({ length: 10 }, timed))
  const oneMore = await timed()
  for (const answer of [...whileLocked, oneMore]) {
    t.equal(answer.status, 503, 'refused while the lock is held: CashNet will send it again')
    t.ok(answer.ms < 1000, `answered in ${Math.round(answer.ms)} ms, within CashNet's second`)
  }
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'CREATED', 'nothing was recorded while locked')
  t.ok(stack.logLines().some(l => l.event === 'ledger.busy' && l.level === 40), 'one operator line says the ledger was locked')
  t.notOk(stack.logLines().some(l => l.event === 'request.failed'), 'not reported as an unexpected error')

  holder.exec('COMMIT')
  // CashNet retries a postback that did not get 200; the service refuses at once for a quarter second after
  // meeting the lock (so it does not stall again), then records it.
  const released = performance.now()
  let after = await timed()
  while (after.status === 503 && performance.now() - released < 2000) {
    await new Promise(resolve => setTimeout(resolve, 50))
    after = await timed()
  }
  t.equal(after.status, 200, 'accepted once the lock is gone')
  t.ok(after.ms < 1000)
  t.ok(performance.now() - released < 1000, 'within a second of the lock\'s release')
  await until(async () => (await stack.app.ledger.getCheckout(id))?.state === 'POSTED', 'the payment to be posted')
  t.equal(stack.alma.paymentsFor(postback.tx).length, 3, 'each fee paid once in Alma')
})

t.test('a job reading the live ledger never blocks the service\'s writes', async t => {
  const dir = tempDir(t)
  const databasePath = join(dir, 'payments.sqlite')
  const stack = await build(t, { env: { DATABASE_PATH: databasePath } })
  const job = new SqliteLedger({ path: databasePath, readOnly: true })
  t.teardown(async () => { await job.close() })
  // A job in the middle of its reads (as reconcile is while it asks Alma about each fee) holds a read snapshot.
  const reading = new Database(databasePath, { readonly: true })
  t.teardown(() => { if (reading.open) reading.close() })
  reading.exec('BEGIN')
  reading.prepare('SELECT COUNT(*) AS n FROM checkouts').get()
  const alice = new Browser(stack).login('alice')
  const { fields } = await alice.checkout()
  const postback = stack.cashnet.resultFields({ fields: new Map(fields.map(([k, v]) => [k.toLowerCase(), v])), id: 'x', finished: false }, 'pay')
  const started = performance.now()
  const answer = await stack.cashnet.sendPostback(postback)
  t.equal(answer.status, 200, 'the postback is recorded while the job reads')
  t.ok(performance.now() - started < 1000)
  t.equal((await job.getCheckout(checkoutIdFrom(fields)))?.state !== undefined, true, 'the job sees the ledger')
  reading.exec('COMMIT')
  await t.rejects(job.audit(null, 'job.write', {}), { code: 'SQLITE_READONLY' }, 'a job cannot write to the ledger at all')
})

t.test('jobs never create or migrate a ledger: an empty or older one is refused with what to do', async t => {
  const dir = tempDir(t)
  const empty = join(dir, 'empty.sqlite')
  new Database(empty).close()
  const older = join(dir, 'older.sqlite')
  new SqliteLedger({ path: older }).close()
  const downgrade = new Database(older)
  downgrade.pragma('user_version = 1')
  downgrade.close()

  const versionOf = (path: string): { version: number, tables: number } => {
    const db = new Database(path, { readonly: true })
    try {
      return { version: db.pragma('user_version', { simple: true }) as number, tables: (db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n }
    } finally {
      db.close()
    }
  }
  const before = { empty: versionOf(empty), older: versionOf(older) }
  t.same(before.empty, { version: 0, tables: 0 })

  for (const [path, expected] of [[empty, 'not a payments ledger'], [older, 'start the service once']] as const) {
    const reconcile = await runScript('reconcile.ts', [], { DATABASE_PATH: path, ALMA_API_URL: 'http://127.0.0.1:9/almaws/v1', ALMA_API_KEY: 'unused' })
    t.equal(reconcile.code, 2, `reconcile refuses ${path}`)
    t.match(reconcile.stderr, expected)
    t.match(reconcile.stderr, 'DATABASE_PATH')
    const gl = await runScript('export-gl.ts', ['--date', '2026-10-05', '--out', join(dir, 'out')], { DATABASE_PATH: path, GL_MAP_FILE: 'config/gl-map.example.json', GL_TIMEZONE: 'UTC' })
    t.equal(gl.code, 2, `export:gl refuses ${path}`)
    t.match(gl.stderr, expected)
  }
  t.same(versionOf(empty), before.empty, 'the empty file is still empty: no schema created')
  t.same(versionOf(older), before.older, 'the older ledger was not migrated by a job')
})
