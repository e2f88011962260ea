// npm run reconcile -- --paypal: real PayPal payments through the stack and the PayPal stand-in, then each kind of
// disagreement made at the stand-in (a capture the service never heard of, a capture that vanished, a capture
// for another amount, a refund whose webhook never came); the job must find each one and stay silent otherwise.

import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { parse } from 'csv-parse/sync'
import t, { type Test } from 'tap'
import { reconcilePayPal } from '../src/jobs/reconcile-paypal.ts'
import { SANDBOX_PAYPAL_CLIENT_ID, SANDBOX_PAYPAL_SECRET } from '../src/sandbox/stack.ts'
import { Browser, build, readForm, type TestStack, until } from './helper.ts'
import { tsNodeArgs } from './support/ts-child.ts'

// Many runs of the reconcile CLI, each a child process: past tap's 180 s beside the rest of the suite on 2 cores.
t.setTimeout(480_000)

const DAY = 86_400_000
const SINCE = new Date(Date.now() - DAY).toISOString().slice(0, 10)
const UNTIL = new Date(Date.now() + DAY).toISOString().slice(0, 10)

type PayPalStack = TestStack & { pp: NonNullable<TestStack['paypal']>, databasePath: string }

async function paypalStack (t: Test, options: Parameters<typeof build>[1] = {}): Promise<PayPalStack> {
  const databasePath = join(t.testdir(), 'ledger.sqlite')
  const stack = await build(t, { ...options, env: { PAYMENT_PROVIDER: 'paypal', DATABASE_PATH: databasePath, ...options.env } })
  if (stack.paypal === null) throw new Error('no PayPal stand-in')
  // PayPal's clock is not ours: its captures are stamped a minute behind the service's clock. The job ends its
  // range at its own "now", which must not miss what was just paid when this machine's clock is stepped back
  // a few seconds between a payment and the run (seen twice on CI's fresh VMs: the newest captures vanished).
  stack.paypal.now = () => new Date(Date.now() - 60_000)
  return { ...stack, pp: stack.paypal, databasePath }
}

/** A patron pays the chosen fees through the stand-in's approval page and comes back; answers the checkout id. */
async function payWithPayPal (stack: PayPalStack, user: string, feeIds: string[]): Promise<string> {
  const browser = new Browser(stack).login(user)
  const fines = await browser.get('/')
  const pay = readForm(fines.body, 'pay-form')
  const started = await browser.post('/checkout', [...pay.fields, ...feeIds.map((id): [string, string] => ['fee', id])])
  const approveUrl = String(started.headers.location)
  const page = await browser.request(approveUrl)
  const form = readForm(page.body)
  const decided = await browser.request(new URL(form.action, approveUrl).toString(), { method: 'POST', body: new URLSearchParams([...form.fields, ['action', 'approve']]).toString() })
  await browser.request(String(decided.headers.location))
  const checkoutId = stack.pp.orders.get(new URL(approveUrl).searchParams.get('token') ?? '')?.customId as string
  await stack.app.worker.idle()
  await until(async () => ['POSTED', 'NEEDS_ATTENTION'].includes((await stack.app.ledger.getCheckout(checkoutId))?.state ?? ''), 'recorded')
  return checkoutId
}

/** In process, over the service's PayPal client; the clock a few seconds ahead so the captures just made are in range. */
async function check (stack: PayPalStack, reportingLagMs?: number): ReturnType<typeof reconcilePayPal> {
  return await reconcilePayPal({ ledger: stack.app.ledger, paypal: stack.app.paypal as never, since: new Date(Date.now() - DAY), now: new Date(Date.now() + 5000), reportingLagMs })
}

interface Run { code: number | null, stdout: string, stderr: string }

async function runCli (stack: PayPalStack, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...tsNodeArgs(), 'scripts/reconcile.ts', ...args], {
      env: { PATH: process.env.PATH ?? '', DATABASE_PATH: stack.databasePath, PAYPAL_API_URL: stack.pp.url, PAYPAL_CLIENT_ID: SANDBOX_PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET: SANDBOX_PAYPAL_SECRET, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => { stdout += String(c) })
    child.stderr.on('data', (c) => { stderr += String(c) })
    child.on('error', reject)
    child.on('close', (code) => { resolve({ code, stdout, stderr }) })
  })
}

t.test('PayPal payments that agree: nothing found; the command is silent with exit 0', async t => {
  const stack = await paypalStack(t)
  await payWithPayPal(stack, 'alice', ['100001', '100003'])
  await payWithPayPal(stack, 'carol', ['300001'])
  const report = await check(stack, 0)
  t.same(report.findings, [])
  t.equal(report.checked.transactions, 2, 'both captures listed by PayPal')
  t.equal(report.checked.ledgerPayments, 2)
  t.ok(stack.pp.count('GET', '/v1/reporting/transactions') >= 1, 'Transaction Search was read')
  const run = await runCli(stack, ['--paypal', '--since', SINCE, '--until', UNTIL])
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stdout, '', 'silent: cron mails nothing')
  const json = await runCli(stack, ['--paypal', '--since', SINCE, '--json'])
  t.equal(json.code, 0, json.stderr)
  t.same(JSON.parse(json.stdout).findings, [])
})

t.test('each disagreement with PayPal is found, named, and makes the command exit 1', async t => {
  const stack = await paypalStack(t)
  const kept = await payWithPayPal(stack, 'alice', ['100001'])
  const vanished = await payWithPayPal(stack, 'carol', ['300001'])
  stack.pp.faults.captureAmountDeltaCents = 100
  const differs = await payWithPayPal(stack, 'zoe', ['400001'])
  stack.pp.faults.captureAmountDeltaCents = 0
  t.equal((await stack.app.ledger.getCheckout(differs))?.state, 'NEEDS_ATTENTION', 'the service saw the difference too')

  // a refund at PayPal whose webhook never reached the service
  stack.pp.webhookMode = 'held'
  const refunded = stack.pp.captures.find(c => c.customId === kept)
  if (refunded === undefined) throw new Error('no capture')
  const refund = await stack.pp.refund(refunded.id, 200)
  // a capture the ledger never recorded (made at PayPal for a checkout id the service does not know)
  const stray = { ...refunded, id: 'STRAYCAPTURE00001', customId: 'nosuchcheckout', invoiceId: 'nosuchcheckout', amountCents: 1234, value: '12.34', refunds: [] }
  stack.pp.captures.push(stray)
  // a capture PayPal no longer lists (the ledger recorded it; PayPal has no completed payment)
  const gone = stack.pp.captures.findIndex(c => c.customId === vanished)
  const goneId = stack.pp.captures[gone].id
  stack.pp.captures.splice(gone, 1)

  const report = await check(stack, 0)
  t.same(report.findings.map(f => [f.kind, f.tx, f.checkoutId, f.amount]), [
    ['paypal-not-in-ledger', 'STRAYCAPTURE00001', 'nosuchcheckout', 1234],
    ['paypal-missing', goneId, vanished, 250],
    ['paypal-amount-differs', stack.pp.captures.find(c => c.customId === differs)?.id, differs, 100],
    ['paypal-refund-not-recorded', refunded.id, kept, 200]
  ])
  const amounts = report.findings.find(f => f.kind === 'paypal-amount-differs')
  t.same([amounts?.ledgerAmount, amounts?.paypalAmount], [375, 475], 'both sides of the difference')
  t.match(report.findings.find(f => f.kind === 'paypal-refund-not-recorded')?.detail, refund.id, 'the refund is named')

  // the same refund recorded in the ledger (the webhook redelivered): no longer a finding
  await stack.pp.deliverHeld()
  t.equal((await stack.app.ledger.history(kept))?.refunds.length, 1, 'the refund is recorded now')
  const after = await check(stack, 0)
  t.notOk(after.findings.some(f => f.kind === 'paypal-refund-not-recorded'), 'a recorded refund agrees')

  // PayPal's reporting lags about 3 hours: a ledger payment that recent is not judged missing yet
  const lagging = await check(stack)
  t.notOk(lagging.findings.some(f => f.kind === 'paypal-missing'), 'too recent to call missing')
  t.ok(lagging.checked.tooRecent >= 1)

  const run = await runCli(stack, ['--paypal', '--since', SINCE, '--until', UNTIL])
  t.equal(run.code, 1, 'a person must look')
  t.match(run.stdout, 'Captured at PayPal, unknown to the ledger (paypal-not-in-ledger, 1)')
  t.match(run.stdout, 'STRAYCAPTURE00001')
  t.match(run.stdout, 'Amount or currency differs between PayPal and the ledger (paypal-amount-differs, 1)')
})

/**
 * PayPal captures a dollar more than alice's checkout (the payment is in front of staff), then refunds 1.00 of the
 * capture twice, its webhooks held; staff record one refund by hand under `reference` (a function of the two).
 */
async function twoRefundsOneByHand (t: Test, reference: (refunds: { first: string, second: string }) => string): Promise<{ stack: Awaited<ReturnType<typeof paypalStack>>, paid: string, first: string, second: string, staff: Browser }> {
  const stack = await paypalStack(t)
  stack.pp.faults.captureAmountDeltaCents = 100
  const paid = await payWithPayPal(stack, 'alice', ['100001'])
  stack.pp.faults.captureAmountDeltaCents = 0
  t.equal((await stack.app.ledger.getCheckout(paid))?.state, 'NEEDS_ATTENTION')
  stack.pp.webhookMode = 'held'
  const capture = stack.pp.captures.find(c => c.customId === paid)
  if (capture === undefined) throw new Error('no capture')
  const first = (await stack.pp.refund(capture.id, 100)).id
  const second = (await stack.pp.refund(capture.id, 100)).id
  const staff = new Browser(stack).login('staff')
  const page = await staff.get(`/admin/payments/${paid}`)
  const form = readForm(page.body.slice(page.body.indexOf('<form class="refund"')))
  const recorded = await staff.post(`/admin/payments/${paid}/refund`, [...form.fields.filter(([k]) => !['tx', 'amount', 'reference', 'note'].includes(k)), ['tx', capture.id], ['amount', '1.00'], ['reference', reference({ first, second })], ['note', 'refunded in PayPal']])
  t.equal(recorded.status, 303, 'one refund recorded by staff')
  return { stack, paid, first, second, staff }
}

t.test('two PayPal refunds of the same amount, one recorded by hand under another reference: the other is found', async t => {
  // staff record the first by hand, under a reference of their own
  const { stack, paid, first, second, staff } = await twoRefundsOneByHand(t, () => 'DESK-0001')
  const report = await check(stack, 0)
  const missing = report.findings.filter(f => f.kind === 'paypal-refund-not-recorded')
  t.equal(missing.length, 1, 'the one record accounts for one of the two refunds, not both')
  t.match(missing[0]?.detail, new RegExp(`refund (${first}|${second})`))

  // PayPal's webhooks arrive at last, twice: the refund staff recorded by hand is taken as PayPal's, not booked again
  await stack.pp.deliverHeld()
  for (const w of stack.pp.webhooks.filter(w => w.eventType === 'PAYMENT.CAPTURE.REFUNDED')) await stack.pp.redeliver(w)
  const history = await stack.app.ledger.history(paid)
  t.same(history?.refunds.map(r => [r.reference, r.amount]), [['DESK-0001', 100], [second, 100]],
    'two refunds recorded, as PayPal made two: the first webhook adopted DESK-0001, the second recorded its own')
  const adopted = history?.events.filter(e => e.event === 'paypal.refund_adopted') ?? []
  t.equal(adopted.length, 1, 'one audit event ties the hand-recorded refund to PayPal\'s')
  t.match(adopted[0]?.detail, first, 'and names PayPal\'s refund id')
  t.match(adopted[0]?.detail, 'DESK-0001')
  const csv = await staff.get(`/admin/reports?from=${SINCE}&to=${UNTIL}&format=csv`)
  t.equal(csv.status, 200)
  const rows = parse(csv.body, { columns: true }) as Array<Record<string, string>>
  const refundedCents = rows.reduce((sum, r) => sum + Math.round(Number(r.REFUNDED) * 100) + Math.round(Number(r.REFUNDED_UNPOSTED) * 100), 0)
  t.equal(refundedCents, 200, 'the report counts 2.00 refunded, what PayPal gave back, not 3.00')
  const after = await check(stack, 0)
  t.notOk(after.findings.some(f => f.kind === 'paypal-refund-not-recorded'), 'both PayPal refunds are accounted for')
})

t.test('two PayPal refunds of the same amount, the second recorded by hand under PayPal\'s own id: the first webhook does not take it for its own', async t => {
  // staff record the second by hand, typing PayPal's id as the form asks
  const { stack, paid, first, second, staff } = await twoRefundsOneByHand(t, refunds => refunds.second)
  // the first refund's webhook comes first (it could take the hand record: same capture, same amount), then the
  // second's; each twice
  await stack.pp.deliverHeld()
  for (const w of stack.pp.webhooks.filter(w => w.eventType === 'PAYMENT.CAPTURE.REFUNDED')) await stack.pp.redeliver(w)
  const history = await stack.app.ledger.history(paid)
  t.same(history?.refunds.map(r => [r.reference, r.amount]).sort(), [[first, 100], [second, 100]].sort(), 'both PayPal refunds recorded, once each')
  const after = await check(stack, 0)
  t.notOk(after.findings.some(f => f.kind === 'paypal-refund-not-recorded'), 'reconcile finds both')
  const csv = await staff.get(`/admin/reports?from=${SINCE}&to=${UNTIL}&format=csv`)
  const rows = parse(csv.body, { columns: true }) as Array<Record<string, string>>
  t.equal(rows.reduce((sum, r) => sum + Math.round(Number(r.REFUNDED) * 100) + Math.round(Number(r.REFUNDED_UNPOSTED) * 100), 0), 200, 'the report counts the 2.00 PayPal gave back')
})

t.test('bad use and an unreachable PayPal: exit 2 for usage, 1 when PayPal cannot be read', async t => {
  const stack = await paypalStack(t)
  const noSecret = await runCli(stack, ['--paypal', '--since', SINCE], { PAYPAL_CLIENT_SECRET: '' })
  t.equal(noSecret.code, 2)
  t.match(noSecret.stderr, 'PAYPAL_CLIENT_SECRET')
  const backwards = await runCli(stack, ['--paypal', '--since', SINCE, '--until', SINCE])
  t.equal(backwards.code, 2)
  t.match(backwards.stderr, 'must be after --since')
  const badDate = await runCli(stack, ['--paypal', '--since', SINCE, '--until', '2026-13-45'])
  t.equal(badDate.code, 2)
  const untilAlone = await runCli(stack, ['--since', SINCE, '--until', UNTIL], { ALMA_API_KEY: 'k' })
  t.equal(untilAlone.code, 2)
  t.match(untilAlone.stderr, '--until is for --paypal')
  const both = await runCli(stack, ['--paypal', '--since', SINCE, '--cashnet', 'package.json'])
  t.equal(both.code, 2)
  stack.pp.faults.tokenDown = true
  const down = await runCli(stack, ['--paypal', '--since', SINCE])
  t.equal(down.code, 1)
  t.match(down.stderr, 'could not read PayPal\'s Transaction Search')
  const wrong = await runCli(stack, ['--paypal', '--since', SINCE], { PAYPAL_CLIENT_SECRET: 'wrong' })
  t.equal(wrong.code, 1, 'refused credentials: nothing reconciled, and cron hears of it')
  const help = await runCli(stack, ['--help'])
  for (const text of ['--paypal', '--until', 'RECONCILE_UNTIL', 'PAYPAL_CLIENT_ID']) t.match(help.stdout, text)
})
