// Several service processes on one ledger (SPEC 11), each a real child process on its own port, over real
// HTTP, the Alma sandbox as judge; every scenario runs twice, on one SQLite file (DATABASE_PATH) and on one
// fresh PostgreSQL database (DATABASE_URL, on the test run's private server): any instance answers any request; a posting is held by one
// process at a time under a lease, and one that dies or is paused past its lease is taken over without any
// fee paid twice or any state written by the stale holder; ALMA_RATE_LIMIT holds for all of them together at
// the sandbox; WEB_CONCURRENCY forks processes that a primary keeps alive; a patron's session (kept in the
// ledger) is known to every process, and a sign-out on one ends it on all.

import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { cents as centsOf, patrons } from '../bench/lib/patrons.ts'
import { checkoutFormFields } from '../src/providers/cashnet/checkout-form.ts'
import type { Ledger } from '../src/ledger/ledger.ts'
import { PostgresLedger } from '../src/ledger/postgres/index.ts'
import { SqliteLedger } from '../src/ledger/sqlite/index.ts'
import type { Checkout } from '../src/ledger/types.ts'
import type { Cents } from '../src/money.ts'
import { AlmaSandbox } from '../src/sandbox/alma.ts'
import { CashnetSandbox } from '../src/sandbox/cashnet.ts'
import { EzproxyStandIn } from '../src/sandbox/ezproxy.ts'
import { type SeedUser, seedUsers } from '../src/sandbox/seed.ts'
import { SANDBOX_API_KEY, SANDBOX_WSKEY } from '../src/sandbox/stack.ts'
import { STANDIN_LOGOUT_PATH } from '../src/sandbox/ezproxy.ts'
import { sessionKey } from '../src/web/sessions.ts'
import { type Answer, Browser, CASHNET_PEER, checkoutIdFrom, freePort, send, until } from './helper.ts'
import { freshDatabase } from './support/postgres.ts'
import { type ServiceProcess, serviceEnv, serviceProcess, tempDir } from './support/service-process.ts'

t.setTimeout(600_000)

interface Instance {
  url: string
  ezproxy: EzproxyStandIn
  browser: Browser
  service: ServiceProcess
}

type Kind = 'sqlite' | 'postgres'
const KINDS: Array<{ kind: Kind, name: string }> = [{ kind: 'sqlite', name: 'one SQLite file' }, { kind: 'postgres', name: 'one PostgreSQL' }]

/** The shared ledger as the test reads it, beside the instances: the Ledger seam, and two raw reads of its rows. */
interface SharedLedger {
  ledger: Ledger
  /** what every instance is given to find it */
  env: Record<string, string>
  /** the posting lease's holder column of a checkout (SQLite lease_holder, PostgreSQL posting_holder) */
  leaseHolder: (id: string) => Promise<string | null>
  /** checkouts POSTED whose id starts with prefix */
  posted: (prefix: string) => Promise<number>
  close: () => Promise<void>
}

async function sharedLedger (t: Test, kind: Kind, dir: string): Promise<SharedLedger | null> {
  if (kind === 'sqlite') {
    const path = join(dir, 'payments.sqlite')
    const ledger = new SqliteLedger({ path })
    let opened: Database.Database | undefined
    const reader = (): Database.Database => (opened ??= new Database(path, { readonly: true }))
    return {
      ledger,
      env: { DATABASE_PATH: path, DATABASE_URL: '' },
      leaseHolder: async id => (reader().prepare('SELECT lease_holder FROM checkouts WHERE id = ?').get(id) as { lease_holder: string | null } | undefined)?.lease_holder ?? null,
      posted: async prefix => (reader().prepare("SELECT COUNT(*) AS n FROM checkouts WHERE state = 'POSTED' AND id LIKE ? || '%'").get(prefix) as { n: number }).n,
      close: async () => { opened?.close(); await ledger.close() }
    }
  }
  const url = await freshDatabase(t)
  if (url === null) return null
  const ledger = await PostgresLedger.open({ url })
  return {
    ledger,
    env: { DATABASE_URL: url, DATABASE_PATH: join(dir, 'unused.sqlite') },
    leaseHolder: async id => ((await ledger.pool.query('SELECT posting_holder FROM checkouts WHERE id = $1', [id]))[0]?.posting_holder as string | undefined) ?? null,
    posted: async prefix => Number((await ledger.pool.query("SELECT COUNT(*) AS n FROM checkouts WHERE state = 'POSTED' AND id LIKE $1 || '%'", [prefix]))[0].n),
    close: async () => { await ledger.close() }
  }
}

interface Deployment {
  alma: AlmaSandbox
  cashnet: CashnetSandbox
  ledger: Ledger
  shared: SharedLedger
  instances: Instance[]
}

/** The sandboxes, the shared ledger and `count` instances started on it; null when PostgreSQL is asked for and the test run has none (the test says it was skipped). */
async function deployment (t: Test, kind: Kind, count: number, extra: { users?: SeedUser[], env?: Record<string, string> } = {}): Promise<Deployment | null> {
  const userobject = extra.env?.AUTH_MODE === 'userobject'
  const dir = tempDir(t, 'alma-cashnet-instances-')
  const shared = await sharedLedger(t, kind, dir)
  if (shared === null) return null
  const alma = new AlmaSandbox({ apiKey: SANDBOX_API_KEY, users: [...seedUsers(), ...(extra.users ?? [])] })
  await alma.start()
  const cashnet = new CashnetSandbox({ store: 'LIBFINESTEST', postbackUrl: 'http://127.0.0.1:9/', postbackFrom: CASHNET_PEER })
  await cashnet.start()
  const instances: Instance[] = []
  for (let i = 0; i < count; i++) {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const ezproxy = new EzproxyStandIn({ target: url, users: seedUsers(), wskey: SANDBOX_WSKEY })
    const publicUrl = await ezproxy.start()
    const instance: Instance = {
      url,
      ezproxy,
      browser: new Browser({ ezproxy, publicUrl }).login('alice'),
      service: serviceProcess(t, {
        ...serviceEnv({ port, publicUrl, alma, cashnet }),
        ALMA_TIMEOUT_MS: '5000',
        ...shared.env,
        POSTING_RETRY_BASE_MS: '50',
        POSTING_LEASE_SECONDS: '2',
        // userobject mode: each instance signs patrons in through its own EZproxy stand-in
        ...(userobject ? { EZPROXY_URL: publicUrl, EZPROXY_WSKEY: SANDBOX_WSKEY, EZPROXY_LOGOUT_URL: `${publicUrl}${STANDIN_LOGOUT_PATH}` } : {}),
        ...extra.env
      }, { name: `instance ${i + 1}` })
    }
    instances.push(instance)
  }
  t.teardown(async () => {
    for (const instance of instances) {
      instance.service.child?.kill('SIGCONT')
      await instance.service.stop()
      await instance.ezproxy.close()
    }
    await shared.close()
    await cashnet.close()
    await alma.close()
  })
  await Promise.all(instances.map(async i => { await i.service.start() }))
  return { alma, cashnet, ledger: shared.ledger, shared, instances }
}

/** CashNet's success postback for a checkout form, as the CashNet sandbox would send it. */
function paidPostback (cashnet: CashnetSandbox, fields: Array<[string, string]>): string {
  const session = { id: 'x', finished: false, fields: new Map(fields.map(([k, v]) => [k.toLowerCase(), v])) }
  return new URLSearchParams(cashnet.resultFields(session as any, 'pay')).toString()
}

async function postback (instance: Instance, body: string): Promise<number> {
  try {
    return (await send(`${instance.url}/cashnet/postback`, { method: 'POST', body, from: CASHNET_PEER })).status
  } catch {
    return 0 // nobody answered (the instance is dead): CashNet sends it again
  }
}

async function assertPaidOnce (t: Test, d: Deployment, ids: string[]): Promise<void> {
  let wrong = 0
  for (const id of ids) {
    const checkout = await d.ledger.getCheckout(id)
    const paid = d.alma.paymentsFor(checkout?.tx as string).map(p => `${p.feeId}:${p.amountCents}`).sort()
    const expected = (checkout?.lines ?? []).map(l => `${l.feeId}:${l.amount}`).sort()
    if (checkout?.state !== 'POSTED' || JSON.stringify(paid) !== JSON.stringify(expected)) {
      wrong++
      t.fail(`checkout ${id}: ${checkout?.state}, Alma shows ${paid.join(', ')} for ${expected.join(', ')}`)
    }
  }
  t.equal(wrong, 0, `each of ${ids.length} payments is POSTED and Alma shows each of its fees paid exactly once`)
}

/** No instance stopped by itself: a lost lease or a busy ledger fails one posting (retried later), never the process. */
function assertNoneCrashed (t: Test, d: Deployment): void {
  const crashed = d.instances.map((instance, n) => ({ n: n + 1, output: instance.service.output.join('') }))
    .filter(({ output }) => /service\.crashed|PromiseRejectionHandledWarning|unhandled/i.test(output))
  t.same(crashed.map(c => c.n), [], `no instance crashed${crashed.map(c => `; instance ${c.n}: ${(/.*service\.crashed.*/.exec(c.output) ?? [c.output.slice(-400)])[0]}`).join('')}`)
}

for (const { kind, name } of KINDS) {
  t.test(`${name}: two instances on one ledger: checkouts made on one, postbacks sent to the other, receipts read from either; each fee paid once`, async t => {
    const d = await deployment(t, kind, 2)
    if (d === null) return
    const [a, b] = d.instances
    const ids: string[] = []
    for (const user of ['alice', 'carol']) {
      a.browser.login(user)
      const { fields } = await a.browser.checkout()
      t.ok(fields.length > 0, `${user}'s checkout made on the first instance`)
      const id = checkoutIdFrom(fields)
      ids.push(id)
      t.equal(await postback(b, paidPostback(d.cashnet, fields)), 200, 'its postback answered by the second')
      await until(async () => (await d.ledger.getCheckout(id))?.state === 'POSTED', `${id} posted`, 30000)
      for (const instance of [a, b]) {
        instance.browser.login(user)
        const receipt = await instance.browser.get(`/cashnet/return?ref=${id}`)
        t.equal(receipt.status, 200, 'the receipt is read from either instance')
        t.match(receipt.body, /posted|recorded/i, 'and says the payment is recorded in the library account')
      }
    }
    assertNoneCrashed(t, d)
    await assertPaidOnce(t, d, ids)
  })

  t.test(`${name}: 500 postbacks across three instances, one SIGKILLed mid-burst: every fee paid once after its lease expires, Alma never over the limit`, async t => {
    const users = patrons('inst-', 500, 1)
    const limit = 25
    const d = await deployment(t, kind, 3, { users, env: { ALMA_RATE_LIMIT: String(limit) } })
    if (d === null) return
    const checkouts: Checkout[] = []
    for (const user of users) {
      checkouts.push(await d.ledger.createCheckout({
        id: `inst-${user.primaryId}`,
        userId: user.primaryId,
        primaryId: user.primaryId,
        patronName: user.lastName,
        email: user.email,
        currency: 'USD',
        lines: user.fees.map((fee, index) => ({
          lineNo: index + 1, feeId: fee.id, feeType: fee.type, feeTypeDesc: fee.typeDesc, owner: fee.owner, ownerDesc: fee.ownerDesc, title: fee.title, itemCode: 'LIB-FINE', amount: centsOf(fee.balance) as Cents
        }))
      }))
    }
    const bodies = checkouts.map(c => paidPostback(d.cashnet, checkoutFormFields(c, { refType: 'ALMACHECKOUT', signoutUrl: 'https://fines.example.edu/cashnet/return' })))
    const victim = d.instances[2]
    let killed = false
    let next = 0
    const statuses: number[] = []
    await Promise.all(Array.from({ length: 12 }, async () => {
      while (next < bodies.length) {
        const i = next++
        if (i === 250) {
          // mid-burst, with postings of its own in flight (claimed, some paid, some waiting for the Alma budget)
          killed = d.alma.calls.length > 0
          await victim.service.stop('SIGKILL')
        }
        let status = await postback(d.instances[i % 3], bodies[i])
        // CashNet retries what was not answered 200, here at another instance
        for (let retry = 1; status !== 200 && retry < 10; retry++) status = await postback(d.instances[(i + retry) % 2], bodies[i])
        statuses[i] = status
      }
    }))
    t.ok(killed, 'one instance was killed mid-burst, postings already under way')
    t.equal(statuses.filter(s => s === 200).length, 500, 'every postback answered 200 in the end')
    await until(async () => await d.shared.posted('inst-') === 500, 'all 500 posted', 240000)
    assertNoneCrashed(t, d)
    await assertPaidOnce(t, d, checkouts.map(c => c.id))
    t.ok(d.alma.maxCallsInAnySecond() <= limit, `at most ${limit} calls in any second at the sandbox (${d.alma.maxCallsInAnySecond()})`)
    t.equal(d.alma.calls.filter(c => c.status === 429).length, 0, 'Alma never answered 429')
  })

  t.test(`${name}: an instance SIGSTOPped mid-payment past its lease: another takes over and posts; woken, the stale holder pays and writes nothing`, async t => {
    const d = await deployment(t, kind, 2)
    if (d === null) return
    const [a, b] = d.instances
    const { fields } = await a.browser.login('carol').checkout()
    const id = checkoutIdFrom(fields)
    d.alma.holdPayments()
    t.equal(await postback(a, paidPostback(d.cashnet, fields)), 200)
    // the payment is at Alma, unanswered: either instance may have claimed the posting; pause that one
    await until(() => d.alma.heldPayments === 1, 'a payment in flight', 30000)
    const before = (await d.ledger.history(id))?.events.map(e => e.id) ?? []
    const leaseHolder = String(await d.shared.leaseHolder(id))
    const holder = d.instances.find(i => leaseHolder.includes(`:${i.service.child?.pid}:`))
    if (holder === undefined) throw new Error(`no instance holds the lease (${leaseHolder})`)
    const other = holder === a ? b : a
    holder.service.child?.kill('SIGSTOP')
    // Alma applies the held payment; its answer waits in the paused process's socket
    d.alma.releasePayments()
    t.equal(d.alma.paymentsFor((await d.ledger.getCheckout(id))?.tx as string).length, 1, 'Alma applied the paused holder\'s payment')
    await until(async () => (await d.ledger.getCheckout(id))?.state === 'POSTED', 'the other instance takes the posting over after the lease', 30000)
    const takenOver = await d.ledger.history(id)
    holder.service.child?.kill('SIGCONT')
    await until(() => holder.service.output.join('').includes('posting.lease_lost'), 'the woken holder to find its lease lost', 30000)
    await new Promise(resolve => setTimeout(resolve, 500))
    const after = await d.ledger.history(id)
    t.same(after, takenOver, 'nothing written by the stale holder once woken: no line, no event, no Alma call record')
    t.equal(d.alma.paymentsFor(after?.checkout.tx as string).length, 1, 'no fee paid twice')
    const recovered = after?.events.filter(e => !before.includes(e.id) && e.event === 'line.posted').map(e => JSON.parse(e.detail).recovered)
    t.same(recovered, ['Alma already shows this tx on the fee'], 'the new holder found the payment in Alma by its tx and did not pay again')
    t.match(other.service.output.join(''), 'payment.posted', 'the other instance posted it')
    t.equal((await send(`${holder.url}/healthz`).catch(() => ({ status: 0 }))).status, 200, 'the woken holder is still up, serving (its lost lease failed that posting, not the process)')
    assertNoneCrashed(t, d)
    await assertPaidOnce(t, d, [id])
  })

  t.test(`${name}: an instance SIGSTOPped while its payment waits for an Alma slot, past its lease: woken, it sends nothing`, async t => {
    // one Alma call a second: the payment waits about a second for its slot after the fee list, the holder is
    // paused in that wait, the other instance takes the posting over and pays; woken, the slot comes due
    const d = await deployment(t, kind, 2, { env: { ALMA_RATE_LIMIT: '1' } })
    if (d === null) return
    const [a] = d.instances
    const { fields } = await a.browser.login('carol').checkout()
    const id = checkoutIdFrom(fields)
    t.equal(await postback(a, paidPostback(d.cashnet, fields)), 200)
    await until(async () => (await d.ledger.history(id))?.events.some(e => e.event === 'line.pay_started') === true, 'a payment started', 30000)
    const leaseHolder = String(await d.shared.leaseHolder(id))
    const holder = d.instances.find(i => leaseHolder.includes(`:${i.service.child?.pid}:`))
    if (holder === undefined) throw new Error(`no instance holds the lease (${leaseHolder})`)
    holder.service.child?.kill('SIGSTOP')
    const tx = (await d.ledger.getCheckout(id))?.tx as string
    const pays = (): number => d.alma.calls.filter(c => c.method === 'POST' && c.query.op === 'pay' && c.query.external_transaction_id === tx).length
    t.equal(pays(), 0, 'paused while its payment waited for a slot: nothing sent yet')
    await until(async () => (await d.ledger.getCheckout(id))?.state === 'POSTED', 'the other instance takes the posting over after the lease', 30000)
    const takenOver = await d.ledger.history(id)
    const paidByOther = pays()
    holder.service.child?.kill('SIGCONT')
    await until(() => holder.service.output.join('').includes('posting.lease_lost'), 'the woken holder to find its lease lost', 30000)
    await new Promise(resolve => setTimeout(resolve, 1500))
    t.equal(pays(), paidByOther, 'the woken holder sent no payment: its lease is checked once its slot comes, before the call is written')
    t.same(await d.ledger.history(id), takenOver, 'and wrote nothing')
    assertNoneCrashed(t, d)
    await assertPaidOnce(t, d, [id])
  })

  t.test(`${name}: WEB_CONCURRENCY=2: two service processes answer; one killed is restarted by the primary; SIGTERM stops all`, async t => {
    const d = await deployment(t, kind, 1, { env: { WEB_CONCURRENCY: '2' } })
    if (d === null) return
    const [primary] = d.instances
    const started = (): number[] => [...primary.service.output.join('').matchAll(/"event":"service\.started","pid":(\d+)/g)].map(m => Number(m[1]))
    await until(() => started().length === 2, 'both service processes', 60000)
    const pids = started()
    t.equal(new Set(pids).size, 2, 'two processes, each with its own pid')
    t.not(pids[0], primary.service.child?.pid)
    for (let i = 0; i < 6; i++) t.equal((await send(`${primary.url}/healthz`)).status, 200)
    const { fields } = await primary.browser.checkout()
    const id = checkoutIdFrom(fields)
    t.equal(await postback(primary, paidPostback(d.cashnet, fields)), 200)
    await until(async () => (await d.ledger.getCheckout(id))?.state === 'POSTED', 'posted', 30000)
    process.kill(pids[0], 'SIGKILL')
    await until(() => started().length === 3, 'the primary to start another', 60000)
    t.match(primary.service.output.join(''), 'cluster.worker_died')
    t.notOk(pids.includes(started()[2]), 'a new process')
    for (let i = 0; i < 6; i++) t.equal((await send(`${primary.url}/healthz`)).status, 200, 'answered after the restart')
    t.equal(await primary.service.stop('SIGTERM'), 0, 'the primary exits 0 once every process has stopped')
    t.match(primary.service.output.join(''), 'cluster.stopped')
    await assertPaidOnce(t, d, [id])
  })
}

t.test('userobject mode, two processes on one ledger: signed in through one, served by the other; /logout on one ends the session on both', async t => {
  const d = await deployment(t, 'sqlite', 2, { env: { AUTH_MODE: 'userobject', SESSION_IDLE_MINUTES: '20', SESSION_TTL_MINUTES: '60' } })
  if (d === null) return
  const [a, b] = d.instances
  // alice signs in through the first instance, as a browser does: EZproxy's login, getToken, /auth/ezproxy, the page
  let answer = await a.browser.get('/')
  t.equal(answer.status, 302, 'the first instance sends the browser to EZproxy for a token')
  let at = new URL('/', a.ezproxy.url).toString()
  let sessionLine: string | undefined
  for (let i = 0; i < 8 && answer.status >= 300 && answer.status < 400; i++) {
    const lines = answer.headers['set-cookie']
    sessionLine ??= (Array.isArray(lines) ? lines : lines === undefined ? [] : [lines]).find(l => l.startsWith('acn_session='))
    at = new URL(String(answer.headers.location), at).toString()
    answer = await a.browser.request(at)
  }
  t.equal(answer.status, 200, 'signed in on the first instance')
  t.match(answer.body, 'Library fines and fees for Alice')
  t.ok(sessionLine, 'the first instance set the session cookie')
  const cookie = String(sessionLine).split(';')[0]
  const fines = async (instance: Instance): Promise<Answer> => await send(`${instance.url}/`, { headers: { cookie } })

  const served = await fines(b)
  t.equal(served.status, 200, 'the second process knows the session')
  t.match(served.body, 'Library fines and fees for Alice', 'and serves alice her page')
  t.equal((await fines(a)).status, 200, 'the first still does too')

  // the ledger holds only the SHA-256 of the id the cookie carries
  const signedValue = decodeURIComponent(cookie.slice('acn_session='.length))
  const id = signedValue.slice(0, signedValue.lastIndexOf('.'))
  const file = new Database(d.shared.env.DATABASE_PATH, { readonly: true })
  const rows = file.prepare('SELECT * FROM sessions').all() as Array<Record<string, unknown>>
  file.close()
  t.equal(rows.length, 1, 'one session in the ledger')
  t.equal(rows[0].id_hash, createHash('sha256').update(id).digest('hex'), 'keyed by the SHA-256 of the id')
  t.equal(rows[0].id_hash, sessionKey(id))
  t.notOk(JSON.stringify(rows).includes(id), 'the id itself is nowhere in the ledger')
  t.match(rows[0], { username: 'alice', kind: 'userobject', pay_link: null })

  // a restart ends no session: the first process killed and started again still knows it
  await a.service.stop()
  await a.service.start()
  t.equal((await fines(a)).status, 200, 'served by the restarted process')

  const out = await send(`${b.url}/logout`, { headers: { cookie } })
  t.equal(out.status, 302, 'signed out on the second process')
  for (const [name, instance] of [['first', a], ['second', b]] as const) {
    const after = await fines(instance)
    t.equal(after.status, 302, `the ${name} process no longer knows the session: sent to sign in`)
    t.match(String(after.headers.location), '/login?url=')
    t.notMatch(after.body, 'Alice')
  }
})
