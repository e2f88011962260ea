// A payment's story for people: audit events in words ("payment recorded in Alma: 5.00 for Overdue fine"),
// times in the library's zone with the zone shown. The admin page and `npm run trace` tell it the same way;
// the raw event name and detail stay one click (or one --json) away.

import type { AuditEvent, Checkout } from '../ledger/types.ts'
import { type Cents, formatDecimal } from '../money.ts'
import { providerOf } from './staff-actions.ts'

/** "2026-10-05 23:30:00 PDT (America/Los_Angeles)": a time in `zone`, the zone shown. */
export function localTime (iso: string | null, zone: string): string {
  if (iso === null || iso === '') return ''
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short'
  }).formatToParts(date)
  const get = (type: string): string => parts.find(p => p.type === type)?.value ?? ''
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}:${get('second')} ${get('timeZoneName')}`
}

function detailOf (event: AuditEvent): Record<string, any> {
  try {
    const parsed = JSON.parse(event.detail)
    return parsed !== null && typeof parsed === 'object' ? parsed : {}
  } catch {
    return {}
  }
}

const money = (value: unknown): string => typeof value === 'number' && Number.isInteger(value) ? formatDecimal(value as Cents) : '?'

/** One audit event in words, for staff; the provider named is the one that took this checkout's money. */
export function eventInWords (event: AuditEvent, checkout: Pick<Checkout, 'lines' | 'total' | 'provider'>): string {
  const d = detailOf(event)
  const provider = providerOf(checkout)
  const line = typeof d.line === 'number' ? checkout.lines.find(l => l.lineNo === d.line) : undefined
  const fee = line !== undefined ? (line.feeTypeDesc !== '' ? line.feeTypeDesc : line.feeType) : 'a fee'
  const by = typeof d.by === 'string' ? ` by ${d.by}` : ''
  switch (event.event) {
    case 'checkout.created': return `checkout started: ${money(d.total)} for ${String(d.lines ?? checkout.lines.length)} fee(s)`
    case 'checkout.expired': return 'checkout expired unpaid'
    case 'postback.paid': return `${provider} reported the payment (tx ${String(d.tx ?? '')})`
    case 'postback.duplicate': return `${provider} sent the same result again (tx ${String(d.tx ?? '')}); nothing changed`
    case 'postback.declined': return `${provider} reported the card declined`
    case 'postback.cancelled': return `the patron cancelled at ${provider}`
    case 'postback.mismatch': return `${provider} reported other amounts than the checkout: ${String(d.reason ?? '')}`
    case 'postback.double_charge': return `${provider} charged this checkout a second time (tx ${String(d.tx ?? '')})`
    case 'postback.tx_reused': return `a postback reused a tx already recorded for another checkout (tx ${String(d.tx ?? '')})`
    case 'postback.late_failure': return `${provider} reported a failure after the payment: ${String(d.reason ?? '')}`
    case 'line.posted':
      return d.posted === 0
        ? `nothing recorded in Alma for ${fee}${typeof d.why === 'string' ? `: ${d.why}` : ''}`
        : `payment recorded in Alma: ${money(d.posted)} for ${fee}`
    case 'payment.posted': return 'every fee recorded in Alma: payment complete'
    case 'payment.needs_attention': return `handed to staff: ${String(d.reason ?? 'needs attention')}`
    case 'posting.attempt_failed': return `posting to Alma failed (attempt ${String(d.attempt ?? '?')}): ${String(d.error ?? d.lastError ?? '')}`.replace(/: $/, '')
    case 'posting.retry_requested': return `staff asked to ${d.action === 'post-confirmed' ? `post what ${provider} confirmed` : 'retry posting'}${by}`
    case 'reversal.recorded': return `${String(d.by) === 'paypal' ? 'PayPal' : 'the payment provider'} took back ${money(d.amount)} of tx ${String(d.tx ?? '')} (a reversal or chargeback, reference ${String(d.reference ?? '')}): ${String(d.note ?? '')}`
    case 'paypal.reversal_amount_unknown': return `PayPal took back money of tx ${String(d.tx ?? '')} without saying how much (reversal ${String(d.reversal ?? '')}: ${String(d.problem ?? '')}); nothing booked until staff find the amount in PayPal`
    case 'refund.recorded': return `refund recorded${by}: ${money(d.amount)} of ${provider} tx ${String(d.tx ?? '')} (${provider} refund ${String(d.reference ?? '')}): ${String(d.note ?? '')}`
    case 'double_charge.refunded': return `the double charge is refunded in full${by}; back to ${event.toState ?? 'the state before'}`
    case 'attention.resolved': return `marked settled${by}: ${String(d.resolution ?? '')}`
    case 'attention.reopened': return `back in front of staff after it was settled: ${String(d.reason ?? '')}`
    default: return event.event.replace(/[._]/g, ' ')
  }
}
