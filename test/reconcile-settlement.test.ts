// npm run reconcile at the edges the first suite (reconcile.test.ts) does not reach: a case left needing attention
// from before --since, CashNet's settlement file judged by the library's local days (its first to its last), the
// amount CashNet really collected (settled or missing from the file), refunds recorded after the file's last day, and
// PayPal payments beside it.

import Database from 'better-sqlite3'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { nextDay, today } from '../src/jobs/dates.ts'
import { reconcile, type ReconcileReport, type SettlementRow } from '../src/jobs/reconcile.ts'
import type { Checkout } from '../src/ledger/types.ts'
import { type Cents } from '../src/money.ts'
import { SANDBOX_API_KEY } from '../src/sandbox/stack.ts'
import { Browser, build, checkoutIdFrom, readForm, type TestStack, until } from './helper.ts'
import { runScript } from './jobs/cli.ts'

const DAY = 86_400_000

async function pay (stack: TestStack, user: string, feeIds?: string[]): Promise<string> {
  const browser = new Browser(stack).login(user)
  const { fields, action } = await browser.checkout(feeIds)
  await browser.payOnCashnet(action, fields)
  return checkoutIdFrom(fields)
}

async function checkout (stack: TestStack, id: string): Promise<Checkout> {
  const found = await stack.app.ledger.getCheckout(id)
  if (found === undefined) throw new Error(`no checkout ${id}`)
  return found
}

/** Moves a checkout's history back in time, as if it had been paid (and posted) `ms` earlier. */
function age (databasePath: string, id: string, ms: number): void {
  const db = new Database(databasePath)
  try {
    const back = (iso: string | null): string | null => iso === null ? null : new Date(Date.parse(iso) - ms).toISOString()
    const row = db.prepare('SELECT created_at, paid_at, updated_at FROM checkouts WHERE id = ?').get(id) as Record<string, string | null>
    db.prepare('UPDATE checkouts SET created_at = ?, paid_at = ?, updated_at = ? WHERE id = ?').run(back(row.created_at), back(row.paid_at), back(row.updated_at), id)
    for (const line of db.prepare('SELECT line_no, posted_at FROM checkout_lines WHERE checkout_id = ?').all(id) as Array<{ line_no: number, posted_at: string | null }>) {
      db.prepare('UPDATE checkout_lines SET posted_at = ? WHERE checkout_id = ? AND line_no = ?').run(back(line.posted_at), id, line.line_no)
    }
    for (const p of db.prepare('SELECT id, received_at FROM postbacks WHERE checkout_id = ?').all(id) as Array<{ id: number, received_at: string }>) {
      db.prepare('UPDATE postbacks SET received_at = ? WHERE id = ?').run(back(p.received_at), p.id)
    }
  } finally {
    db.close()
  }
}

async function run (stack: TestStack, since: Date, settlement: Array<Omit<SettlementRow, 'amount'> & { amount: number }>, timeZone: string): Promise<ReconcileReport> {
  return await reconcile({ ledger: stack.app.ledger, alma: stack.app.alma, since, timeZone, settlement: settlement.map(r => ({ ...r, amount: r.amount as Cents })) })
}

function cli (stack: TestStack, databasePath: string, args: string[], env: Record<string, string> = {}): ReturnType<typeof runScript> {
  return runScript('reconcile.ts', args, { DATABASE_PATH: databasePath, ALMA_API_URL: stack.alma.baseUrl, ALMA_API_KEY: SANDBOX_API_KEY, ...env })
}

t.test('a case left needing attention from before --since is reported on every run until staff settle it', async t => {
  const databasePath = join(t.testdir(), 'ledger.sqlite')
  const stack = await build(t, { env: { DATABASE_PATH: databasePath } })
  const zoe = new Browser(stack).login('zoe')
  const form = await zoe.checkout()
  stack.alma.payAtDesk('400002', 400)
  await zoe.payOnCashnet(form.action, form.fields)
  await stack.app.worker.idle()
  const id = checkoutIdFrom(form.fields)
  t.equal((await checkout(stack, id)).state, 'NEEDS_ATTENTION', 'zoe: 4.00 could not be applied')
  age(databasePath, id, 10 * DAY)

  const report = await cli(stack, databasePath, ['--json'])
  t.equal(report.code, 1, 'a stuck payment is never "nothing to do"')
  const findings = (JSON.parse(report.stdout) as ReconcileReport).findings
  t.match(findings, [{ kind: 'amount-difference', checkoutId: id, amount: 400 }], 'the unapplied 4.00 of ten days ago')
  t.equal(findings.length, 1)

  const staff = new Browser(stack).login('staff')
  const page = await staff.get(`/admin/payments/${id}`)
  const settle = readForm(page.body.slice(page.body.indexOf('<form class="resolve"')))
  t.equal((await staff.post(`/admin/payments/${id}/resolve`, [...settle.fields, ['resolution', 'refunded 4.00 in CashNet']])).status, 303)
  const after = await cli(stack, databasePath, [])
  t.equal(after.code, 0, after.stdout)
  t.equal(after.stdout, '', 'settled by staff: nothing left to say')
})

t.test('not-settled: only a CashNet payment whose local paid day lies within the file\'s first..last dates', async t => {
  const databasePath = join(t.testdir(), 'ledger.sqlite')
  const stack = await build(t, { env: { DATABASE_PATH: databasePath } })
  const alice = await pay(stack, 'alice', ['100001'])
  const carol = await pay(stack, 'carol')
  await stack.app.worker.idle()
  const paidAt = (await checkout(stack, alice)).paidAt as string
  const aliceTx = (await checkout(stack, alice)).tx as string
  const carolTx = (await checkout(stack, carol)).tx as string
  // A zone whose day at the payment differs from UTC's: west of UTC early in the UTC day, east of it later.
  const utcDay = paidAt.slice(0, 10)
  const zone = today('Pacific/Pago_Pago', new Date(paidAt)) !== utcDay ? 'Pacific/Pago_Pago' : 'Pacific/Kiritimati'
  const localDay = today(zone, new Date(paidAt))
  t.not(localDay, utcDay, `${zone}: paid on ${localDay} there, ${utcDay} in UTC`)
  const since = new Date(Date.now() - 3 * DAY)
  const notSettled = async (first: string, last: string): Promise<string[]> => {
    const rows = [{ tx: carolTx, amount: 250, date: first, line: 2 }, { tx: carolTx, amount: 0, date: last, line: 3 }]
    return (await run(stack, since, rows, zone)).findings.filter(f => f.kind === 'not-settled').map(f => f.tx)
  }
  t.same(await notSettled(localDay, localDay), [aliceTx], 'the file of the local day the patron paid must list it')
  t.same(await notSettled(utcDay, utcDay), [], 'the file of the UTC day is not the day it was paid')
  t.same(await notSettled(nextDay(localDay), nextDay(nextDay(localDay))), [], 'a file starting after the payment\'s day knows nothing of it')

  const csv = join(databasePath, '..', 'settlement.csv')
  writeFileSync(csv, `tx,amount,date\n${carolTx},2.50,${localDay}\n`)
  const run1 = await cli(stack, databasePath, ['--json', '--cashnet', csv], { TIMEZONE: zone })
  t.equal(run1.code, 1, run1.stderr)
  t.match((JSON.parse(run1.stdout) as ReconcileReport).findings, [{ kind: 'not-settled', tx: aliceTx, detail: `paid on ${localDay}` }], 'the command judges days in TIMEZONE')
})

t.test('the settled amount expected is what CashNet collected, less only the refunds recorded by the file\'s last day', async t => {
  const databasePath = join(t.testdir(), 'ledger.sqlite')
  const stack = await build(t, { env: { DATABASE_PATH: databasePath } })
  // CashNet collected 1.00 less than carol's 2.50 checkout: nothing is posted, staff are told.
  stack.cashnet.behaviour.tamperAmount1Cents = -100
  const short = await pay(stack, 'carol')
  await stack.app.worker.idle()
  t.equal((await checkout(stack, short)).state, 'NEEDS_ATTENTION')
  // carol paid yesterday; today staff refund 0.50 of the 1.50 collected, after yesterday's settlement file was made.
  age(databasePath, short, DAY)
  const staff = new Browser(stack).login('staff')
  const page = await staff.get(`/admin/payments/${short}`)
  const refund = readForm(page.body.slice(page.body.indexOf('<form class="refund"')))
  const answer = await staff.post(`/admin/payments/${short}/refund`, [...refund.fields, ['amount', '0.50'], ['reference', 'RF-1'], ['note', 'part refund']])
  t.equal(answer.status, 303, answer.body)
  t.equal((await stack.app.ledger.moneyRecord(short))?.refunds.length, 1, 'the refund is recorded today')

  const tx = (await checkout(stack, short)).tx as string
  const yesterday = today('UTC', new Date((await checkout(stack, short)).paidAt as string))
  const since = new Date(Date.now() - 3 * DAY)
  const differs = async (rows: Array<{ amount: number, date: string }>): Promise<unknown[]> =>
    (await run(stack, since, rows.map((r, i) => ({ ...r, tx, line: i + 2 })), 'UTC')).findings.filter(f => f.kind === 'settled-amount-differs')
  t.same(await differs([{ amount: 150, date: yesterday }]), [], 'yesterday\'s file: the 1.50 CashNet collected, today\'s refund not in it')
  t.same(await differs([{ amount: 150, date: yesterday }, { amount: -50, date: nextDay(yesterday) }]), [], 'a file through today nets the refund')
  t.match(await differs([{ amount: 150, date: yesterday }, { amount: 0, date: nextDay(yesterday) }]), [{ tx, amount: 50, ledgerAmount: 100, cashnetAmount: 150 }], 'and misses it when it is not there')
  t.match(await differs([{ amount: 250, date: yesterday }]), [{ tx, amount: 100, ledgerAmount: 150, cashnetAmount: 250, detail: /the ledger recorded 1\.50 collected/ }], 'the checkout\'s 2.50 is not what was collected')
  // a file of that day without the tx: the money at stake is the 1.50 collected, not the 2.50 checkout
  const other = await pay(stack, 'alice', ['100001'])
  const unlisted = (await run(stack, since, [{ tx: (await checkout(stack, other)).tx as string, amount: 500, date: yesterday, line: 2 }], 'UTC')).findings.filter(f => f.kind === 'not-settled')
  t.match(unlisted, [{ tx, amount: 150, ledgerAmount: 150, detail: /1\.50 collected of a 2\.50 checkout/ }], 'not settled: what CashNet collected')
})

t.test('PayPal payments are not judged against CashNet\'s settlement', async t => {
  const stack = await build(t, { env: { PAYMENT_PROVIDER: 'paypal' } })
  const pp = stack.paypal
  if (pp === null) throw new Error('no PayPal stand-in')
  const browser = new Browser(stack).login('alice')
  const pay = readForm((await browser.get('/')).body, 'pay-form')
  const started = await browser.post('/checkout', [...pay.fields, ['fee', '100001']])
  const approveUrl = String(started.headers.location)
  const approval = readForm((await browser.request(approveUrl)).body)
  const decided = await browser.request(new URL(approval.action, approveUrl).toString(), { method: 'POST', body: new URLSearchParams([...approval.fields, ['action', 'approve']]).toString() })
  await browser.request(String(decided.headers.location))
  const id = pp.orders.get(new URL(approveUrl).searchParams.get('token') ?? '')?.customId as string
  await stack.app.worker.idle()
  await until(async () => (await checkout(stack, id)).state === 'POSTED', 'posted')

  const day = today('UTC')
  const report = await run(stack, new Date(Date.now() - DAY), [{ tx: 'CN-1', amount: 100, date: day, line: 2 }], 'UTC')
  t.same(report.findings.map(f => [f.kind, f.tx]), [['settled-unknown', 'CN-1']], 'the PayPal capture is not "missing from CashNet\'s settlement"')
})
