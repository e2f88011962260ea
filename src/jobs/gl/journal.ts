// The day's journal: one credit line per fee line POSTED to Alma that day (revenue, by chartfield map) and one
// debit line to the CashNet clearing account that balances it; one journal per currency. Amounts are the
// cents Alma accepted (postedAmount); money CashNet took but Alma did not accept is a refund, not revenue.

import { type Cents, formatDecimal } from '../../money.ts'
import type { Checkout } from '../../ledger/types.ts'
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

export function buildJournals (posted: Array<{ checkout: Checkout, lineNo: number }>, map: GlMap, date: string): Journal[] {
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
  return [...byCurrency.keys()].sort().map(currency => {
    const lines = byCurrency.get(currency) as JournalLine[]
    const credits = lines.reduce((s, l) => s - l.amount, 0) as Cents
    lines.push({
      lineNumber: 0,
      ...map.clearing,
      amount: credits,
      lineDescription: `CashNet receipts ${date}`,
      // the CashNet batches this deposit should match, for the bursar's reconciliation
      reference: [...new Set(lines.map(l => l.batchno))].sort().join('+'),
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
