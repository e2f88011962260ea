// SPEC 13 as one pure function, the provider-report twin of postback-rules.ts: given the checkout (if any), the
// reports already recorded for it, the other checkouts this transaction id is recorded for, and what the provider
// says it collected (a PayPal capture), decide the outcome and the state change. The ledger applies it in the
// same transaction as the record (Ledger.recordPostback), so the return and the webhook arriving together, twice
// or in either order, record one PAID and one posting: the second finds the same tx already there.

import type { Checkout, PostbackDecision, PostbackRecord } from '../ledger/types.ts'
import { type Cents, formatDecimal } from '../money.ts'
import { type Collected, PROVIDER_LABEL } from '../providers/provider.ts'

const OPEN_STATES = new Set(['CREATED', 'EXPIRED', 'DECLINED', 'CANCELLED'])

/** How a report is stored among the postbacks: result '0' is money taken (what the staff rule and GL read). */
export function resultOf (collected: Collected): string {
  return collected.status === 'COMPLETED' ? '0' : collected.status
}

/**
 * The items recorded for a capture: its amount laid over the checkout's lines in order (each at most its line),
 * anything beyond the lines as one more item. Their sum is exactly what was captured, so the staff rule's cap
 * ("never post more than the provider reported", lineCaps) holds for PayPal as for CashNet. A capture in another
 * currency confirms nothing in the checkout's: no items, a total of 0; nor does a capture PayPal has refunded (all
 * or part) by the time it is read: what the patron kept is not known, so staff may not post any of it from here.
 */
export function reportedItems (checkout: Pick<Checkout, 'lines' | 'currency'> | undefined, collected: Collected): Array<{ itemCode: string, amount: Cents, qty: number }> {
  if (collected.status !== 'COMPLETED' || collected.refunded !== undefined) return []
  if (checkout === undefined) return [{ itemCode: '', amount: collected.amount, qty: 1 }]
  if (collected.currency !== checkout.currency) return []
  const items: Array<{ itemCode: string, amount: Cents, qty: number }> = []
  let left = collected.amount as number
  for (const line of checkout.lines) {
    const amount = Math.min(line.amount, left)
    items.push({ itemCode: '', amount: amount as Cents, qty: 1 })
    left -= amount
  }
  if (left > 0) items.push({ itemCode: '', amount: left as Cents, qty: 1 })
  return items.filter(i => i.amount > 0)
}

export function decideCapture (checkout: Checkout | undefined, earlier: PostbackRecord[], collected: Collected, elsewhere: readonly string[] = []): PostbackDecision {
  const label = PROVIDER_LABEL[collected.provider]
  if (checkout === undefined) {
    return { outcome: 'ORPHAN', reason: `no checkout ${collected.checkoutId ?? '(none)'}; ${label} transaction ${collected.tx}, ${collected.status} ${formatDecimal(collected.amount)} ${collected.currency}: money may have been taken` }
  }
  const result = resultOf(collected)
  if (earlier.some(e => e.result === result && e.tx === collected.tx && e.outcome !== 'REJECTED' && e.outcome !== 'TX_REUSED')) {
    return { outcome: 'DUPLICATE', reason: `the same ${label} report again (transaction ${collected.tx}, ${collected.status})` }
  }
  const payment = { tx: collected.tx, batchno: '', effdate: '', pmtcode: collected.provider.toUpperCase() }
  if (collected.status === 'COMPLETED') {
    if (elsewhere.length > 0) {
      return { outcome: 'TX_REUSED', reason: `${label} transaction ${collected.tx} is already recorded for checkout ${elsewhere.join(', ')}: not accepted for this checkout, nothing posted; check ${label}` }
    }
    if (checkout.tx !== null && checkout.tx !== '' && checkout.tx !== collected.tx) {
      return {
        outcome: 'DOUBLE_CHARGE',
        to: 'NEEDS_ATTENTION',
        attentionKind: 'DOUBLE_CHARGE',
        reason: `second ${label} transaction ${collected.tx} for checkout already paid by ${checkout.tx}: refund ${collected.tx} in ${label} and record the refund`
      }
    }
    if (!OPEN_STATES.has(checkout.state)) return { outcome: 'DUPLICATE', reason: `success for a checkout already ${checkout.state}` }
    if (collected.refunded !== undefined) {
      // taken, and given back (all or part) since: what the patron kept is not known here, so nothing is posted
      return {
        outcome: 'MISMATCH',
        to: 'NEEDS_ATTENTION',
        attentionKind: 'MISMATCH',
        reason: `${label} transaction ${collected.tx} took ${formatDecimal(collected.amount)} ${collected.currency} and is now ${collected.refunded}: money went back to the patron before this payment was recorded; nothing posted to Alma. Nothing of it can be posted from here: apply in Alma by hand anything the patron kept, then mark it settled with a note of what was done`,
        payment
      }
    }
    if (collected.currency !== checkout.currency) {
      return { outcome: 'MISMATCH', to: 'NEEDS_ATTENTION', attentionKind: 'MISMATCH', reason: `${label} captured ${formatDecimal(collected.amount)} ${collected.currency}, the checkout is ${formatDecimal(checkout.total)} ${checkout.currency}: nothing posted; refund it in ${label}`, payment }
    }
    if (collected.amount !== checkout.total) {
      return { outcome: 'MISMATCH', to: 'NEEDS_ATTENTION', attentionKind: 'MISMATCH', reason: `paid amounts differ from the checkout: ${label} captured ${formatDecimal(collected.amount)} ${collected.currency}, the checkout is ${formatDecimal(checkout.total)} ${checkout.currency}; nothing posted`, payment }
    }
    return { outcome: 'PAID', to: 'PAID', reason: `paid ${formatDecimal(collected.amount)} ${collected.currency} by ${label} transaction ${collected.tx}`, payment }
  }
  const message = collected.detail !== '' ? `${collected.status} (${collected.detail})` : collected.status
  if (checkout.state !== 'CREATED' && checkout.state !== 'EXPIRED') {
    return { outcome: 'LATE_FAILURE', reason: `${label} transaction ${collected.tx} ${message} for a checkout already ${checkout.state}; nothing changed` }
  }
  return { outcome: 'DECLINED', to: 'DECLINED', reason: `declined: ${label} transaction ${collected.tx} ${message}` }
}
