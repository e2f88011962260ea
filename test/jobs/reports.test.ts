// Issue 19: the staff report's totals against export:gl. A real SQLite ledger is filled at chosen instants around
// midnight in Los Angeles (payments either side of it, a refund of money Alma never took in two parts, then one of
// posted money, a payment never posted), then the service's /admin/reports (TIMEZONE=America/Los_Angeles) and
// export:gl (TIMEZONE, no GL_TIMEZONE) are asked about the same days: POSTED per day must be the journal's credit
// lines to the cent, REFUNDED its refund lines; REFUNDED_UNPOSTED is the refunds that no journal line shows.

import { join } from 'node:path'
import { parse } from 'csv-parse/sync'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.ts'
import { spreadRefund } from '../../src/jobs/refund-lines.ts'
import { BadRange, reportDays } from '../../src/jobs/reports.ts'
import { SqliteLedger } from '../../src/ledger/sqlite/index.ts'
import type { Checkout, RefundRecord } from '../../src/ledger/types.ts'
import { type Cents, cents } from '../../src/money.ts'
import { refundEffect, whyRefundRefused } from '../../src/payments/staff-actions.ts'
import { Browser, build, send, UNTRUSTED_PEER } from '../helper.ts'
import { csvFile, runScript, tempDir } from './cli.ts'

const ZONE = 'America/Los_Angeles'

interface Fee { feeType: string, owner: string, amount: number, postedAt?: string }

async function fillLedger (path: string): Promise<void> {
  let clock = new Date('2026-10-05T12:00:00Z')
  const ledger = new SqliteLedger({ path, now: () => clock })
  let n = 0
  const pay = async (user: string, tx: string, paidAt: string, fees: Fee[]): Promise<string> => {
    const id = `checkout-${++n}`
    clock = new Date(paidAt)
    await ledger.createCheckout({
      id,
      userId: user,
      primaryId: user,
      patronName: user,
      email: '',
      currency: 'USD',
      lines: fees.map((f, i) => ({ lineNo: i + 1, feeId: `${id}-${i + 1}`, feeType: f.feeType, feeTypeDesc: f.feeType, owner: f.owner, ownerDesc: f.owner, title: 't', itemCode: 'LIB-FINE', amount: f.amount as Cents }))
    })
    await ledger.recordPostback({ checkoutId: id, peer: '127.0.0.4', result: '0', tx, rawBody: `result=0&tx=${tx}`, items: fees.map(f => ({ itemCode: 'LIB-FINE', amount: f.amount as Cents, qty: 1 })) },
      () => ({ outcome: 'PAID', reason: 'ok', to: 'PAID', payment: { tx, batchno: 'B1', effdate: paidAt.slice(0, 10), pmtcode: 'VISA' } }))
    for (const [i, f] of fees.entries()) {
      if (f.postedAt === undefined) continue
      clock = new Date(f.postedAt)
      await ledger.markLinePosted(id, i + 1, f.amount as Cents, { tx })
    }
    if (fees.every(f => f.postedAt !== undefined)) await ledger.transition({ checkoutId: id, from: ['PAID'], to: 'POSTED', event: 'posting.done' })
    return id
  }
  // the 5th in Los Angeles (PDT, UTC-7)
  await pay('alice', '7001', '2026-10-05T16:59:00Z', [
    { feeType: 'OVERDUEFINE', owner: 'MAIN', amount: 500, postedAt: '2026-10-05T17:00:00Z' },
    { feeType: 'LOSTITEMREPLACEMENTFEE', owner: 'LAW', amount: 4550, postedAt: '2026-10-05T17:00:01Z' }
  ])
  // 23:30 on the 5th in Los Angeles, already the 6th in UTC
  await pay('carol', '7002', '2026-10-06T06:29:00Z', [{ feeType: 'OVERDUEFINE', owner: 'MAIN', amount: 250, postedAt: '2026-10-06T06:30:00Z' }])
  // 23:50 on the 5th: taken, never posted
  await pay('erin', '7003', '2026-10-06T06:50:00Z', [{ feeType: 'OVERDUEFINE', owner: 'LAW', amount: 600 }])
  // 00:30 on the 6th in Los Angeles
  await pay('zoe', '7004', '2026-10-06T07:29:00Z', [{ feeType: 'OVERDUEFINE', owner: 'MAIN', amount: 375, postedAt: '2026-10-06T07:30:00Z' }])
  // the 6th: one line posted, Alma refused the other, which staff refund in two parts, then 1.00 of the posted line
  const frank = await pay('frank', '7005', '2026-10-06T18:00:00Z', [
    { feeType: 'OVERDUEFINE', owner: 'MAIN', amount: 1000, postedAt: '2026-10-06T18:01:00Z' },
    { feeType: 'DAMAGEDITEMFINE', owner: 'LAW', amount: 600 }
  ])
  await ledger.transition({ checkoutId: frank, from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'payment.needs_attention', attentionKind: 'ALMA_ERROR', attentionReason: 'Alma refused line 2' })
  const refund = async (at: string, amount: number, reference: string): Promise<Awaited<ReturnType<SqliteLedger['recordRefund']>>> => {
    clock = new Date(at)
    return await ledger.recordRefund({ checkoutId: frank, tx: '7005', amount: cents(amount), reference, note: 'line 2 refunded in CashNet', by: 'staff' },
      { refuse: (record) => whyRefundRefused(record, '7005', cents(amount), reference), effect: refundEffect })
  }
  const first = await refund('2026-10-06T19:00:00Z', 200, 'R-1')
  if (!first.recorded || first.effect !== 'none') throw new Error('the first part of the refund should be recorded and leave the case open')
  const second = await refund('2026-10-06T20:00:00Z', 400, 'R-2')
  if (!second.recorded || second.effect !== 'settle') throw new Error('the second part should settle the case: 1000 posted + 600 refunded = 1600 collected')
  const third = await refund('2026-10-06T21:00:00Z', 100, 'R-3')
  if (!third.recorded) throw new Error('1.00 of the posted money can still be refunded')
  await ledger.close()
}

/** The day's journal from export:gl, run as cron would with only TIMEZONE set. */
async function journal (t: Test, dir: string, date: string): Promise<Array<Record<string, string>>> {
  const run = await runScript('export-gl.ts', ['--date', date, '--out', join(dir, 'out')],
    { DATABASE_PATH: join(dir, 'ledger.sqlite'), GL_MAP_FILE: 'config/gl-map.example.json', TIMEZONE: ZONE })
  t.equal(run.code, 0, run.stderr)
  return csvFile(join(dir, 'out', `gl-journal-${date}.csv`))
}

const centsOf = (value: string): number => Math.round(Number(value) * 100)

t.test('report totals for a range equal the export:gl journals of the same days, in a non-UTC zone', async t => {
  const dir = tempDir(t)
  await fillLedger(join(dir, 'ledger.sqlite'))
  const stack = await build(t, { env: { DATABASE_PATH: join(dir, 'ledger.sqlite'), TIMEZONE: ZONE }, app: { startWorker: false } })
  const staff = new Browser(stack).login('staff')

  const answer = await staff.get('/admin/reports?from=2026-10-05&to=2026-10-06&format=csv')
  t.equal(answer.status, 200)
  t.match(answer.headers['content-type'], /^text\/csv/)
  t.match(answer.headers['content-disposition'], 'payments-report-2026-10-05-to-2026-10-06.csv')
  const rows = parse(answer.body, { columns: true }) as Array<Record<string, string>>
  t.same(Object.keys(rows[0]), ['DATE', 'FEE_TYPE', 'OWNER', 'CURRENCY', 'POSTED', 'REFUNDED', 'UNPOSTED', 'LINES', 'REFUNDED_UNPOSTED', 'REVERSED'])
  t.same(rows.map(r => Object.values(r).join(',')), [
    '2026-10-05,LOSTITEMREPLACEMENTFEE,LAW,USD,45.50,0.00,0.00,1,0.00,0.00',
    '2026-10-05,OVERDUEFINE,LAW,USD,0.00,0.00,6.00,0,0.00,0.00',
    '2026-10-05,OVERDUEFINE,MAIN,USD,7.50,0.00,0.00,2,0.00,0.00',
    '2026-10-06,DAMAGEDITEMFINE,LAW,USD,0.00,0.00,6.00,0,6.00,0.00',
    '2026-10-06,OVERDUEFINE,MAIN,USD,13.75,1.00,0.00,2,0.00,0.00'
  ], 'midnight is Los Angeles midnight; the first 6.00 refunded is the line Alma did not take, never posted; the next 1.00 the posted line; two decimals')

  let reportPosted = 0
  let journalCredits = 0
  for (const date of ['2026-10-05', '2026-10-06']) {
    const lines = await journal(t, dir, date)
    const posted = rows.filter(r => r.DATE === date).reduce((s, r) => s + centsOf(r.POSTED), 0)
    const refunded = rows.filter(r => r.DATE === date).reduce((s, r) => s + centsOf(r.REFUNDED), 0)
    const credits = lines.filter(l => centsOf(l.MONETARY_AMOUNT) < 0).reduce((s, l) => s - centsOf(l.MONETARY_AMOUNT), 0)
    const debits = lines.filter(l => centsOf(l.MONETARY_AMOUNT) > 0).reduce((s, l) => s + centsOf(l.MONETARY_AMOUNT), 0)
    const refundLines = lines.filter(l => l.FEE_TYPE !== '' && centsOf(l.MONETARY_AMOUNT) > 0).reduce((s, l) => s + centsOf(l.MONETARY_AMOUNT), 0)
    t.equal(posted, credits, `${date}: POSTED equals the journal's credit lines to the cent`)
    t.equal(refunded, refundLines, `${date}: REFUNDED equals the journal's refund lines`)
    t.equal(debits, credits, `${date}: the journal balances`)
    reportPosted += posted
    journalCredits += credits
  }
  t.equal(reportPosted, 500 + 4550 + 250 + 375 + 1000)
  t.equal(journalCredits, reportPosted, 'over the range, to the cent')

  const day6 = await journal(t, dir, '2026-10-06')
  const clearing = day6.find(l => l.LINE_DESCR.startsWith('CashNet receipts'))
  t.equal(clearing?.MONETARY_AMOUNT, '12.75', 'the clearing line is what was posted less what was refunded of it')
  t.same(day6.filter(l => l.JRNL_LN_REF.startsWith('refund')).map(l => [l.MONETARY_AMOUNT, l.JRNL_LN_REF, l.CASHNET_TX, l.FEE_TYPE]),
    [['1.00', 'refund R-3', '7005', 'OVERDUEFINE']], 'a refund line for the refund of posted money, on the day it was recorded; none for the money Alma never took')

  const page = await staff.get('/admin/reports?from=2026-10-05&to=2026-10-06')
  t.equal(page.status, 200)
  t.match(page.body, 'America/Los_Angeles', 'the zone is shown')
  t.match(page.body, '$66.75 posted to Alma', 'the range total, as money')
  t.match(page.body, '$1.00 refunded;')
  t.match(page.body, '$12.00 taken by CashNet, not posted')
  t.match(page.body, '$6.00 refunded that was never posted')
  t.match(page.body, /<th scope="row">2026-10-05<\/th><td>USD<\/td><td class="amount">\$53\.00<\/td>/, 'per day')
  t.match(page.body, /<th scope="row">LAW<\/th><td>USD<\/td><td class="amount">\$45\.50<\/td>/, 'per owning library')
  t.match(page.body, /<th scope="row">DAMAGEDITEMFINE<\/th><td>USD<\/td><td class="amount">\$0\.00<\/td><td class="amount">0<\/td><td class="amount">\$0\.00<\/td><td class="amount">\$6\.00<\/td><td class="amount">\$6\.00<\/td>/, 'per fee type, refunds apart')
  t.match(page.body, 'format=csv', 'the CSV of the same range is one click away')
})

t.test('a refund larger than what is left of the collected money is refused by the payment rule', async t => {
  const dir = tempDir(t)
  const ledger = new SqliteLedger({ path: join(dir, 'l.sqlite') })
  t.teardown(async () => { await ledger.close() })
  await ledger.createCheckout({ id: 'c1', userId: 'u', primaryId: 'u', patronName: 'u', email: '', currency: 'USD', lines: [{ lineNo: 1, feeId: 'f', feeType: 'OVERDUEFINE', feeTypeDesc: '', owner: 'MAIN', ownerDesc: '', title: '', itemCode: 'LIB-FINE', amount: cents(500) }] })
  await ledger.recordPostback({ checkoutId: 'c1', peer: 'p', result: '0', tx: '9', rawBody: '', items: [{ itemCode: 'LIB-FINE', amount: cents(500), qty: 1 }] },
    () => ({ outcome: 'PAID', reason: 'ok', to: 'PAID', payment: { tx: '9', batchno: 'B', effdate: '2026-10-05', pmtcode: 'V' } }))
  await ledger.transition({ checkoutId: 'c1', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'x', attentionKind: 'ALMA_ERROR' })
  const rules = (amount: number, reference: string): Parameters<SqliteLedger['recordRefund']>[1] => ({ refuse: (r) => whyRefundRefused(r, '9', cents(amount), reference), effect: refundEffect })
  const too = await ledger.recordRefund({ checkoutId: 'c1', tx: '9', amount: cents(501), reference: 'R', note: 'n', by: 's' }, rules(501, 'R'))
  t.equal(too.recorded, false)
  t.match(!too.recorded && too.reason, 'more than is left of tx 9')
  t.ok((await ledger.recordRefund({ checkoutId: 'c1', tx: '9', amount: cents(300), reference: 'R1', note: 'n', by: 's' }, rules(300, 'R1'))).recorded, 'a part refund')
  const over = await ledger.recordRefund({ checkoutId: 'c1', tx: '9', amount: cents(201), reference: 'R2', note: 'n', by: 's' }, rules(201, 'R2'))
  t.equal(over.recorded, false, 'parts add up: 300 + 201 is more than the 500 collected')
  const rest = await ledger.recordRefund({ checkoutId: 'c1', tx: '9', amount: cents(200), reference: 'R3', note: 'n', by: 's' }, rules(200, 'R3'))
  t.equal(rest.recorded && rest.effect, 'settle', 'the rest settles the case')
  t.same((await ledger.moneyRecord('c1'))?.refunds.map(r => r.amount), [300, 200])

  // reconcile nets the recorded refunds against CashNet's settlement of the tx (its refund rows are negative)
  const { reconcile } = await import('../../src/jobs/reconcile.ts')
  const feesRead: string[] = []
  const notAsked = (): never => { throw new Error('Alma is not asked when nothing was posted') }
  const alma = { getFee: async (_user: string, feeId: string): Promise<never> => { feesRead.push(feeId); return notAsked() }, getUser: async (): Promise<never> => notAsked() }
  const day = new Date().toISOString().slice(0, 10)
  const since = new Date(Date.now() - 3600_000)
  const netted = await reconcile({ ledger, alma, since, settlement: [{ tx: '9', amount: cents(500), date: day, line: 2 }, { tx: '9', amount: -300 as Cents, date: day, line: 3 }, { tx: '9', amount: -200 as Cents, date: day, line: 4 }] })
  t.same(netted.findings, [], 'collected 5.00, refunded 3.00 + 2.00 in CashNet and on the record: silent')
  const unrefunded = await reconcile({ ledger, alma, since, settlement: [{ tx: '9', amount: cents(500), date: day, line: 2 }] })
  t.same(unrefunded.findings.map(f => [f.kind, f.amount, f.ledgerAmount]), [['settled-amount-differs', 500, 0]], 'a refund on the record that CashNet never made is reported')
  t.same(feesRead, [], 'nothing was posted, so Alma is not asked')
})

t.test('the report refuses bad ranges calmly, and only staff may read it', async t => {
  const stack = await build(t, { env: { TIMEZONE: ZONE }, app: { startWorker: false } })
  const staff = new Browser(stack).login('staff')
  for (const query of ['from=2026-13-01&to=2026-12-31', 'from=2026-02-30&to=2026-03-01', 'from=yesterday&to=2026-01-01', 'from=2026-10-06&to=2026-10-05',
    'from=2025-01-01&to=2026-01-02', 'from=2026-10-01&to=2026-10-02&format=xml', 'from=2026-10-01&to=2026-10-02&format=csv&from=2026-10-03']) {
    const answer = await staff.get(`/admin/reports?${query}`)
    t.equal(answer.status, 400, query)
    t.match(answer.body, 'Choose a range of days', `${query}: the route's own page`)
    t.notMatch(answer.body, /at .*\.ts:\d+/, 'no stack trace')
  }
  const fine = await staff.get('/admin/reports?from=2025-01-01&to=2025-12-31')
  t.equal(fine.status, 200, 'a whole year is fine')
  const month = await staff.get('/admin/reports')
  t.equal(month.status, 200, 'without a range: the month so far')
  t.match(month.body, /name="to" value="\d{4}-\d{2}-\d{2}"/)
  const patron = await new Browser(stack).login('alice').get('/admin/reports?from=2026-10-01&to=2026-10-02&format=csv')
  t.equal(patron.status, 403, 'a patron is refused')
  const direct = await send(`${stack.serviceUrl}/admin/reports`, { from: UNTRUSTED_PEER })
  t.equal(direct.status, 403, 'not through EZproxy: refused')
  t.throws(() => reportDays('2026-10-06', '2026-10-05'), /is after/)
  t.ok(new BadRange('x') instanceof Error)
})

t.test('TIMEZONE: an IANA zone, the process\'s own by default; anything else stops the service at start', async t => {
  const base = {
    PUBLIC_URL: 'http://127.0.0.1:9',
    ALMA_API_KEY: 'k',
    CASHNET_CHECKOUT_URL: 'http://127.0.0.1:9/c',
    CASHNET_ITEM_CODE: 'LIB',
    CASHNET_POSTBACK_ALLOW: '127.0.0.4',
    EZPROXY_ALLOW: '127.0.0.1',
    COOKIE_SECRET: 'x'.repeat(32)
  }
  t.equal(loadConfig({ ...base, TIMEZONE: ZONE }).timeZone, ZONE)
  t.equal(loadConfig(base).timeZone, Intl.DateTimeFormat().resolvedOptions().timeZone)
  t.throws(() => loadConfig({ ...base, TIMEZONE: 'Mars/Olympus_Mons' }), /TIMEZONE must be an IANA time zone/)
})

t.test('a refund returns money Alma never took first, once, then the posted money; another tx\'s money was never booked', async t => {
  const line = (lineNo: number, amount: number, posted: number | null): Checkout['lines'][number] =>
    ({ lineNo, feeId: `f${lineNo}`, feeType: 'T', feeTypeDesc: '', owner: 'O', ownerDesc: '', title: '', itemCode: '', amount: amount as Cents, postedAmount: posted as Cents | null, postedAt: null })
  const refundOf = (id: number, tx: string, amount: number): RefundRecord => ({ id, checkoutId: 'c', tx, amount: cents(amount), reference: `R${id}`, note: '', by: 's', at: '', kind: 'refund' })
  /** the checkout's own tx is 7; `collected` per tx as the provider reported it; `refunds` recorded for the checkout */
  const spread = (lines: Array<Checkout['lines'][number]>, collected: Record<string, number>, refund: RefundRecord, refunds: RefundRecord[] = [refund]): Record<string, Array<[number, number]>> => {
    const reports = Object.entries(collected).map(([tx, total], i) => ({ postbackId: i, tx, outcome: 'PAID' as const, items: [], total: total as Cents }))
    const { booked, unbooked } = spreadRefund({ checkout: { tx: '7', lines } as Checkout, reports, refunds, refund })
    return { booked: booked.map(s => [s.line.lineNo, s.amount]), unbooked: unbooked.map(s => [s.line.lineNo, s.amount]) }
  }
  t.same(spread([line(1, 1000, 1000), line(2, 600, null)], { 7: 1600 }, refundOf(1, '7', 600)), { booked: [], unbooked: [[2, 600]] }, 'the line Alma did not take')
  t.same(spread([line(1, 1000, 700), line(2, 600, null)], { 7: 1600 }, refundOf(1, '7', 800)), { booked: [], unbooked: [[1, 300], [2, 500]] }, 'what each line left unposted, in line order')
  t.same(spread([line(1, 1000, 1000), line(2, 600, 0)], { 7: 1600 }, refundOf(1, '7', 1000)), { booked: [[1, 400]], unbooked: [[2, 600]] }, 'then the posted money')
  t.same(spread([line(1, 500, 500), line(2, 300, 300)], { 7: 800 }, refundOf(1, '7', 700)), { booked: [[1, 500], [2, 200]], unbooked: [] }, 'a refund of posted money: line order')
  t.same(spread([line(1, 500, 500), line(2, 300, 300)], { 7: 800, 8: 800 }, refundOf(1, '8', 700)), { booked: [], unbooked: [[1, 500], [2, 200]] }, 'a double charge: never booked, however much was posted')
  t.same(spread([line(1, 500, 500)], { 7: 500 }, refundOf(1, '9', 500)), { booked: [], unbooked: [[1, 500]] }, 'a tx the provider never reported for the checkout: not its posted one either')
  t.same(spread([line(1, 500, 500)], { 7: 500, 8: 300 }, refundOf(1, '8', 500)), { booked: [], unbooked: [[1, 500]] }, 'more refunded of another tx than it reported: still none of it booked')
  t.same(spread([line(1, 500, 500)], { 7: 650 }, refundOf(1, '7', 650)), { booked: [[1, 500]], unbooked: [[1, 150]] }, 'collected more than the lines: the rest on the last line')
  t.same(spread([line(1, 500, null)], {}, refundOf(1, '7', 300)), { booked: [], unbooked: [[1, 300]] }, 'no report of the tx: the checkout\'s amounts were collected')
  t.same(spread([line(1, 1000, null)], { 7: 0 }, refundOf(1, '7', 1000)), { booked: [], unbooked: [[1, 1000]] }, 'a capture reported as nothing collected (another currency) refunded: none of it was ever revenue')
  t.same(spread([line(1, 1000, null)], { 7: 600 }, refundOf(1, '7', 1000)), { booked: [], unbooked: [[1, 1000]] }, 'more refunded than collected, nothing posted: nothing booked')
  t.same(spread([line(1, 500, 500)], { 7: 500 }, refundOf(1, '7', 700)), { booked: [[1, 500]], unbooked: [[1, 200]] }, 'booked money is returned only up to what Alma accepted')
  const lines = [line(1, 500, 500), line(2, 300, 0)]
  const both = [refundOf(1, '7', 200), refundOf(2, '7', 200)]
  t.same(spread(lines, { 7: 800 }, both[1], both), { booked: [[1, 100]], unbooked: [[2, 100]] }, 'an earlier refund took 200 of the 300 unposted: two refunds never return the same money')
  t.same(spread(lines, { 7: 800 }, both[0], both), { booked: [], unbooked: [[2, 200]] }, 'a later refund changes nothing of an earlier one')
  t.same(spread(lines, { 7: 800, 8: 800 }, both[1], [refundOf(0, '8', 800), ...both]), { booked: [[1, 100]], unbooked: [[2, 100]] }, 'a refund of another tx takes nothing of this one\'s room')
  t.same(spread(lines, { 7: 800 }, refundOf(1, '7', 0)), { booked: [], unbooked: [] })
  t.same(spread([], { 7: 800 }, refundOf(1, '7', 100)), { booked: [], unbooked: [] })
})
