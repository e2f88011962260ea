// `npm run trace`: a payment's whole story from the shell, for the admin on the server (issue 19): found by
// CashNet tx, checkout id or username (or Alma primary id), read from the ledger only, told as the admin page
// tells it (lines, postbacks, Alma calls, events in words, refunds), or as JSON.

import type { Ledger } from '../ledger/ledger.ts'
import type { CheckoutHistory } from '../ledger/types.ts'
import { type Cents, formatMoney } from '../money.ts'
import { eventInWords, localTime } from '../payments/story.ts'
import { providerOf } from '../payments/staff-actions.ts'

/** At most this many payments are told for one key (a username with a long history). */
export const TRACE_LIMIT = 50

/** The payments a key names: the checkout with that id, else those with that tx, username or primary id. */
export async function findPayments (ledger: Ledger, key: string): Promise<CheckoutHistory[]> {
  const wanted = key.trim()
  if (wanted === '') return []
  const direct = await ledger.history(wanted)
  if (direct !== undefined) return [direct]
  const { checkouts } = await ledger.listCheckouts({ search: wanted, limit: TRACE_LIMIT })
  // the list's search also matches part of a patron's name; a trace wants the exact keys only
  const exact = new Set<string>()
  for (const c of checkouts) {
    if (c.tx === wanted || c.userId === wanted || c.primaryId === wanted) exact.add(c.id)
  }
  for (const p of await ledger.postbacksWithTx(wanted)) if (p.checkoutId !== null) exact.add(p.checkoutId)
  const out: CheckoutHistory[] = []
  for (const id of exact) {
    const history = await ledger.history(id)
    if (history !== undefined) out.push(history)
  }
  return out.sort((a, b) => a.checkout.createdAt.localeCompare(b.checkout.createdAt))
}

/** One payment's story as text, times in `zone`. */
export function traceText (history: CheckoutHistory, zone: string): string {
  const c = history.checkout
  const at = (iso: string | null): string => localTime(iso, zone)
  const out: string[] = []
  out.push(`Checkout ${c.id}: ${c.state}${c.state === 'NEEDS_ATTENTION' && c.resolvedAt !== null ? ' (settled by staff)' : ''}`)
  out.push(`  patron      ${c.patronName} (${c.userIdKind === 'primary-id' ? 'paid from a pay link' : `username ${c.userId}`}, Alma primary id ${c.primaryId})`)
  out.push(`  total       ${formatMoney(c.total, c.currency)}   ${providerOf(c)} tx ${c.tx ?? '-'}   batch ${c.batchno ?? '-'}`)
  out.push(`  created     ${at(c.createdAt)}`)
  if (c.paidAt !== null) out.push(`  paid        ${at(c.paidAt)}`)
  if (c.postedAt !== null) out.push(`  posted      ${at(c.postedAt)}`)
  if (c.attentionReason !== null && c.state === 'NEEDS_ATTENTION') out.push(`  attention   ${c.attentionKind ?? 'UNKNOWN'}: ${c.attentionReason}`)
  if (c.resolution !== null) out.push(`  settled     ${at(c.resolvedAt)} by ${c.resolvedBy ?? '?'}: ${c.resolution}`)
  out.push('Fee lines:')
  for (const l of c.lines) {
    out.push(`  ${l.lineNo}. ${l.feeTypeDesc !== '' ? l.feeTypeDesc : l.feeType} (${l.owner}) fee ${l.feeId}: ${formatMoney(l.amount, c.currency)}` +
      (l.postedAt !== null ? `, recorded in Alma ${formatMoney((l.postedAmount ?? 0) as Cents, c.currency)} at ${at(l.postedAt)}` : ', not recorded in Alma'))
  }
  out.push(`Postbacks (${history.postbacks.length}):`)
  for (const p of history.postbacks) out.push(`  ${at(p.receivedAt)}  ${p.outcome}  tx ${p.tx || '-'}  result ${p.result || '-'}  from ${p.peer}${p.reason !== '' ? `: ${p.reason}` : ''}`)
  out.push(`Alma calls (${history.almaCalls.length}):`)
  for (const a of history.almaCalls) out.push(`  ${at(a.at)}  ${a.method} ${a.path}  ${a.status}${a.errorCode !== '' ? ` ${a.errorCode} ${a.errorMessage}` : ''}${a.trackingId !== '' ? ` (tracking ${a.trackingId})` : ''}  ${a.durationMs} ms`)
  out.push(`Refunds (${history.refunds.length}):`)
  for (const r of history.refunds) out.push(`  ${at(r.at)}  ${formatMoney(r.amount, c.currency)} of tx ${r.tx}, ${providerOf(c)} refund ${r.reference}, by ${r.by}: ${r.note}`)
  out.push(`Events (${history.events.length}):`)
  for (const e of history.events) out.push(`  ${at(e.at)}  ${eventInWords(e, c)}  [${e.event}]`)
  return out.join('\n') + '\n'
}
