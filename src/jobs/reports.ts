// The bursar's report (SPEC 15, issue 19): for each day of a range in the library's time zone, per fee type,
// owning library and currency, the money POSTED to Alma (exactly the fee lines' credit lines of that day's
// export:gl journal: same days, same ledger reads), the money REFUNDED of it (the booked part of the refunds
// recorded that day, spread over the fee lines as export:gl spreads them: its refund lines), the money
// REFUNDED_UNPOSTED (the rest of those refunds: money a provider took that Alma never accepted, a double charge
// or an unapplied amount, which no journal line shows) and the money UNPOSTED (taken by CashNet that day and
// not, or not all, accepted by Alma so far). The range check and the arithmetic are here; the route only reads
// and shows.

import type { Ledger } from '../ledger/ledger.ts'
import type { Checkout, RecordedRefund } from '../ledger/types.ts'
import { type Cents, formatDecimal } from '../money.ts'
import { dayRange, nextDay } from './dates.ts'
import { spreadRefund } from './refund-lines.ts'

/** A range longer than this is a year-end export, not a report: refused. */
export const MAX_REPORT_DAYS = 366

export interface ReportRow {
  date: string
  feeType: string
  owner: string
  currency: string
  posted: Cents
  /** refunds of money posted to Alma (the journal's refund lines) */
  refunded: Cents
  /** refunds of money Alma never accepted (no journal line) */
  refundedUnposted: Cents
  /** of refunded and refundedUnposted, the money the provider took back by itself (a PayPal reversal or chargeback) */
  reversed: Cents
  unposted: Cents
  /** fee lines posted that day */
  lines: number
}

export interface Totals {
  posted: Cents
  refunded: Cents
  refundedUnposted: Cents
  reversed: Cents
  unposted: Cents
  lines: number
}

export interface Report {
  from: string
  to: string
  timeZone: string
  rows: ReportRow[]
  /** per currency, then per day / fee type / owner, and overall */
  byDay: Array<{ key: string, currency: string } & Totals>
  byFeeType: Array<{ key: string, currency: string } & Totals>
  byOwner: Array<{ key: string, currency: string } & Totals>
  total: Array<{ currency: string } & Totals>
}

export class BadRange extends Error {
  readonly kind = 'BadRange'
}

const ISO_DAY = /^(\d{4})-(\d{2})-(\d{2})$/

function isRealDay (value: string): boolean {
  const m = ISO_DAY.exec(value)
  if (m === null) return false
  const d = new Date(`${value}T00:00:00Z`)
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === value
}

/** The days from..to (inclusive), or a BadRange saying what is wrong with the range. */
export function reportDays (from: string, to: string): string[] {
  if (!isRealDay(from)) throw new BadRange(`"from" must be a date like 2026-10-05 (got ${JSON.stringify(from).slice(0, 40)})`)
  if (!isRealDay(to)) throw new BadRange(`"to" must be a date like 2026-10-05 (got ${JSON.stringify(to).slice(0, 40)})`)
  if (from > to) throw new BadRange(`"from" (${from}) is after "to" (${to})`)
  const days: string[] = []
  for (let day = from; day <= to; day = nextDay(day)) {
    days.push(day)
    if (days.length > MAX_REPORT_DAYS) throw new BadRange(`a report covers at most ${MAX_REPORT_DAYS} days; ask for a year at a time`)
  }
  return days
}

/** What the ledger says about one day: what was posted, refunded and paid in it. */
export interface DayRecord {
  date: string
  posted: Array<{ checkout: Checkout, lineNo: number }>
  refunds: RecordedRefund[]
  paid: Checkout[]
}

/** States in which CashNet's money was taken (a paid checkout is in one of these). */
const MONEY_TAKEN = new Set(['PAID', 'POSTED', 'NEEDS_ATTENTION'])

/** The rows of the days given: pure arithmetic on what the ledger returned. */
export function reportRows (days: DayRecord[]): ReportRow[] {
  const rows = new Map<string, ReportRow>()
  const row = (date: string, feeType: string, owner: string, currency: string): ReportRow => {
    const key = [date, feeType, owner, currency].join('\u0000')
    let r = rows.get(key)
    if (r === undefined) rows.set(key, r = { date, feeType, owner, currency, posted: 0 as Cents, refunded: 0 as Cents, refundedUnposted: 0 as Cents, reversed: 0 as Cents, unposted: 0 as Cents, lines: 0 })
    return r
  }
  for (const day of days) {
    for (const { checkout, lineNo } of day.posted) {
      const line = checkout.lines.find(l => l.lineNo === lineNo)
      // the journal's rule: lines Alma accepted money for
      if (line === undefined || line.postedAmount === null || line.postedAmount <= 0) continue
      const r = row(day.date, line.feeType, line.owner, checkout.currency)
      r.posted = (r.posted + line.postedAmount) as Cents
      r.lines++
    }
    for (const recorded of day.refunds) {
      const { booked, unbooked } = spreadRefund(recorded)
      for (const share of booked) {
        const r = row(day.date, share.line.feeType, share.line.owner, recorded.checkout.currency)
        r.refunded = (r.refunded + share.amount) as Cents
      }
      for (const share of unbooked) {
        const r = row(day.date, share.line.feeType, share.line.owner, recorded.checkout.currency)
        r.refundedUnposted = (r.refundedUnposted + share.amount) as Cents
      }
      // money taken back by the provider is spread and booked as a refund is; the report also says how much it was
      if (recorded.refund.kind === 'reversal') {
        for (const share of [...booked, ...unbooked]) {
          const r = row(day.date, share.line.feeType, share.line.owner, recorded.checkout.currency)
          r.reversed = (r.reversed + share.amount) as Cents
        }
      }
    }
    for (const checkout of day.paid) {
      if (!MONEY_TAKEN.has(checkout.state)) continue
      for (const line of checkout.lines) {
        const left = line.amount - (line.postedAmount ?? 0)
        if (left <= 0) continue
        const r = row(day.date, line.feeType, line.owner, checkout.currency)
        r.unposted = (r.unposted + left) as Cents
      }
    }
  }
  return [...rows.values()].sort((a, b) => a.date.localeCompare(b.date) || a.feeType.localeCompare(b.feeType) || a.owner.localeCompare(b.owner) || a.currency.localeCompare(b.currency))
}

function totalsBy (rows: ReportRow[], key: (r: ReportRow) => string): Array<{ key: string, currency: string } & Totals> {
  const out = new Map<string, { key: string, currency: string } & Totals>()
  for (const r of rows) {
    const k = `${r.currency}\u0000${key(r)}`
    let t = out.get(k)
    if (t === undefined) out.set(k, t = { key: key(r), currency: r.currency, posted: 0 as Cents, refunded: 0 as Cents, refundedUnposted: 0 as Cents, reversed: 0 as Cents, unposted: 0 as Cents, lines: 0 })
    t.posted = (t.posted + r.posted) as Cents
    t.refunded = (t.refunded + r.refunded) as Cents
    t.refundedUnposted = (t.refundedUnposted + r.refundedUnposted) as Cents
    t.reversed = (t.reversed + r.reversed) as Cents
    t.unposted = (t.unposted + r.unposted) as Cents
    t.lines += r.lines
  }
  return [...out.values()].sort((a, b) => a.currency.localeCompare(b.currency) || a.key.localeCompare(b.key))
}

/** What the ledger says about one day ([midnight, midnight) in `timeZone`, as export:gl reads it). */
export async function readDay (ledger: Ledger, date: string, timeZone: string): Promise<DayRecord> {
  const range = dayRange(date, timeZone)
  return {
    date,
    posted: await ledger.postedLines(range.from, range.to),
    refunds: await ledger.refundsRecorded(range.from, range.to),
    paid: await ledger.paidBetween(range.from, range.to)
  }
}

/** Reads the ledger day by day and totals it. */
export async function buildReport (ledger: Ledger, from: string, to: string, timeZone: string): Promise<Report> {
  const days: DayRecord[] = []
  for (const date of reportDays(from, to)) days.push(await readDay(ledger, date, timeZone))
  const rows = reportRows(days)
  return {
    from,
    to,
    timeZone,
    rows,
    byDay: totalsBy(rows, r => r.date),
    byFeeType: totalsBy(rows, r => r.feeType),
    byOwner: totalsBy(rows, r => r.owner),
    total: totalsBy(rows, () => '').map(({ key: _key, ...t }) => t)
  }
}

/**
 * SPEC's columns, then REFUNDED_UNPOSTED and REVERSED (of REFUNDED and REFUNDED_UNPOSTED, what the provider took back
 * by itself) last, so that a reader of the SPEC's columns by position still reads them.
 */
export const REPORT_CSV_HEADER = ['DATE', 'FEE_TYPE', 'OWNER', 'CURRENCY', 'POSTED', 'REFUNDED', 'UNPOSTED', 'LINES', 'REFUNDED_UNPOSTED', 'REVERSED']

function csvRow (r: ReportRow): string[] {
  return [r.date, r.feeType, r.owner, r.currency, formatDecimal(r.posted), formatDecimal(r.refunded), formatDecimal(r.unposted), String(r.lines), formatDecimal(r.refundedUnposted), formatDecimal(r.reversed)]
}

/**
 * The CSV rows, the header first, then one row per day, fee type, owning library and currency; read one day at a
 * time, so a year's CSV never holds more than a day. Check the range with reportDays before starting it.
 */
export async function * reportCsvRows (ledger: Ledger, from: string, to: string, timeZone: string): AsyncGenerator<string[]> {
  yield REPORT_CSV_HEADER
  for (const date of reportDays(from, to)) {
    for (const r of reportRows([await readDay(ledger, date, timeZone)])) yield csvRow(r)
  }
}
