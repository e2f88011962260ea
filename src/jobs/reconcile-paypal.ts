// npm run reconcile -- --paypal: the ledger against PayPal's Transaction Search for a date range. PayPal's list is
// the truth of what was taken and given back; the ledger must know every capture, at the amount and currency it
// recorded, every refund, and every PayPal payment it recorded must be in PayPal's list. Read-only on both sides.

import type { Ledger } from '../ledger/ledger.ts'
import type { Checkout } from '../ledger/types.ts'
import { type Cents, formatMoney } from '../money.ts'
import type { PayPalClient, PayPalTransaction } from '../providers/paypal/client.ts'

export const PAYPAL_FINDING_KINDS = ['paypal-not-in-ledger', 'paypal-missing', 'paypal-amount-differs', 'paypal-refund-not-recorded'] as const
export type PayPalFindingKind = typeof PAYPAL_FINDING_KINDS[number]

export interface PayPalFinding {
  kind: PayPalFindingKind
  checkoutId: string | null
  /** the capture id (for a refund, the capture refunded) */
  tx: string
  /** Alma primary id and name, as far as known */
  patron: string
  currency: string
  /** the money at stake, in cents */
  amount: Cents
  ledgerAmount?: Cents
  paypalAmount?: Cents
  detail: string
  /** one line: what a person should do */
  action: string
}

export interface PayPalReconcileReport {
  since: string
  until: string
  findings: PayPalFinding[]
  checked: {
    /** captures and refunds PayPal listed in the range */
    transactions: number
    /** PayPal payments the ledger recorded in the range */
    ledgerPayments: number
    /** ledger payments too recent for PayPal's reporting (about 3 hours behind): not judged yet */
    tooRecent: number
  }
}

export interface PayPalReconcileInput {
  ledger: Ledger
  paypal: Pick<PayPalClient, 'searchTransactions'>
  since: Date
  /** end of the range (exclusive); default now */
  until?: Date
  now?: Date
  /** how far PayPal's reporting lags behind (default 3 hours) */
  reportingLagMs?: number
}

const LAG_MS = 3 * 3600 * 1000
/**
 * PayPal lists a transaction under its own date, which may be before the ledger recorded it paid (a capture just
 * before midnight, recorded after): the search starts this much before --since so that such a capture is found.
 */
const SEARCH_BACK_MS = 3 * 24 * 3600 * 1000

/** A payment into the account (PayPal's T00xx codes), not a fee, hold or transfer. */
function isPayment (t: PayPalTransaction): boolean {
  return t.amount > 0 && t.eventCode.startsWith('T00') && t.status === 'S'
}

/** Money given back (T11xx), tied to the transaction it refunds. */
function isRefund (t: PayPalTransaction): boolean {
  return t.amount < 0 && t.eventCode.startsWith('T11') && t.referenceId !== null && t.status !== 'D'
}

function patronOf (checkout: Checkout | undefined): string {
  return checkout === undefined ? '' : `${checkout.primaryId} ${checkout.patronName}`.trim()
}

export async function reconcilePayPal (input: PayPalReconcileInput): Promise<PayPalReconcileReport> {
  const { ledger } = input
  const now = input.now ?? new Date()
  const until = new Date(Math.min((input.until ?? now).getTime(), now.getTime()))
  const findings: PayPalFinding[] = []
  const searchFrom = new Date(input.since.getTime() - SEARCH_BACK_MS)
  const listed = input.since.getTime() < until.getTime() ? await input.paypal.searchTransactions(searchFrom, until) : []
  // The ledger's PayPal payments in the range: only these, and what PayPal dates in the range, are judged.
  const lagFrom = until.getTime() - (input.reportingLagMs ?? LAG_MS)
  const ledgerInRange: Checkout[] = []
  for (const checkout of await ledger.checkoutsTouchedSince(input.since)) {
    if (checkout.provider !== 'paypal' || checkout.tx === null || checkout.tx === '' || checkout.paidAt === null) continue
    const paidAt = Date.parse(checkout.paidAt)
    if (paidAt >= input.since.getTime() && paidAt < until.getTime()) ledgerInRange.push(checkout)
  }
  const paidInRange = new Set(ledgerInRange.map(c => c.tx))
  const inRange = (t: PayPalTransaction): boolean => Date.parse(t.initiatedAt) >= input.since.getTime()
  // Every capture listed answers "is it in PayPal's list"; the earlier days' ones are otherwise the earlier runs'.
  const listedCaptures = new Set(listed.filter(isPayment).map(t => t.transactionId))
  const captures = new Map(listed.filter(t => isPayment(t) && (inRange(t) || paidInRange.has(t.transactionId))).map(t => [t.transactionId, t]))
  const refunds = listed.filter(t => isRefund(t) && inRange(t))

  // The checkout a capture belongs to: the one whose tx it is, else the one it names (custom_id / invoice_id).
  const checkoutFor = async (t: PayPalTransaction): Promise<{ checkout: Checkout | undefined, recorded: boolean }> => {
    const postbacks = await ledger.postbacksWithTx(t.transactionId)
    const named = t.customId ?? t.invoiceId
    const id = postbacks.find(p => p.checkoutId !== null)?.checkoutId ?? named
    return { checkout: id === null ? undefined : await ledger.getCheckout(id), recorded: postbacks.length > 0 }
  }

  for (const t of captures.values()) {
    const { checkout, recorded } = await checkoutFor(t)
    if (!recorded) {
      findings.push({
        kind: 'paypal-not-in-ledger',
        checkoutId: checkout?.id ?? t.customId ?? t.invoiceId,
        tx: t.transactionId,
        patron: patronOf(checkout),
        currency: t.currency,
        amount: t.amount,
        paypalAmount: t.amount,
        detail: `PayPal captured ${formatMoney(t.amount, t.currency)} on ${t.initiatedAt} (${t.eventCode}); the ledger has no record of capture ${t.transactionId}` +
          (checkout !== undefined ? ` (checkout ${checkout.id} is ${checkout.state})` : checkout === undefined && (t.customId ?? t.invoiceId) !== null ? ' and no such checkout' : ''),
        action: checkout !== undefined
          ? 'the patron paid and the service never recorded it: check Alma for the fees, then post them or refund the capture in PayPal'
          : 'money taken for nothing the ledger knows: find the patron in PayPal and refund the capture, or record it by hand'
      })
      continue
    }
    if (checkout === undefined || checkout.tx !== t.transactionId) continue
    if (checkout.total !== t.amount || checkout.currency !== t.currency) {
      findings.push({
        kind: 'paypal-amount-differs',
        checkoutId: checkout.id,
        tx: t.transactionId,
        patron: patronOf(checkout),
        currency: t.currency,
        amount: Math.abs(t.amount - (checkout.currency === t.currency ? checkout.total : 0)) as Cents,
        ledgerAmount: checkout.total,
        paypalAmount: t.amount,
        detail: `PayPal captured ${formatMoney(t.amount, t.currency)}, the checkout is ${formatMoney(checkout.total, checkout.currency)} (${checkout.state})`,
        action: 'compare the capture in PayPal with the checkout; refund the difference in PayPal or correct it in Alma'
      })
    }
  }

  // Each refund the ledger records accounts for one of PayPal's: by its PayPal refund id, else (recorded by hand
  // under another reference) by capture and amount; two PayPal refunds of the same amount need two records.
  const accounted = new Set<number>()
  const byId = new Set(refunds.map(r => r.transactionId))
  const located: Array<{ r: (typeof refunds)[number], captured: string, checkoutId: string | null, record: Awaited<ReturnType<typeof ledger.moneyRecord>>, amount: Cents }> = []
  for (const r of refunds) {
    const captured = r.referenceId as string
    const postbacks = await ledger.postbacksWithTx(captured)
    const checkoutId = postbacks.find(p => p.checkoutId !== null)?.checkoutId ?? r.customId ?? r.invoiceId
    const record = checkoutId === null ? undefined : await ledger.moneyRecord(checkoutId)
    located.push({ r, captured, checkoutId, record, amount: -r.amount as Cents })
    const exact = record?.refunds.find(x => x.reference === r.transactionId)
    if (exact !== undefined) accounted.add(exact.id)
  }
  for (const { r, captured, checkoutId, record, amount } of located) {
    if (record?.refunds.some(x => x.reference === r.transactionId) === true) continue
    const byAmount = record?.refunds.find(x => !accounted.has(x.id) && !byId.has(x.reference) && x.tx === captured && x.amount === amount)
    if (byAmount !== undefined) {
      accounted.add(byAmount.id)
      continue
    }
    findings.push({
      kind: 'paypal-refund-not-recorded',
      checkoutId: record?.checkout.id ?? checkoutId,
      tx: captured,
      patron: patronOf(record?.checkout),
      currency: r.currency,
      amount,
      paypalAmount: amount,
      detail: `PayPal refunded ${formatMoney(amount, r.currency)} of capture ${captured} on ${r.initiatedAt} (refund ${r.transactionId}); the ledger records no such refund` +
        (record !== undefined ? ` (checkout ${record.checkout.id} is ${record.checkout.state})` : ''),
      action: 'record the refund on the payment\'s staff page and reverse what Alma shows paid if the fees are owed again'
    })
  }

  // The ledger's PayPal payments in the range must be in PayPal's list (unless too recent for its reporting).
  let ledgerPayments = 0
  let tooRecent = 0
  for (const checkout of ledgerInRange) {
    if (checkout.tx === null || checkout.paidAt === null) continue
    ledgerPayments++
    if (listedCaptures.has(checkout.tx)) continue
    if (Date.parse(checkout.paidAt) >= lagFrom) { tooRecent++; continue }
    findings.push({
      kind: 'paypal-missing',
      checkoutId: checkout.id,
      tx: checkout.tx,
      patron: patronOf(checkout),
      currency: checkout.currency,
      amount: checkout.total,
      ledgerAmount: checkout.total,
      detail: `the ledger recorded PayPal capture ${checkout.tx} (${formatMoney(checkout.total, checkout.currency)}, ${checkout.state}) on ${checkout.paidAt}; PayPal's Transaction Search does not list it as a completed payment`,
      action: 'look the capture up in PayPal: if it was never completed, the fees posted to Alma were not paid; reverse them or ask the patron'
    })
  }

  findings.sort((a, b) => PAYPAL_FINDING_KINDS.indexOf(a.kind) - PAYPAL_FINDING_KINDS.indexOf(b.kind) || a.tx.localeCompare(b.tx))
  return { since: input.since.toISOString(), until: until.toISOString(), findings, checked: { transactions: captures.size + refunds.length, ledgerPayments, tooRecent } }
}
