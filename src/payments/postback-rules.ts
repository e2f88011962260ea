// SPEC section 6 as one pure function: given the checkout (if any), the postbacks already received for it, the
// other checkouts the tx is already recorded for, and the new one, decide the outcome and the state change (with
// the kind of attention it needs). The ledger applies it in the same transaction.

import type { Postback } from '../providers/cashnet/postback.ts'
import type { Checkout, PostbackDecision, PostbackRecord } from '../ledger/types.ts'
import { formatDecimal } from '../money.ts'

/**
 * "Customer cancelled before processing payment". It may come as `result` itself, or as a non-zero `result`
 * with `ccerrorcode=902` (seen in public integrations; SPEC 6): either way the patron cancelled.
 */
const CANCELLED_CODE = 902

export function isCancel (postback: Pick<Postback, 'result' | 'ccerrorcode'>): boolean {
  return postback.result === CANCELLED_CODE || (postback.result !== 0 && postback.ccerrorcode.replace(/^0+(?=\d)/, '') === String(CANCELLED_CODE))
}
const OPEN_STATES = new Set(['CREATED', 'EXPIRED', 'DECLINED', 'CANCELLED'])

function describeMismatch (checkout: Checkout, postback: Postback): string | null {
  if (postback.items.length !== checkout.lines.length) {
    return `CashNet reported ${postback.items.length} item(s), the checkout has ${checkout.lines.length}`
  }
  for (const [index, line] of checkout.lines.entries()) {
    const item = postback.items[index]
    if (item.amount !== line.amount) return `item ${index + 1} amount ${formatDecimal(item.amount)} differs from ${formatDecimal(line.amount)}`
    if (item.itemCode !== '' && item.itemCode.toUpperCase() !== line.itemCode.toUpperCase()) return `item ${index + 1} code ${item.itemCode} differs from ${line.itemCode}`
    if (item.qty !== 1) return `item ${index + 1} quantity ${item.qty} is not 1`
  }
  if (postback.total !== checkout.total) return `total ${formatDecimal(postback.total)} differs from ${formatDecimal(checkout.total)}`
  return null
}

export function decidePostback (checkout: Checkout | undefined, earlier: PostbackRecord[], postback: Postback, elsewhere: readonly string[] = []): PostbackDecision {
  if (checkout === undefined) {
    return { outcome: 'ORPHAN', reason: `no checkout ${postback.checkoutId}; CashNet tx ${postback.tx || '(none)'}, result ${postback.result}: money may have been taken` }
  }
  // A checkout handed to another provider (a PayPal campus behind the same CashNet allow-list, a store whose
  // notification URL points at the wrong campus) was never sent to CashNet: its fees are not CashNet's to pay.
  if (checkout.provider !== 'cashnet') {
    return { outcome: 'ORPHAN', reason: `checkout ${checkout.id} is paid through PayPal, not CashNet: CashNet tx ${postback.tx || '(none)'}, result ${postback.result} was not applied to it; if CashNet took money, refund it there` }
  }
  const result = String(postback.result)
  const duplicate = earlier.some(e => e.result === result && e.tx === postback.tx && e.outcome !== 'REJECTED' && e.outcome !== 'TX_REUSED')
  if (duplicate) return { outcome: 'DUPLICATE', reason: `the same postback again (tx ${postback.tx || '(none)'}, result ${result})` }

  const payment = { tx: postback.tx, batchno: postback.batchno, effdate: postback.effdate, pmtcode: postback.pmtcode }

  if (postback.result === 0) {
    // A tx belongs to one checkout: a second use is kept for staff and changes nothing here.
    if (postback.tx !== '' && elsewhere.length > 0) {
      return {
        outcome: 'TX_REUSED',
        reason: `CashNet tx ${postback.tx} is already recorded for checkout ${elsewhere.join(', ')}: not accepted for this checkout, nothing posted; check CashNet`
      }
    }
    if (checkout.tx !== null && checkout.tx !== '' && checkout.tx !== postback.tx) {
      return {
        outcome: 'DOUBLE_CHARGE',
        to: 'NEEDS_ATTENTION',
        attentionKind: 'DOUBLE_CHARGE',
        reason: `second CashNet transaction ${postback.tx || '(no tx)'} for checkout already paid by ${checkout.tx}: refund tx ${postback.tx || '(no tx)'} in CashNet and record the refund`
      }
    }
    if (!OPEN_STATES.has(checkout.state)) {
      return { outcome: 'DUPLICATE', reason: `success for a checkout already ${checkout.state}` }
    }
    if (postback.tx === '') {
      return { outcome: 'MISMATCH', to: 'NEEDS_ATTENTION', attentionKind: 'MISMATCH', reason: 'CashNet reported success without a transaction number' }
    }
    const mismatch = describeMismatch(checkout, postback)
    if (mismatch !== null) return { outcome: 'MISMATCH', to: 'NEEDS_ATTENTION', attentionKind: 'MISMATCH', reason: `paid amounts differ from the checkout: ${mismatch}`, payment }
    return { outcome: 'PAID', to: 'PAID', reason: `paid ${formatDecimal(postback.total)} by CashNet tx ${postback.tx}`, payment }
  }

  const message = postback.respmessage !== '' ? postback.respmessage : `result ${result}`
  if (checkout.state !== 'CREATED' && checkout.state !== 'EXPIRED') {
    return { outcome: 'LATE_FAILURE', reason: `failure (${message}) for a checkout already ${checkout.state}; nothing changed` }
  }
  if (isCancel(postback)) return { outcome: 'CANCELLED', to: 'CANCELLED', reason: `cancelled by the patron (${message})` }
  return { outcome: 'DECLINED', to: 'DECLINED', reason: `declined: ${message}` }
}
