// Which fee lines a refund belongs to. CashNet refunds a transaction, not a fee line, but the bursar's reports
// and the GL journal are per fee type and owning library. A refund is spread first over the money of each line
// that Alma did not accept (amount less what was posted: what refunds are usually for), in line order, then
// over the lines' accepted money in line order (a double charge, a refund of posted money), anything left over
// on the last line. The same spread everywhere (export:gl and /admin/reports), so the two always agree.

import type { Checkout, CheckoutLine } from '../ledger/types.ts'
import type { Cents } from '../money.ts'

export interface RefundShare {
  line: CheckoutLine
  amount: Cents
}

export function spreadRefund (checkout: Pick<Checkout, 'lines'>, amount: Cents): RefundShare[] {
  const lines = [...checkout.lines].sort((a, b) => a.lineNo - b.lineNo)
  if (lines.length === 0 || amount <= 0) return []
  const shares = new Map<number, number>()
  let left: number = amount
  const take = (line: CheckoutLine, room: number): void => {
    const share = Math.min(left, Math.max(0, room))
    if (share <= 0) return
    shares.set(line.lineNo, (shares.get(line.lineNo) ?? 0) + share)
    left -= share
  }
  for (const line of lines) take(line, line.amount - (line.postedAmount ?? 0))
  for (const line of lines) take(line, Math.min(line.amount, line.postedAmount ?? 0))
  if (left > 0) take(lines[lines.length - 1], left)
  return lines.filter(l => shares.has(l.lineNo)).map(line => ({ line, amount: shares.get(line.lineNo) as Cents }))
}
