// The day's journal: one credit line per fee line POSTED to Alma that day (revenue, by chartfield map), one debit
// line per fee line share of the booked part of each refund recorded that day (to the map's `refunds` chartfields,
// else back against the fee's own revenue chartfields), and, per provider that took the money (CashNet, PayPal),
// one line to that provider's clearing account that balances its part: a debit of what was posted less what was
// refunded of it, or a credit on a day that refunded more than it posted. One journal per currency. Amounts are
// the cents Alma accepted (postedAmount); money a provider took but Alma did not accept is no revenue, and its
// refund (a double charge, an unapplied amount: src/jobs/refund-lines.ts) is no journal line either, so clearing
// holds exactly the money booked. The credit lines of fee lines are the day's POSTED money (the staff report's
// column), the refund lines its REFUNDED money. Money a provider took back by itself (a PayPal reversal or
// chargeback, recorded beside the refunds) is booked exactly as a refund, its lines marked REVERSAL.

import { type Cents, formatDecimal } from '../../money.ts'
import { type Checkout, CHECKOUT_PROVIDERS, type CheckoutProvider, type RecordedRefund } from '../../ledger/types.ts'
import { PROVIDER_LABEL } from '../../providers/provider.ts'
import { spreadRefund } from '../refund-lines.ts'
import { chartfieldsFor, clearingFor, type GlMap } from './map.ts'

export interface JournalLine {
  lineNumber: number
  account: string
  fund: string
  deptid: string
  /** PeopleSoft sign: debit positive, credit negative */
  amount: Cents
  lineDescription: string
  /** CashNet batch and transaction: "batchno/tx" (PayPal: "/capture id") */
  reference: string
  tx: string
  batchno: string
  feeId: string
  feeType: string
  owner: string
  checkoutId: string
  /** who took the money: the fee line's checkout's provider, or the provider a clearing line clears */
  provider: CheckoutProvider
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
  refunds: RecordedRefund[] = []): Journal[] {
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
      checkoutId: checkout.id,
      provider: checkout.provider
    })
  }
  for (const recorded of refunds) {
    const { refund, checkout } = recorded
    const shares = spreadRefund(recorded).booked
    if (shares.length === 0) continue
    const lines = byCurrency.get(checkout.currency) ?? []
    byCurrency.set(checkout.currency, lines)
    for (const share of shares) {
      lines.push({
        lineNumber: 0,
        ...(map.refunds ?? chartfieldsFor(map, share.line.feeType, share.line.owner)),
        amount: share.amount,
        // money the provider took back by itself (a PayPal chargeback) is booked as a refund is, and says so
        lineDescription: `${refund.kind === 'reversal' ? 'REVERSAL' : 'REFUND'} ${share.line.feeType} ${share.line.feeId}`.slice(0, 30),
        reference: `${refund.kind === 'reversal' ? 'reversal' : 'refund'} ${refund.reference}`,
        tx: refund.tx,
        batchno: '',
        feeId: share.line.feeId,
        feeType: share.line.feeType,
        owner: share.line.owner,
        checkoutId: checkout.id,
        provider: checkout.provider
      })
    }
  }
  return [...byCurrency.keys()].sort().map(currency => {
    const lines = byCurrency.get(currency) as JournalLine[]
    // per provider present, in a fixed order so a re-run gives the same bytes: what was posted less what was
    // refunded, a debit (or a credit on a day that refunded more than it posted)
    const feeLines = [...lines]
    for (const provider of CHECKOUT_PROVIDERS) {
      const taken = feeLines.filter(l => l.provider === provider)
      if (taken.length === 0) continue
      lines.push({
        lineNumber: 0,
        ...clearingFor(map, provider),
        amount: -taken.reduce((s, l) => s + l.amount, 0) as Cents,
        lineDescription: `${PROVIDER_LABEL[provider]} receipts ${date}`,
        // the provider's batches this deposit should match, for the bursar's reconciliation (PayPal has none)
        reference: [...new Set(taken.map(l => l.batchno).filter(b => b !== ''))].sort().join('+'),
        tx: '',
        batchno: '',
        feeId: '',
        feeType: '',
        owner: '',
        checkoutId: '',
        provider
      })
    }
    lines.forEach((l, i) => { l.lineNumber = i + 1 })
    const totalDebits = lines.reduce((s, l) => l.amount > 0 ? s + l.amount : s, 0) as Cents
    const totalCredits = lines.reduce((s, l) => l.amount < 0 ? s - l.amount : s, 0) as Cents
    return { date, currency, lines, totalDebits, totalCredits }
  })
}
