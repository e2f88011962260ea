// The service on PostgreSQL (DATABASE_URL), over real HTTP with the Alma sandbox as judge: the whole payment
// journey, and PostgreSQL stopped in the middle of a burst of postbacks (SPEC 11): no postback answered 200
// without a durable record, 503 and /readyz 503 while it is down, and once it is back (the pool reconnects by
// itself) every payment is posted, each fee paid exactly once, at once: a posting lease the service left held while
// PostgreSQL was down (a release that failed, a claim committed whose answer was lost) is released at the next poll,
// not waited out (the outage test runs with a ten-minute lease to show it).

import t from 'tap'
import { PostgresLedger } from '../src/ledger/postgres/index.ts'
import type { SeedUser } from '../src/sandbox/seed.ts'
import { Browser, build, checkoutIdFrom, send, until } from './helper.ts'
import { freshDatabase, freshDatabaseOn } from './support/postgres.ts'
import { ownedServer, startServer, stopServerSoon } from './support/postgres-server.ts'

t.test('on PostgreSQL: checkout, postback, POSTED; Alma shows the fees paid with the tx; the record is in the database', async t => {
  const url = await freshDatabase(t)
  if (url === null) return
  const stack = await build(t, { env: { DATABASE_URL: url } })
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout(['100001', '100003'])
  const id = checkoutIdFrom(fields)
  const receipt = await alice.payOnCashnet(action, fields)
  t.equal(receipt.status, 200)
  await stack.app.worker.idle()
  const reader = await PostgresLedger.open({ url, readOnly: true })
  t.teardown(async () => { await reader.close() })
  const checkout = await reader.getCheckout(id)
  t.equal(checkout?.state, 'POSTED', 'read back from PostgreSQL by another connection')
  const tx = checkout?.tx as string
  t.same(stack.alma.paymentsFor(tx).sort((a, b) => a.feeId.localeCompare(b.feeId)), [
    { feeId: '100001', amountCents: 500 },
    { feeId: '100003', amountCents: 1225 }
  ])
  t.equal(stack.alma.calls.filter(c => c.method === 'POST').length, 2, 'two pay calls')
  t.equal((await reader.history(id))?.almaCalls.filter(c => c.method === 'POST').length, 2, 'the Alma calls are in the ledger')
  t.equal((await send(`${stack.serviceUrl}/readyz`)).status, 200)
})

const patron = (n: number): SeedUser => ({
  primaryId: `PGOUT${n}`,
  firstName: 'Outage',
  lastName: `Patron ${n}`,
  email: `pgout${n}@example.edu`,
  userGroup: 'UNDERGRAD',
  identifiers: [],
  blocks: [],
  fees: [{ id: String(7_700_000 + n), type: 'OVERDUEFINE', typeDesc: 'Overdue fine', balance: `${n + 1}.25`, owner: 'MAIN', ownerDesc: 'Main Library', title: `Title ${n}`, barcode: `3900${n}`, created: '2026-10-01T14:30:00Z' }],
  story: ''
})

t.test('PostgreSQL stopped during a burst of postbacks: 503 while down, never 200 without a record; after restart every fee paid once', async t => {
  const server = await ownedServer(t)
  if (server === undefined) return
  const url = await freshDatabaseOn(t, server.url)
  const stack = await build(t, { env: { DATABASE_URL: url, POSTING_LEASE_SECONDS: '600' } })
  const COUNT = 16
  const postbacks: Array<{ id: string, fee: string, postback: ReturnType<typeof stack.cashnet.resultFields> }> = []
  for (let n = 0; n < COUNT; n++) {
    const seed = patron(n)
    stack.alma.addUser(seed)
    const browser = new Browser(stack).login(seed.primaryId)
    const { fields } = await browser.checkout()
    t.equal(fields.length > 0, true, `checkout ${n} made`)
    const session = { fields: new Map(fields.map(([k, v]) => [k.toLowerCase(), v])), id: `s${n}`, finished: false }
    postbacks.push({ id: checkoutIdFrom(fields), fee: seed.fees[0].id, postback: stack.cashnet.resultFields(session, 'pay') })
  }

  // the burst: every postback at once, and PostgreSQL killed (no clean shutdown) as soon as the first is answered
  let stopping: Promise<void> | undefined
  const answers = await Promise.all(postbacks.map(async ({ postback }) => {
    const answer = await stack.cashnet.sendPostback(postback)
    stopping ??= stopServerSoon(server, 'immediate')
    return answer.status
  }))
  await stopping
  t.ok(answers.every(s => s === 200 || s === 503), `each postback answered 200 or 503 (${answers.join(' ')})`)
  const late = postbacks.filter((_, i) => answers[i] !== 200)

  // down: postbacks and readiness say so
  const whileDown = await stack.cashnet.sendPostback(postbacks[COUNT - 1].postback)
  t.equal(whileDown.status, 503, 'a postback while PostgreSQL is down is answered 503 (CashNet sends it again)')
  t.equal((await send(`${stack.serviceUrl}/readyz`)).status, 503, '/readyz fails while PostgreSQL is down')

  startServer(server)
  await until(async () => (await send(`${stack.serviceUrl}/readyz`)).status === 200, '/readyz after the restart')
  // every postback answered 200 was durable: it survived the crash
  const reader = await PostgresLedger.open({ url, readOnly: true })
  t.teardown(async () => { await reader.close() })
  for (const [i, { postback }] of postbacks.entries()) {
    if (answers[i] !== 200) continue
    t.ok((await reader.postbacksWithTx(postback.tx)).length >= 1, `postback ${i}, answered 200, is in the ledger after the crash`)
  }
  // CashNet sends the others again
  for (const { postback } of late) t.equal((await stack.cashnet.sendPostback(postback)).status, 200, 'a retried postback is taken once the database is back')

  await until(async () => {
    for (const { id } of postbacks) if ((await reader.getCheckout(id))?.state !== 'POSTED') return false
    return true
  }, 'every payment POSTED after the restart', 60_000)
  for (const { fee, postback } of postbacks) {
    t.same(stack.alma.paymentsFor(postback.tx).map(p => p.feeId), [fee], `fee ${fee} paid exactly once, with its tx`)
  }
  t.equal(stack.alma.calls.filter(c => c.method === 'POST').length, COUNT, 'one pay call per fee in all')
})
