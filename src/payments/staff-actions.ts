// What staff may do with a payment, as one payment rule (issue 13, items 1 and 2). The admin pages show only the
// actions it allows and the reasons for the others; the admin routes ask it again before acting; the poster uses
// the same line caps as its last line of defence. The rule it all serves: the money sent to Alma for a CashNet
// tx never exceeds what CashNet reported for that tx, in total and line by line, whatever staff click.

import type { AttentionKind, CashnetReport, Checkout, CheckoutLine, MoneyRecord } from '../ledger/types.ts'
import { type Cents, formatDecimal } from '../money.ts'
import { PROVIDER_LABEL } from '../providers/provider.ts'

export const STAFF_ACTIONS = ['retry', 'post-confirmed', 'refund', 'settle'] as const
export type StaffAction = typeof STAFF_ACTIONS[number]

export type Verdict = { allowed: true } | { allowed: false, reason: string }

/** A CashNet tx of this checkout that staff may record a refund for, and how much of it is left to refund. */
export interface Refundable {
  tx: string
  role: 'payment' | 'double-charge'
  collected: Cents
  refunded: Cents
  max: Cents
}

const OK: Verdict = { allowed: true }
const no = (reason: string): Verdict => ({ allowed: false, reason })

/** A verdict as the ledger's StaffRule wants it: the reason it refuses, or null when allowed. */
export function whyNot (verdict: Verdict): string | null {
  return verdict.allowed ? null : verdict.reason
}

/** Outcomes whose postback reported money taken for this checkout under its tx. */
const PAYMENT_OUTCOMES = new Set(['PAID', 'MISMATCH'])

/** What CashNet reported for the checkout's own tx: the first successful postback that carried it. */
export function paymentReport (record: { checkout: Pick<Checkout, 'tx'>, reports: readonly CashnetReport[] }): CashnetReport | null {
  const tx = record.checkout.tx ?? ''
  if (tx === '') return null
  return record.reports.find(r => r.tx === tx && PAYMENT_OUTCOMES.has(r.outcome)) ?? null
}

/** What CashNet reported for a tx of this checkout (its own or a double charge); 0 if it reported nothing. */
export function collectedFor (record: MoneyRecord, tx: string): Cents {
  return (record.reports.find(r => r.tx === tx)?.total ?? 0) as Cents
}

export function refundedFor (record: MoneyRecord, tx: string): Cents {
  return record.refunds.filter(r => r.tx === tx).reduce((s, r) => s + r.amount, 0) as Cents
}

/** The second (third...) charges: tx CashNet reported as paid for this checkout besides its own. */
export function extraCharges (record: MoneyRecord): string[] {
  const own = record.checkout.tx ?? ''
  return [...new Set(record.reports.filter(r => r.outcome === 'DOUBLE_CHARGE' && r.tx !== '' && r.tx !== own).map(r => r.tx))]
}

/**
 * The most that may ever be sent to Alma for each line: what CashNet reported for the item in the same position,
 * if its code agrees and its quantity is at least 1, and never more than the line. A line CashNet did not confirm
 * gets 0. The caps add up to at most the report's total (the total is the sum of its items).
 */
export function lineCaps (checkout: Pick<Checkout, 'lines'>, report: CashnetReport | null): Map<number, Cents> {
  const caps = new Map<number, Cents>()
  let left = report?.total ?? 0
  for (const [index, line] of checkout.lines.entries()) {
    const item = report?.items.find(i => i.itemNo === index + 1)
    const sameCode = item !== undefined && (item.itemCode === '' || item.itemCode.toUpperCase() === line.itemCode.toUpperCase())
    const cap = item !== undefined && sameCode && item.qty >= 1 ? Math.max(0, Math.min(line.amount, item.amount, left)) : 0
    left -= cap
    caps.set(line.lineNo, cap as Cents)
  }
  return caps
}

function sum (values: number[]): Cents {
  return values.reduce((s, v) => s + v, 0) as Cents
}

function unposted (checkout: Checkout): CheckoutLine[] {
  return checkout.lines.filter(l => l.postedAt === null)
}

/** The name of the provider that took this payment's money, as staff and patrons know it (CashNet, PayPal). */
export function providerOf (checkout: Pick<Checkout, 'provider'>): string {
  return PROVIDER_LABEL[checkout.provider] ?? PROVIDER_LABEL.cashnet
}

/** Why nothing may be posted for this payment whatever the action, or null. */
function whyNoPosting (record: MoneyRecord): string | null {
  const c = record.checkout
  const tx = c.tx ?? ''
  const name = providerOf(c)
  if (c.state !== 'PAID' && c.state !== 'NEEDS_ATTENTION') return `This payment is ${c.state}: there is nothing to post.`
  if (c.state === 'NEEDS_ATTENTION' && c.resolvedAt !== null) return `Staff (${c.resolvedBy ?? 'staff'}) marked this payment settled: nothing more is posted for it.`
  if (tx === '') return `${name} reported no transaction number for this payment, so nothing can be posted; find the payment in ${name}.`
  if (refundedFor(record, tx) > 0) return `A refund of ${name} tx ${tx} is recorded: money refunded cannot also be posted to Alma.`
  const report = paymentReport(record)
  if (report === null) return `There is no readable ${name} report of the amounts for tx ${tx}, so nothing it confirmed can be posted.`
  if (c.provider === 'paypal' && report.total === 0) {
    // recorded with nothing confirmed (capture-rules reportedItems): refunded before it was recorded, or another currency
    return `PayPal confirmed nothing of capture ${tx} that can be posted: PayPal refunded it (all or part) before this payment was recorded, or took it in another currency (see the reason above). Nothing is posted to Alma for it from here: apply in Alma by hand anything the patron kept, then mark it settled with a note of what was done.`
  }
  if (c.state === 'NEEDS_ATTENTION') {
    switch (c.attentionKind ?? 'UNKNOWN') {
      case 'DOUBLE_CHARGE': {
        const extra = extraCharges(record).join(', ')
        return `${name} charged this checkout a second time (tx ${extra}): record that refund; posting is never the answer to a double charge.`
      }
      case 'UNAPPLIED':
        return `Every fee line has been sent to Alma; there is nothing left to post. Refund the unapplied amount in ${name} or credit it in Alma by hand.`
      case 'REVERSED':
        return 'The payment provider took this payment back (a reversal or chargeback): nothing more is posted to Alma for it. Decide in Alma whether the fees are owed again, then mark it settled with a note of what was done.'
      case 'UNKNOWN':
        return 'This payment was handed to staff before the service recorded the kind of problem: check its history, then record a refund or mark it settled.'
      default:
    }
  }
  if (unposted(c).length === 0) return 'Every fee line has been sent to Alma; there is nothing left to post.'
  return null
}

export function verdicts (record: MoneyRecord): Record<StaffAction, Verdict> {
  return { retry: retryVerdict(record), 'post-confirmed': postConfirmedVerdict(record), refund: refundVerdict(record), settle: settleVerdict(record) }
}

export function verdict (record: MoneyRecord, action: StaffAction): Verdict {
  return verdicts(record)[action]
}

/** Retry posting the checkout's own amounts: only when CashNet confirmed every line still to post, in full. */
function retryVerdict (record: MoneyRecord): Verdict {
  const blocked = whyNoPosting(record)
  if (blocked !== null) return no(blocked)
  const c = record.checkout
  const name = providerOf(c)
  const caps = lineCaps(c, paymentReport(record))
  const left = unposted(c)
  const confirmed = sum(left.map(l => caps.get(l.lineNo) ?? 0))
  const owed = sum(left.map(l => l.amount))
  if (c.state === 'NEEDS_ATTENTION' && c.attentionKind === 'MISMATCH') {
    return no(`${name} reported other amounts than the checkout (${formatDecimal(confirmed)} confirmed for the ${formatDecimal(owed)} left): a retry would post the checkout’s amounts. ${confirmed > 0 ? `Post only what ${name} confirmed, or refund it.` : `Refund what ${name} collected, or mark it settled.`}`)
  }
  if (confirmed < owed) return no(`${name} confirmed ${formatDecimal(confirmed)} of the ${formatDecimal(owed)} left to post: post only what it confirmed.`)
  return OK
}

/** Post, line by line, at most what CashNet confirmed: the answer to a mismatch (or a retry of one). */
function postConfirmedVerdict (record: MoneyRecord): Verdict {
  const blocked = whyNoPosting(record)
  if (blocked !== null) return no(blocked)
  const c = record.checkout
  const name = providerOf(c)
  const caps = lineCaps(c, paymentReport(record))
  const left = unposted(c)
  const confirmed = sum(left.map(l => caps.get(l.lineNo) ?? 0))
  const owed = sum(left.map(l => l.amount))
  if (confirmed === 0) return no(`${name} confirmed ${formatDecimal(0 as Cents)} for the fee lines left to post: there is nothing it confirmed to post. Refund what it collected, or mark it settled.`)
  const mismatch = c.state === 'NEEDS_ATTENTION' && c.attentionKind === 'MISMATCH'
  if (!mismatch && confirmed === owed) return no(`${name} confirmed every line in full: use Retry posting.`)
  return OK
}

/** The tx staff may record refunds for: a double charge's extra tx, otherwise the checkout's own. */
export function refundable (record: MoneyRecord): Refundable[] {
  const c = record.checkout
  const doubleCharge = c.attentionKind === 'DOUBLE_CHARGE'
  const txs = doubleCharge ? extraCharges(record) : (c.tx ?? '') === '' ? [] : [c.tx as string]
  return txs.map(tx => {
    const collected = collectedFor(record, tx)
    const refunded = refundedFor(record, tx)
    return { tx, role: doubleCharge ? 'double-charge' as const : 'payment' as const, collected, refunded, max: Math.max(0, collected - refunded) as Cents }
  }).filter(r => r.max > 0)
}

function refundVerdict (record: MoneyRecord): Verdict {
  const c = record.checkout
  if (c.state !== 'NEEDS_ATTENTION') return no(`Refunds are recorded here for payments that need attention; this one is ${c.state}.`)
  if (refundable(record).length === 0) {
    const txs = c.attentionKind === 'DOUBLE_CHARGE' ? extraCharges(record) : (c.tx ?? '') === '' ? [] : [c.tx as string]
    const name = providerOf(c)
    if (txs.length === 0) return no(`${name} reported no transaction number, so there is no ${name} payment to record a refund against; settle it with a note of what was done.`)
    return no(`Nothing is left to refund: ${txs.map(tx => `tx ${tx}: ${name} reported ${formatDecimal(collectedFor(record, tx))}, ${formatDecimal(refundedFor(record, tx))} refunded`).join('; ')}.`)
  }
  return OK
}

/**
 * A refund reference names one refund at its provider (CashNet's refund reference, PayPal's refund id), so it is
 * recorded once per tx of a checkout. This answers a refund submitted again under a reference already recorded:
 * `repeat` when it is the same refund (same amount: a double click, a resent form, a refund PayPal reported
 * already), otherwise a refusal that says which amount the reference was recorded with; null for a new reference.
 */
export function refundAlreadyRecorded (record: MoneyRecord, tx: string, reference: string, amount: Cents | null): { repeat: boolean, reason: string } | null {
  const earlier = record.refunds.find(r => r.tx === tx && r.reference === reference)
  if (earlier === undefined) return null
  const who = earlier.by === 'paypal' ? 'from PayPal’s report' : `by ${earlier.by}`
  if (amount === earlier.amount) {
    return { repeat: true, reason: `The refund of ${formatDecimal(earlier.amount)} of tx ${tx} with reference ${reference} is already recorded (${who}): nothing more was recorded.` }
  }
  return {
    repeat: false,
    reason: `Refund reference ${reference} is already recorded for ${formatDecimal(earlier.amount)}, not ${amount === null ? 'another amount' : formatDecimal(amount)} (${who}): ` +
      'a reference names one refund. Nothing was recorded; if another refund was made, record it with its own reference.'
  }
}

/**
 * Checks one refund staff submitted: its reference must not be recorded already for the tx, the tx must be
 * refundable and the amount at most what is left of it.
 */
export function whyRefundRefused (record: MoneyRecord, tx: string, amount: Cents, reference: string): string | null {
  const recorded = refundAlreadyRecorded(record, tx, reference, amount)
  if (recorded !== null) return recorded.reason
  const general = refundVerdict(record)
  if (!general.allowed) return general.reason
  const target = refundable(record).find(r => r.tx === tx)
  const name = providerOf(record.checkout)
  if (target === undefined) return `${name} tx ${tx} is not one this payment can record a refund for (${refundable(record).map(r => r.tx).join(', ')}).`
  if (amount <= 0) return 'A refund is more than 0.00.'
  if (amount > target.max) return `A refund of ${formatDecimal(amount)} is more than is left of tx ${tx}: ${name} reported ${formatDecimal(target.collected)}, ${formatDecimal(target.refunded)} already refunded.`
  return null
}

/** After a refund is recorded: close a fully refunded double charge, or settle a payment whose money is all accounted for. */
export function refundEffect (record: MoneyRecord): 'restore' | 'settle' | 'none' {
  const c = record.checkout
  if (c.state !== 'NEEDS_ATTENTION') return 'none'
  if (c.attentionKind === 'DOUBLE_CHARGE') {
    return extraCharges(record).every(tx => refundedFor(record, tx) >= collectedFor(record, tx)) ? 'restore' : 'none'
  }
  const tx = c.tx ?? ''
  if (tx === '' || c.resolvedAt !== null) return 'none'
  const applied = sum(c.lines.map(l => l.postedAmount ?? 0))
  return refundedFor(record, tx) + applied >= collectedFor(record, tx) ? 'settle' : 'none'
}

/** Mark settled: a note of what was done; never for an open double charge, whose refund must be recorded. */
function settleVerdict (record: MoneyRecord): Verdict {
  const c = record.checkout
  if (c.state !== 'NEEDS_ATTENTION') return no(`This payment is ${c.state}; only payments that need attention can be marked settled.`)
  if (c.resolvedAt !== null) return no(`This payment was already marked settled by ${c.resolvedBy ?? 'staff'}.`)
  if (c.attentionKind === 'DOUBLE_CHARGE') {
    const open = refundable(record)
    if (open.length > 0) return no(`A double charge stays open until its refund is recorded: record the refund of tx ${open.map(r => `${r.tx} (${formatDecimal(r.max)})`).join(', ')}.`)
  }
  return OK
}

/** A label for each kind, for the staff pages (MISMATCH names the payment's provider: attentionKindLabel). */
export const ATTENTION_KIND_LABEL: Record<string, string> = {
  MISMATCH: 'CashNet reported other amounts than the checkout',
  DOUBLE_CHARGE: 'Double charge',
  UNAPPLIED: 'Money Alma could not take',
  ALMA_ERROR: 'Alma refused',
  ATTEMPTS_EXHAUSTED: 'Alma kept failing',
  UNKNOWN: 'Recorded before kinds were kept',
  REFUNDED: 'Refunded by the payment provider',
  REVERSED: 'Taken back by the payment provider (reversal or chargeback)'
}

/** The label of a payment's kind of problem, naming the provider that took its money. */
export function attentionKindLabel (kind: AttentionKind, checkout: Pick<Checkout, 'provider'>): string {
  if (kind === 'MISMATCH') return `${providerOf(checkout)} reported other amounts than the checkout`
  return ATTENTION_KIND_LABEL[kind] ?? kind
}

/** What the payment page shows: the verdict of every action, what can be refunded, and CashNet's cap per line. */
export interface StaffView {
  verdicts: Record<StaffAction, Verdict>
  refundable: Refundable[]
  /** per line, what CashNet confirmed for it (null: no readable report) */
  confirmed: Map<number, Cents> | null
}

export function staffView (record: MoneyRecord): StaffView {
  const report = paymentReport(record)
  return { verdicts: verdicts(record), refundable: refundable(record), confirmed: report === null ? null : lineCaps(record.checkout, report) }
}
