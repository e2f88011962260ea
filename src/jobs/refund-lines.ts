// Which money a refund returns, and which fee lines it belongs to. The GL journal credits revenue only with what
// Alma accepted, so a refund is booked (a revenue or `refunds` debit and a clearing credit) only for the part of
// it that returns money Alma accepted; the rest returns money a provider took that was never revenue (a double
// charge, an amount Alma could not apply) and has no journal line. The same spread everywhere (export:gl and
// /admin/reports), so the two always agree.

import type { CheckoutLine, RecordedRefund } from '../ledger/types.ts'
import type { Cents } from '../money.ts'
import { collectedFor } from '../payments/staff-actions.ts'

export interface RefundShare {
  line: CheckoutLine
  amount: Cents
}

export interface RefundSpread {
  /** money Alma accepted (revenue), line by line: the journal's refund debits */
  booked: RefundShare[]
  /** money the provider took and Alma never accepted, line by line: no journal line (the report shows it apart) */
  unbooked: RefundShare[]
}

/** What is left to return, line by line, of one kind of money of one tx. */
type Room = Map<number, number>

/**
 * Which money a refund returns, judged from its checkout's money record. Only the checkout's own tx was posted to
 * Alma: of its money, what Alma accepted (the lines' postedAmount) was booked and the rest of what the provider
 * collected was not; any other tx of the checkout (a double charge) was never booked at all. The refunds of a tx
 * are taken in the order they were recorded, each returning unbooked money first (what refunds are usually for),
 * then booked money, so two refunds never return the same money. Within a kind, line by line in line order (a
 * line's unbooked money: the rest of its amount), anything left over on the last line.
 */
export function spreadRefund (record: RecordedRefund): RefundSpread {
  const { refund } = record
  const lines = [...record.checkout.lines].sort((a, b) => a.lineNo - b.lineNo)
  if (lines.length === 0 || refund.amount <= 0) return { booked: [], unbooked: [] }
  const own = refund.tx !== '' && refund.tx === record.checkout.tx
  const booked: Room = new Map(lines.map(l => [l.lineNo, own ? Math.max(0, l.postedAmount ?? 0) : 0]))
  const unbooked: Room = new Map(lines.map(l => [l.lineNo, Math.max(0, l.amount - (booked.get(l.lineNo) ?? 0))]))
  // in all: of the own tx, what the provider reported collecting under it (without a report, the checkout's
  // amounts) less what Alma accepted; of another tx, whatever is refunded, as none of it was ever booked
  const reported = record.reports.some(r => r.tx === refund.tx)
  const collected = !own ? Infinity : reported ? collectedFor(record, refund.tx) : lines.reduce((s, l) => s + l.amount, 0)
  let unbookedLeft = Math.max(0, collected - [...booked.values()].reduce((s, v) => s + v, 0))
  const earlier = record.refunds.filter(r => r.tx === refund.tx && r.id < refund.id).sort((a, b) => a.id - b.id)
  let spread: RefundSpread = { booked: [], unbooked: [] }
  for (const r of [...earlier, refund]) {
    const fromUnbooked = Math.min(r.amount, unbookedLeft)
    unbookedLeft -= fromUnbooked
    // booked money is returned only up to what Alma accepted and no earlier refund took back; a refund beyond that
    // (of a capture in another currency, reported as nothing collected) returns money that was never revenue either
    const fromBooked = Math.min(r.amount - fromUnbooked, [...booked.values()].reduce((sum, room) => sum + room, 0))
    spread = { unbooked: take(lines, unbooked, r.amount - fromBooked), booked: take(lines, booked, fromBooked) }
  }
  return spread
}

/** Takes `amount` out of the room line by line, in line order, anything left over on the last line (unbooked money only: booked is never asked for more than its room). */
function take (lines: CheckoutLine[], room: Room, amount: number): RefundShare[] {
  const shares = new Map<number, number>()
  let left = amount
  for (const line of lines) {
    const share = Math.min(left, room.get(line.lineNo) ?? 0)
    if (share <= 0) continue
    shares.set(line.lineNo, share)
    room.set(line.lineNo, (room.get(line.lineNo) ?? 0) - share)
    left -= share
  }
  const last = lines[lines.length - 1]
  if (left > 0) shares.set(last.lineNo, (shares.get(last.lineNo) ?? 0) + left)
  return lines.filter(l => shares.has(l.lineNo)).map(line => ({ line, amount: shares.get(line.lineNo) as Cents }))
}
