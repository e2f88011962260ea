// The day's journal: one credit line per fee line POSTED to Alma that day (revenue, by chartfield map), one debit
// line per fee line share of each refund staff recorded that day (to the map's `refunds` chartfields, else back
// against the fee's own revenue chartfields), and one line to the CashNet clearing account that balances it: a
// debit of what was posted less what was refunded (what CashNet's deposit should show); one journal per currency.
// Amounts are the cents Alma accepted (postedAmount); money CashNet took but Alma did not accept is no revenue.
// So the credit lines of fee lines are exactly the day's POSTED money (the staff report's POSTED column).

import { type Cents, formatDecimal } from '../../money.ts'
import type { Checkout, RefundRecord } from '../../ledger/types.ts'
import { spreadRefund } from '../refund-lines.ts'
import { chartfieldsFor, type GlMap } from './map.ts'

export interface JournalLine {
  lineNumber: number
  account: string
  fund: string
  deptid: string
  /** PeopleSoft sign: debit positive, credit negative */
  amount: Cents
  lineDescription: string
  /** CashNet batch and transaction: "batchno/tx" */
  reference: string
  tx: string
  batchno: string
  feeId: string
  feeType: string
  owner: string
  checkoutId: string
}

export interface Journal {
  date: string
  currency: string
  lines: JournalLine[]
  totalDebits: Cents
  /** as a positive number */
  totalCredits: Cents
}

export function buildJournals (posted: Array<{ checkout: Checkout, lineNo: number }>, map: GlMap, date: string,
  refunds: Array<{ refund: RefundRecord, checkout: Checkout }> = []): Journal[] {
  const byCurrency = new Map<string, JournalLine[]>()
  for (const { checkout, lineNo } of posted) {
    const line = checkout.lines.find(l => l.lineNo === lineNo)
    if (line === undefined || line.postedAmount === null || line.postedAmount <= 0) continue
    const fields = chartfieldsFor(map, line.feeType, line.owner)
    const lines = byCurrency.get(checkout.currency) ?? []
    byCurrency.set(checkout.currency, lines)
    lines.push({
      lineNumber: 0,
      ...fields,
      amount: -line.postedAmount as Cents,
      // a part payment says so: the rest of the fee stays open in Alma
      lineDescription: line.balance != null && line.balance > line.amount
        ? `${line.feeType} ${line.feeId} part of ${formatDecimal(line.balance)}`
        : `${line.feeType} ${line.feeId}`,
      reference: `${checkout.batchno ?? ''}/${checkout.tx ?? ''}`,
      tx: checkout.tx ?? '',
      batchno: checkout.batchno ?? '',
      feeId: line.feeId,
      feeType: line.feeType,
      owner: line.owner,
      checkoutId: checkout.id
    })
  }
  for (const { refund, checkout } of refunds) {
    const lines = byCurrency.get(checkout.currency) ?? []
    byCurrency.set(checkout.currency, lines)
    for (const share of spreadRefund(checkout, refund.amount)) {
      lines.push({
        lineNumber: 0,
        ...(map.refunds ?? chartfieldsFor(map, share.line.feeType, share.line.owner)),
        amount: share.amount,
        lineDescription: `REFUND ${share.line.feeType} ${share.line.feeId}`.slice(0, 30),
        reference: `refund ${refund.reference}`,
        tx: refund.tx,
        batchno: '',
        feeId: share.line.feeId,
        feeType: share.line.feeType,
        owner: share.line.owner,
        checkoutId: checkout.id
      })
    }
  }
  return [...byCurrency.keys()].sort().map(currency => {
    const lines = byCurrency.get(currency) as JournalLine[]
    // what was posted less what was refunded: a debit, or a credit on a day that refunded more than it posted
    const net = -lines.reduce((s, l) => s + l.amount, 0) as Cents
    lines.push({
      lineNumber: 0,
      ...map.clearing,
      amount: net,
      lineDescription: `CashNet receipts ${date}`,
      // the CashNet batches this deposit should match, for the bursar's reconciliation
      reference: [...new Set(lines.map(l => l.batchno).filter(b => b !== ''))].sort().join('+'),
      tx: '',
      batchno: '',
      feeId: '',
      feeType: '',
      owner: '',
      checkoutId: ''
    })
    lines.forEach((l, i) => { l.lineNumber = i + 1 })
    const totalDebits = lines.reduce((s, l) => l.amount > 0 ? s + l.amount : s, 0) as Cents
    const totalCredits = lines.reduce((s, l) => l.amount < 0 ? s - l.amount : s, 0) as Cents
    return { date, currency, lines, totalDebits, totalCredits }
  })
}
