// Refunds in the GL journal and the staff report, over real HTTP: patrons pay on the CashNet (or PayPal) sandbox,
// the service posts to the Alma sandbox, staff record refunds on /admin a day later, and export:gl runs as cron
// runs it. The ledger's clock is set three days back (day 1) and moved to the next day (day 2) for the refunds,
// so both days are over. The bursar's rule is the judge: the clearing account holds the money booked, so over the
// two days it equals what the provider kept (collected less refunded) less what it holds that Alma never took;
// a refund of money never credited to revenue touches neither revenue nor clearing. /admin/reports equals the
// journals to the cent, and shows the refund of unposted money as its own figure.

import { join } from 'node:path'
import { parse } from 'csv-parse/sync'
import t, { type Test } from 'tap'
import type { Checkout } from '../../src/ledger/types.ts'
import { Browser, build, checkoutIdFrom, readForm, type TestStack, until } from '../helper.ts'
import { csvFile, runScript, tempDir } from './cli.ts'

const DAY_MS = 86400000
const DAY1_NOON = Math.floor(Date.now() / DAY_MS) * DAY_MS - 3 * DAY_MS + 12 * 3600000
const DAY1 = new Date(DAY1_NOON).toISOString().slice(0, 10)
const DAY2 = new Date(DAY1_NOON + DAY_MS).toISOString().slice(0, 10)

type Row = Record<string, string>

const centsOf = (value: string): number => Math.round(Number(value) * 100)
const sum = (rows: Row[], column: string): number => rows.reduce((s, r) => s + centsOf(r[column]), 0)

interface Fixture { stack: TestStack, dir: string, day2: () => void, staff: Browser }

/** The stack on a ledger file, its clock at noon of day 1 until day2() moves it a day on. */
async function fixture (t: Test, env: Record<string, string> = {}): Promise<Fixture> {
  const dir = tempDir(t)
  const clock = { offset: DAY1_NOON - Date.now() }
  const stack = await build(t, { env: { DATABASE_PATH: join(dir, 'ledger.sqlite'), TIMEZONE: 'UTC', ...env }, app: { ledgerNow: () => new Date(Date.now() + clock.offset) } })
  return { stack, dir, day2: () => { clock.offset += DAY_MS }, staff: new Browser(stack).login('staff') }
}

async function checkout (stack: TestStack, id: string): Promise<Checkout> {
  return await stack.app.ledger.getCheckout(id) as Checkout
}

async function reaches (stack: TestStack, id: string, state: Checkout['state']): Promise<Checkout> {
  await until(async () => (await checkout(stack, id)).state === state, `${id} ${state}`)
  return await checkout(stack, id)
}

/** alice pays fee 100001 ($5.00) through the PayPal sandbox, and the payment is posted to Alma. */
async function paidOnPayPalAndPosted (t: Test): Promise<{ f: Fixture, stack: TestStack, pp: NonNullable<TestStack['paypal']>, id: string }> {
  const f = await fixture(t, { PAYMENT_PROVIDER: 'paypal' })
  const { stack } = f
  const pp = stack.paypal as NonNullable<TestStack['paypal']>
  const alice = new Browser(stack).login('alice')
  const fines = await alice.get('/')
  const pay = readForm(fines.body, 'pay-form')
  const started = await alice.post('/checkout', [...pay.fields, ['fee', '100001']])
  const approveUrl = String(started.headers.location)
  const approval = await alice.request(approveUrl)
  const decision = readForm(approval.body)
  const decided = await alice.request(new URL(decision.action, approveUrl).toString(), { method: 'POST', body: new URLSearchParams([...decision.fields, ['action', 'approve']]).toString() })
  await alice.request(String(decided.headers.location))
  const id = pp.orders.get(new URL(approveUrl).searchParams.get('token') ?? '')?.customId as string
  await reaches(stack, id, 'POSTED')
  return { f, stack, pp, id }
}

/** A patron pays the fees on the CashNet sandbox (beforePaying: after the checkout is made); its id and CashNet's tx. */
async function paysOnCashnet (stack: TestStack, username: string, feeIds: string[], beforePaying?: () => void): Promise<{ id: string, tx: string }> {
  const patron = new Browser(stack).login(username)
  const { fields, action } = await patron.checkout(feeIds)
  const id = checkoutIdFrom(fields)
  beforePaying?.()
  await patron.payOnCashnet(action, fields)
  await until(async () => (await checkout(stack, id)).tx !== null, `${id} paid`)
  return { id, tx: (await checkout(stack, id)).tx as string }
}

/** Staff record a refund on the payment's page, of the tx the page offers. */
async function refund (f: Fixture, id: string, amount: string, reference: string): Promise<void> {
  const page = (await f.staff.get(`/admin/payments/${id}`)).body
  const form = readForm(page.slice(page.indexOf('<form class="refund"')))
  const tx = form.fields.find(([k]) => k === 'tx')?.[1] ?? /<option value="([^"]+)"/.exec(page)?.[1] ?? ''
  const answer = await f.staff.post(`/admin/payments/${id}/refund`, [...form.fields.filter(([k]) => k !== 'tx'), ['tx', tx], ['amount', amount], ['reference', reference], ['note', 'refunded']])
  if (answer.status !== 303) throw new Error(`refund answered ${answer.status}: ${answer.body.slice(0, 300)}`)
  await f.stack.app.worker.idle()
}

/** The journals of day 1 and day 2 from export:gl, run as cron runs it. */
async function journals (t: Test, dir: string): Promise<Record<string, Row[]>> {
  const out: Record<string, Row[]> = {}
  for (const date of [DAY1, DAY2]) {
    const run = await runScript('export-gl.ts', ['--date', date, '--out', join(dir, 'out')],
      { DATABASE_PATH: join(dir, 'ledger.sqlite'), GL_MAP_FILE: 'config/gl-map.example.json', TIMEZONE: 'UTC' })
    t.equal(run.code, 0, run.stderr)
    out[date] = csvFile(join(dir, 'out', `gl-journal-${date}.csv`))
  }
  return out
}

const feeLines = (rows: Row[]): Row[] => rows.filter(r => r.ALMA_FEE_ID !== '')
const clearingLines = (rows: Row[]): Row[] => rows.filter(r => r.ALMA_FEE_ID === '')

/** Every journal balances, and the report's POSTED and REFUNDED are its credit and refund lines, day by day. */
async function reportEqualsJournals (t: Test, f: Fixture, byDay: Record<string, Row[]>): Promise<Row[]> {
  const answer = await f.staff.get(`/admin/reports?from=${DAY1}&to=${DAY2}&format=csv`)
  t.equal(answer.status, 200)
  const report = parse(answer.body, { columns: true }) as Row[]
  for (const [date, rows] of Object.entries(byDay)) {
    t.equal(sum(rows, 'MONETARY_AMOUNT'), 0, `${date}: the journal balances`)
    const lines = feeLines(rows)
    const day = report.filter(r => r.DATE === date)
    t.equal(sum(day, 'POSTED'), -sum(lines.filter(l => centsOf(l.MONETARY_AMOUNT) < 0), 'MONETARY_AMOUNT'), `${date}: POSTED equals the journal's credit lines`)
    t.equal(sum(day, 'REFUNDED'), sum(lines.filter(l => centsOf(l.MONETARY_AMOUNT) > 0), 'MONETARY_AMOUNT'), `${date}: REFUNDED equals the journal's refund lines`)
  }
  return report
}

/** A line's net over both days, per fee id (revenue) or in all (clearing). */
function net (byDay: Record<string, Row[]>, pick: (rows: Row[]) => Row[]): number {
  return Object.values(byDay).reduce((s, rows) => s + sum(pick(rows), 'MONETARY_AMOUNT'), 0)
}

t.test('a double charge refunded the next day: the fee\'s revenue stays credited 10.00, clearing holds 10.00, the report agrees', async t => {
  const f = await fixture(t)
  const { stack } = f
  const { id, tx } = await paysOnCashnet(stack, 'zoe', ['400002'])
  await reaches(stack, id, 'POSTED')
  const second = `${tx}9`
  const c = await checkout(stack, id)
  const sent = await stack.cashnet.sendPostback({ result: '0', respmessage: 'SUCCESS', tx: second, custcode: c.primaryId, itemcnt: '1', itemcode1: c.lines[0].itemCode, amount1: '10.00', ref1type1: 'ALMACHECKOUT', ref1val1: id })
  t.equal(sent.status, 200)
  t.equal((await reaches(stack, id, 'NEEDS_ATTENTION')).attentionKind, 'DOUBLE_CHARGE')

  f.day2()
  await refund(f, id, '10.00', 'RF-DC')
  t.equal((await checkout(stack, id)).state, 'POSTED', 'the refund closed the double charge')
  t.same(stack.alma.paymentsFor(tx), [{ feeId: '400002', amountCents: 1000 }], 'Alma shows the fee paid once')

  const byDay = await journals(t, f.dir)
  t.equal(net(byDay, rows => feeLines(rows).filter(r => r.ALMA_FEE_ID === '400002')), -1000, 'the fee\'s revenue nets a 10.00 credit over the two days')
  t.equal(net(byDay, clearingLines), 1000, 'clearing nets 10.00: 20.00 collected, 10.00 refunded')
  t.same(byDay[DAY2], [], 'the refund of the second charge is in no journal: it was never revenue')
  const report = await reportEqualsJournals(t, f, byDay)
  t.same(report.filter(r => r.DATE === DAY2).map(r => [r.FEE_TYPE, r.REFUNDED, r.REFUNDED_UNPOSTED]), [['LOSTITEMPROCESSFEE', '0.00', '10.00']],
    'the report shows the refund as money refunded that was never posted')
})

t.test('an UNAPPLIED payment refunded: no revenue line and no clearing line on either day', async t => {
  const f = await fixture(t)
  const { stack } = f
  const { id } = await paysOnCashnet(stack, 'carol', ['300001'], () => { stack.alma.closeFee('300001') })
  t.equal((await reaches(stack, id, 'NEEDS_ATTENTION')).attentionKind, 'UNAPPLIED')

  f.day2()
  await refund(f, id, '2.50', 'RF-UN')
  const byDay = await journals(t, f.dir)
  t.same(byDay[DAY1], [], 'day 1: nothing was posted')
  t.same(byDay[DAY2], [], 'day 2: the refund returns money that was never revenue')
  const report = await reportEqualsJournals(t, f, byDay)
  t.same(report.map(r => [r.DATE, r.POSTED, r.REFUNDED, r.UNPOSTED, r.REFUNDED_UNPOSTED]), [[DAY1, '0.00', '0.00', '2.50', '0.00'], [DAY2, '0.00', '0.00', '0.00', '2.50']],
    'taken and not posted on day 1, refunded on day 2, and nothing hidden')
})

t.test('part refunds of a checkout with posted and unposted money: the unposted money first, once, then the posted money', async t => {
  const f = await fixture(t)
  const { stack } = f
  const { id } = await paysOnCashnet(stack, 'alice', ['100001', '100002', '100003'], () => { stack.alma.closeFee('100003') })
  const c = await reaches(stack, id, 'NEEDS_ATTENTION')
  t.equal(c.attentionKind, 'UNAPPLIED')
  t.same(c.lines.map(l => l.postedAmount), [500, 4550, 0], '50.50 posted, 12.25 not')

  f.day2()
  await refund(f, id, '10.00', 'RF-1')
  await refund(f, id, '5.00', 'RF-2')
  const byDay = await journals(t, f.dir)
  t.same(feeLines(byDay[DAY2]).map(r => [r.ALMA_FEE_ID, r.ACCOUNT, r.MONETARY_AMOUNT, r.JRNL_LN_REF, r.CASHNET_TX]), [['100001', '450110', '2.75', 'refund RF-2', c.tx]],
    'RF-1 and 2.25 of RF-2 return the 12.25 Alma never took; only the other 2.75 of RF-2 is a refund of revenue')
  t.same(clearingLines(byDay[DAY2]).map(r => r.MONETARY_AMOUNT), ['-2.75'])
  t.equal(net(byDay, clearingLines), 6275 - 1500, 'clearing: 62.75 collected less 15.00 refunded, nothing left unposted')
  t.equal(net(byDay, rows => feeLines(rows).filter(r => r.ALMA_FEE_ID === '100001')), -225)
  t.equal(net(byDay, rows => feeLines(rows).filter(r => r.ALMA_FEE_ID === '100003')), 0, 'the fee Alma never took has no line at all')
  const report = await reportEqualsJournals(t, f, byDay)
  t.same(report.filter(r => r.DATE === DAY2).map(r => [r.FEE_TYPE, r.OWNER, r.REFUNDED, r.REFUNDED_UNPOSTED]),
    [['DAMAGEDITEMFINE', 'LAW', '0.00', '12.25'], ['OVERDUEFINE', 'MAIN', '2.75', '0.00']])
  const page = await f.staff.get(`/admin/reports?from=${DAY1}&to=${DAY2}`)
  t.match(page.body, '$2.75 refunded')
  t.match(page.body, '$12.25 refunded that was never posted')
})

t.test('a refund of posted money (PayPal refunds a posted capture) is booked as before: revenue and PayPal clearing', async t => {
  const { f, stack, pp, id } = await paidOnPayPalAndPosted(t)

  f.day2()
  await pp.refund(pp.captures[0].id, 200)
  await reaches(stack, id, 'NEEDS_ATTENTION')
  const byDay = await journals(t, f.dir)
  t.same(byDay[DAY2].map(r => [r.ALMA_FEE_ID, r.ACCOUNT, r.MONETARY_AMOUNT, r.LINE_DESCR]), [
    ['100001', '450110', '2.00', 'REFUND OVERDUEFINE 100001'],
    ['', '101510', '-2.00', `PayPal receipts ${DAY2}`]
  ], 'the refund debits the fee\'s revenue and credits PayPal\'s clearing account')
  t.equal(net(byDay, clearingLines), 300)
  const report = await reportEqualsJournals(t, f, byDay)
  t.same(report.filter(r => r.DATE === DAY2).map(r => [r.FEE_TYPE, r.REFUNDED, r.REFUNDED_UNPOSTED]), [['OVERDUEFINE', '2.00', '0.00']])
})

t.test('money PayPal takes back by itself (a reversal) is booked as a refund is, marked REVERSAL, and the report counts it refunded and reversed', async t => {
  const { f, stack, pp, id } = await paidOnPayPalAndPosted(t)

  f.day2()
  const reversal = await pp.reverse(pp.captures[0].id)
  await reaches(stack, id, 'NEEDS_ATTENTION')
  const byDay = await journals(t, f.dir)
  t.same(byDay[DAY2].map(r => [r.ALMA_FEE_ID, r.ACCOUNT, r.MONETARY_AMOUNT, r.LINE_DESCR]), [
    ['100001', '450110', '5.00', 'REVERSAL OVERDUEFINE 100001'],
    ['', '101510', '-5.00', `PayPal receipts ${DAY2}`]
  ], 'the money taken back debits the fee\'s revenue and credits PayPal\'s clearing account, as a refund would')
  t.match(byDay[DAY2][0], { JRNL_LN_REF: `reversal ${reversal.id}` }, 'the line names the reversal')
  const summary = await runScript('export-gl.ts', ['--date', DAY2, '--out', join(f.dir, 'out')], { DATABASE_PATH: join(f.dir, 'ledger.sqlite'), GL_MAP_FILE: 'config/gl-map.example.json', TIMEZONE: 'UTC' })
  t.match(summary.stderr, `${DAY2} USD: 0 fee line(s), 1 refund line(s), 1 clearing line(s)`, 'the summary counts the reversal line among the refunds, not the fees')
  t.equal(net(byDay, clearingLines), 0, 'clearing holds nothing of a payment PayPal took back')
  const report = await reportEqualsJournals(t, f, byDay)
  t.same(report.filter(r => r.DATE === DAY2).map(r => [r.FEE_TYPE, r.REFUNDED, r.REFUNDED_UNPOSTED, r.REVERSED]), [['OVERDUEFINE', '5.00', '0.00', '5.00']])
  const page = await f.staff.get(`/admin/reports?from=${DAY1}&to=${DAY2}`)
  t.match(page.body, '$5.00 taken back by PayPal')
})

/** alice pays 100001 ($5.00) and 100003 ($12.25) on PayPal; Alma closes 100003 before the posting: 5.00 posted, 12.25 unapplied. */
async function paidOnPayPalPartlyUnapplied (t: Test): Promise<{ f: Fixture, stack: TestStack, pp: NonNullable<TestStack['paypal']>, id: string, capture: string }> {
  const f = await fixture(t, { PAYMENT_PROVIDER: 'paypal' })
  const { stack } = f
  const pp = stack.paypal as NonNullable<TestStack['paypal']>
  const alice = new Browser(stack).login('alice')
  const pay = readForm((await alice.get('/')).body, 'pay-form')
  const started = await alice.post('/checkout', [...pay.fields, ['fee', '100001'], ['fee', '100003']])
  const approveUrl = String(started.headers.location)
  stack.alma.closeFee('100003')
  const decision = readForm((await alice.request(approveUrl)).body)
  const decided = await alice.request(new URL(decision.action, approveUrl).toString(), { method: 'POST', body: new URLSearchParams([...decision.fields, ['action', 'approve']]).toString() })
  await alice.request(String(decided.headers.location))
  const id = pp.orders.get(new URL(approveUrl).searchParams.get('token') ?? '')?.customId as string
  const c = await reaches(stack, id, 'NEEDS_ATTENTION')
  t.equal(c.attentionKind, 'UNAPPLIED')
  t.same(c.lines.map(l => l.postedAmount), [500, 0], '5.00 posted, 12.25 not')
  return { f, stack, pp, id, capture: c.tx as string }
}

t.test('a PayPal refund staff recorded by hand, then PayPal\'s webhook for it: taken as the same refund, booked once', async t => {
  const { f, stack, pp, id, capture } = await paidOnPayPalPartlyUnapplied(t)

  f.day2()
  pp.webhookMode = 'held'
  const made = await pp.refund(capture, 1225)
  await refund(f, id, '12.25', 'DESK-0001')
  await pp.deliverHeld()
  await pp.redeliver(pp.webhooks[pp.webhooks.length - 1])
  await stack.app.worker.idle()
  const history = await stack.app.ledger.history(id)
  t.same(history?.refunds.map(r => [r.reference, r.amount]), [['DESK-0001', 1225]], 'one refund row: staff\'s, not a second from the webhook')
  t.match(history?.events.find(e => e.event === 'paypal.refund_adopted')?.detail, made.id, 'an audit event ties it to PayPal\'s refund id')
  t.ok(stack.logLines().some(l => l.event === 'paypal.refund_adopted' && l.refund === made.id))

  const byDay = await journals(t, f.dir)
  t.same(byDay[DAY2], [], 'the refund returns the 12.25 Alma never took: no journal line, and no second refund taking posted money')
  t.equal(net(byDay, rows => feeLines(rows).filter(r => r.ALMA_FEE_ID === '100001')), -500, 'the posted fee keeps its revenue')
  const report = await reportEqualsJournals(t, f, byDay)
  t.same(report.filter(r => r.DATE === DAY2).map(r => [r.FEE_TYPE, r.REFUNDED, r.REFUNDED_UNPOSTED]), [['DAMAGEDITEMFINE', '0.00', '12.25']], 'the report shows the refund once')
})

t.test('a PayPal refund webhook that would take more back than the capture collected (a hand entry of another amount) is not booked: staff are told', async t => {
  const { f, stack, pp, id, capture } = await paidOnPayPalPartlyUnapplied(t)

  f.day2()
  pp.webhookMode = 'held'
  const made = await pp.refund(capture, 1300)
  await refund(f, id, '12.25', 'DESK-0002') // staff typed another amount than PayPal refunded
  await pp.deliverHeld()
  await stack.app.worker.idle()
  const history = await stack.app.ledger.history(id)
  t.same(history?.refunds.map(r => [r.reference, r.amount]), [['DESK-0002', 1225]], 'nothing beyond the 17.25 collected is booked')
  t.ok(history?.events.some(e => e.event === 'paypal.refund_beyond_collected' && e.detail.includes(made.id)), 'the refused refund is in the audit trail')
  t.ok(stack.logLines().some(l => l.event === 'paypal.refund_beyond_collected' && l.refund === made.id), 'and in the log')
  t.equal((await checkout(stack, id)).state, 'NEEDS_ATTENTION', 'still in front of staff')
  const byDay = await journals(t, f.dir)
  t.same(byDay[DAY2], [], 'no refund of posted money is booked')
  await reportEqualsJournals(t, f, byDay)
})
