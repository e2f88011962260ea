// Posting a paid checkout to Alma exactly once per fee line (SPEC section 7). Each line is marked posted in the
// ledger as soon as Alma accepts it; before each payment a durable "pay started" event is written, so after a
// crash the fee itself is consulted (its transactions carry our CashNet tx) before anything is paid again.

import type { AlmaCallObserver, AlmaClient } from '../alma/client.ts'
import { AlmaError, isAlmaFailure } from '../alma/errors.ts'
import type { Fee } from '../alma/types.ts'
import type { Ledger } from '../ledger/ledger.ts'
import type { Checkout } from '../ledger/types.ts'
import { type Cents, formatDecimal } from '../money.ts'
import { releaseBlocksIfSettled } from './blocks.ts'

export interface PosterDeps {
  alma: AlmaClient
  ledger: Ledger
  paymentMethod: string
  releaseBlocks: ReadonlySet<string>
  /** set when the service is shutting down: stop between two fee payments */
  signal?: AbortSignal
}

export type PostingOutcome =
  | { kind: 'POSTED', checkout: Checkout }
  | { kind: 'NEEDS_ATTENTION', checkout: Checkout, reason: string }
  | { kind: 'RETRY', error: Error & { retryable: boolean, retryAfterSeconds?: number } }
  | { kind: 'SKIPPED', reason: string }

function observer (ledger: Ledger, checkoutId: string): AlmaCallObserver {
  return (call) => {
    ledger.recordAlmaCall({
      checkoutId,
      at: new Date(call.startedAt).toISOString(),
      method: call.method,
      path: call.path,
      status: call.status,
      errorCode: call.errorCode,
      errorMessage: call.errorMessage,
      trackingId: call.trackingId,
      durationMs: call.durationMs
    })
  }
}

function paidWithTx (fee: Fee, tx: string): Cents | null {
  const ours = fee.transactions.filter(t => t.externalTransactionId === tx)
  if (ours.length === 0) return null
  return ours.reduce((s, t) => s + Math.abs(t.amount), 0) as Cents
}

function needsAttention (deps: PosterDeps, checkout: Checkout, reason: string, detail: Record<string, unknown>, unapplied?: Cents): PostingOutcome {
  deps.ledger.transition({ checkoutId: checkout.id, from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'payment.needs_attention', attentionReason: reason, unapplied, detail: { reason, ...detail } })
  return { kind: 'NEEDS_ATTENTION', checkout: deps.ledger.getCheckout(checkout.id) as Checkout, reason }
}

export async function postCheckoutToAlma (deps: PosterDeps, checkoutId: string): Promise<PostingOutcome> {
  const { alma, ledger } = deps
  const checkout = ledger.getCheckout(checkoutId)
  if (checkout === undefined) return { kind: 'SKIPPED', reason: 'no such checkout' }
  if (checkout.state !== 'PAID') return { kind: 'SKIPPED', reason: `checkout is ${checkout.state}` }
  const tx = checkout.tx ?? ''
  if (tx === '') return needsAttention(deps, checkout, 'paid checkout has no CashNet transaction number', {})
  const observe = observer(ledger, checkout.id)
  const history = ledger.history(checkout.id)
  const started = new Set((history?.events ?? []).filter(e => e.event === 'line.pay_started').map(e => Number(JSON.parse(e.detail).line)))

  try {
    const feeList = await alma.listActiveFees(checkout.primaryId, { byPrimaryId: true, observe })
    const listed = new Map(feeList.fees.map(f => [f.id, f]))
    const notes: string[] = []

    for (const line of checkout.lines) {
      if (line.postedAt !== null) continue
      if (deps.signal?.aborted === true) return { kind: 'SKIPPED', reason: 'shutting down; the rest is posted on restart' }
      let fee = listed.get(line.feeId)
      // Not in the ACTIVE list (perhaps closed by our own earlier payment), or an earlier attempt may have
      // reached Alma: read the fee itself, whatever its status, before deciding.
      if (fee === undefined || (started.has(line.lineNo) && paidWithTx(fee, tx) === null)) {
        try {
          fee = await alma.getFee(checkout.primaryId, line.feeId, observe)
        } catch (error) {
          if (!(error instanceof AlmaError) || error.errorCode !== '401665') throw error
          fee = undefined
        }
      }
      const already = fee === undefined ? null : paidWithTx(fee, tx)
      if (already !== null) {
        ledger.markLinePosted(checkout.id, line.lineNo, Math.min(already, line.amount) as Cents, { feeId: line.feeId, recovered: 'Alma already shows this tx on the fee' })
        if (already < line.amount) notes.push(`fee ${line.feeId}: ${formatDecimal((line.amount - already) as Cents)} not applied`)
        continue
      }
      if (fee === undefined || fee.status.code !== 'ACTIVE' || fee.balance <= 0) {
        ledger.markLinePosted(checkout.id, line.lineNo, 0 as Cents, { feeId: line.feeId, unapplied: line.amount, why: fee === undefined ? 'fee not found in Alma' : `fee is ${fee.status.code || 'closed'}` })
        notes.push(`fee ${line.feeId}: closed or gone in Alma, ${formatDecimal(line.amount)} not applied`)
        continue
      }
      const amount = Math.min(line.amount, fee.balance) as Cents
      ledger.audit(checkout.id, 'line.pay_started', { line: line.lineNo, feeId: line.feeId, amount })
      await alma.payFee({
        userId: checkout.primaryId,
        feeId: line.feeId,
        amount,
        method: deps.paymentMethod,
        externalTransactionId: tx,
        comment: checkout.id
      }, observe)
      ledger.markLinePosted(checkout.id, line.lineNo, amount, { feeId: line.feeId })
      if (amount < line.amount) notes.push(`fee ${line.feeId}: balance was ${formatDecimal(fee.balance)}, ${formatDecimal((line.amount - amount) as Cents)} not applied`)
    }

    const posted = ledger.getCheckout(checkout.id) as Checkout
    const unapplied = posted.lines.reduce((s, l) => s + (l.amount - (l.postedAmount ?? 0)), 0) as Cents
    if (unapplied > 0) {
      return needsAttention(deps, posted, `${formatDecimal(unapplied)} could not be applied in Alma (refund or credit it): ${notes.join('; ')}`, { unapplied }, unapplied)
    }
    const moved = ledger.transition({ checkoutId: checkout.id, from: ['PAID'], to: 'POSTED', event: 'payment.posted', unapplied: 0 as Cents, detail: { tx, total: posted.total } })
    if (!moved) return { kind: 'SKIPPED', reason: 'checkout changed state while posting' }

    if (deps.releaseBlocks.size > 0) {
      try {
        const release = await releaseBlocksIfSettled(alma, checkout.primaryId, deps.releaseBlocks, observe)
        ledger.audit(checkout.id, release.released.length > 0 ? 'blocks.released' : 'blocks.kept', { released: release.released, skipped: release.skipped ?? null, balance: release.balance })
      } catch (error) {
        ledger.audit(checkout.id, 'blocks.release_failed', { error: (error as Error).message })
      }
    }
    return { kind: 'POSTED', checkout: ledger.getCheckout(checkout.id) as Checkout }
  } catch (error) {
    if (!isAlmaFailure(error)) throw error
    if (error.retryable) return { kind: 'RETRY', error }
    return needsAttention(deps, checkout, `Alma refused: ${error.errorCode || error.status} ${error.errorMessage}${error.trackingId !== '' ? ` (trackingId ${error.trackingId})` : ''}`.trim(), {
      status: error.status, errorCode: error.errorCode, errorMessage: error.errorMessage, trackingId: error.trackingId
    })
  }
}
