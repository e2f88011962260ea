// Posting a paid checkout to Alma exactly once per fee line (SPEC section 7). Each line is marked posted in the
// ledger as soon as Alma accepts it; before each payment a durable "pay started" event is written, so after a
// crash the fee itself is consulted (its PAYMENT transactions carrying our CashNet tx) before anything is paid
// again. Whatever led here (the worker, a staff retry), no line is ever sent more than CashNet reported for it
// and the tx never more than CashNet's total (lineCaps in staff-actions.ts): the last line of defence.
// Under several processes the worker holds the posting under a lease (SPEC 11): every posting write carries its
// fence, and each payment checks the lease live twice (before its "pay started" event, and again once it has its
// Alma rate-limit slot, just before it is written), so a holder that lost it stops (LeaseLost) and pays nothing.

import type { AlmaCallObserver, AlmaClient } from '../alma/client.ts'
import { AlmaError, AmbiguousPrimaryId, isAlmaFailure, requireAnsweredFor } from '../alma/errors.ts'
import type { Fee } from '../alma/types.ts'
import { LeaseLost } from '../ledger/errors.ts'
import type { Ledger } from '../ledger/ledger.ts'
import type { AttentionKind, Checkout, ComposeMessages } from '../ledger/types.ts'
import { type Cents, formatDecimal } from '../money.ts'
import { releaseBlocksIfSettled } from './blocks.ts'
import { lineCaps, paymentReport, providerOf, refundedFor } from './staff-actions.ts'

export interface PosterDeps {
  alma: AlmaClient
  ledger: Ledger
  paymentMethod: string
  releaseBlocks: ReadonlySet<string>
  /** set when the service is shutting down: stop between two fee payments */
  signal?: AbortSignal
  /** the fence of the lease this posting is made under: every posting write carries it */
  fence?: number
  /** whether the lease is still this process's; asked before each payment (false: stop with LeaseLost) */
  leaseLive?: () => Promise<boolean>
  /** told of each posting's outcome and duration in seconds (ERROR: it threw): the service's metrics */
  onPosting?: (outcome: PostingOutcome['kind'] | 'ERROR', seconds: number) => void
  /** RECEIPT_EMAIL: the e-mails written to the outbox with POSTED or NEEDS_ATTENTION, in the same transaction */
  messages?: ComposeMessages
}

export type PostingOutcome =
  | { kind: 'POSTED', checkout: Checkout }
  | { kind: 'NEEDS_ATTENTION', checkout: Checkout, reason: string }
  | { kind: 'RETRY', error: Error & { retryable: boolean, retryAfterSeconds?: number } }
  | { kind: 'SKIPPED', reason: string }

/**
 * Records each Alma call of a posting. The Alma client does not wait for the write; `settled()` does, at the end
 * of the posting, and a write that failed fails the posting (the worker logs it and tries again later).
 */
function observer (ledger: Ledger, checkoutId: string, fence: number | undefined): { observe: AlmaCallObserver, settled: () => Promise<void> } {
  const writes: Array<Promise<void>> = []
  const observe: AlmaCallObserver = (call) => {
    const write = ledger.recordAlmaCall({
      checkoutId,
      at: new Date(call.startedAt).toISOString(),
      method: call.method,
      path: call.path,
      status: call.status,
      errorCode: call.errorCode,
      errorMessage: call.errorMessage,
      trackingId: call.trackingId,
      durationMs: call.durationMs
    }, fence)
    // settled() reports a failed write; until the posting reaches it, a rejection (a lease lost to another
    // instance, a ledger busy or out of reach) must not count as unhandled, which would stop the whole process
    write.catch(() => {})
    writes.push(write)
  }
  const settled = async (): Promise<void> => {
    const failed = (await Promise.allSettled(writes)).find(r => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  }
  return { observe, settled }
}

/** What Alma shows paid on this fee under our tx: PAYMENT transactions only (a refund carrying it is no payment). */
function paidWithTx (fee: Fee, tx: string): Cents | null {
  const ours = fee.transactions.filter(t => t.externalTransactionId === tx && t.type.toUpperCase() === 'PAYMENT')
  if (ours.length === 0) return null
  return ours.reduce((s, t) => s + Math.abs(t.amount), 0) as Cents
}

function stopping (deps: PosterDeps): boolean {
  return deps.signal?.aborted === true
}

/** Hands the checkout to staff, if it is still PAID: an outcome (and so an alert) only when the change won. */
async function needsAttention (deps: PosterDeps, checkout: Checkout, kind: AttentionKind, reason: string, detail: Record<string, unknown>, unapplied?: Cents): Promise<PostingOutcome> {
  const moved = await deps.ledger.transition({ checkoutId: checkout.id, from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'payment.needs_attention', attentionKind: kind, attentionReason: reason, unapplied, detail: { reason, ...detail }, messages: deps.messages }, deps.fence)
  if (!moved) return { kind: 'SKIPPED', reason: `checkout changed state while posting (${kind} not recorded: ${reason})` }
  return { kind: 'NEEDS_ATTENTION', checkout: await deps.ledger.getCheckout(checkout.id) as Checkout, reason }
}

export async function postCheckoutToAlma (deps: PosterDeps, checkoutId: string): Promise<PostingOutcome> {
  const calls = observer(deps.ledger, checkoutId, deps.fence)
  const started = performance.now()
  let kind: PostingOutcome['kind'] | 'ERROR' = 'ERROR'
  try {
    const outcome = await post(deps, checkoutId, calls.observe)
    kind = outcome.kind
    return outcome
  } finally {
    await calls.settled()
    deps.onPosting?.(kind, (performance.now() - started) / 1000)
  }
}

async function post (deps: PosterDeps, checkoutId: string, observe: AlmaCallObserver): Promise<PostingOutcome> {
  const { alma, ledger } = deps
  const record = await ledger.moneyRecord(checkoutId)
  if (record === undefined) return { kind: 'SKIPPED', reason: 'no such checkout' }
  const { checkout } = record
  if (checkout.state !== 'PAID') return { kind: 'SKIPPED', reason: `checkout is ${checkout.state}` }
  const tx = checkout.tx ?? ''
  const provider = providerOf(checkout)
  if (tx === '') return await needsAttention(deps, checkout, 'MISMATCH', `paid checkout has no ${provider} transaction number`, {})
  const report = paymentReport(record)
  if (report === null) return await needsAttention(deps, checkout, 'MISMATCH', `no readable ${provider} report of the amounts for tx ${tx}: nothing posted`, {})
  if (refundedFor(record, tx) > 0) return await needsAttention(deps, checkout, 'MISMATCH', `a refund of tx ${tx} is recorded: nothing posted`, {})
  const caps = lineCaps(checkout, report)
  const history = await ledger.history(checkout.id)
  const started = new Map<number, number>()
  for (const e of history?.events ?? []) {
    if (e.event !== 'line.pay_started') continue
    const detail = JSON.parse(e.detail) as { line: number, amount: number }
    started.set(Number(detail.line), Number(detail.amount))
  }
  /** what may still be sent for this tx: CashNet's total less what the ledger already shows sent */
  let budget = report.total - checkout.lines.reduce((s, l) => s + (l.postedAmount ?? 0), 0)

  try {
    const feeList = await alma.listActiveFees(checkout.primaryId, { byPrimaryId: true, observe })
    // read by primary id, which Alma searches as all_unique: another patron's fees are not this checkout's
    requireAnsweredFor(checkout.primaryId, { fees: feeList.fees })
    const listed = new Map(feeList.fees.map(f => [f.id, f]))
    const notes: string[] = []
    /** a fee Alma cannot find may be Alma reading the primary id as somebody else's identifier: asked once */
    let patronChecked = false
    const checkPatron = async (): Promise<void> => {
      if (patronChecked) return
      patronChecked = true
      requireAnsweredFor(checkout.primaryId, { user: await alma.getUser(checkout.primaryId, { byPrimaryId: true, observe }) })
    }

    for (const line of checkout.lines) {
      if (line.postedAt !== null) continue
      if (stopping(deps)) return { kind: 'SKIPPED', reason: 'shutting down; the rest is posted on restart' }
      const cap = Math.min(caps.get(line.lineNo) ?? 0, Math.max(0, budget)) as Cents
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
        if (fee === undefined) await checkPatron()
      }
      const already = fee === undefined ? null : paidWithTx(fee, tx)
      if (already !== null) {
        const intended = started.get(line.lineNo) ?? null
        if (already > (caps.get(line.lineNo) ?? 0)) {
          await ledger.markLinePosted(checkout.id, line.lineNo, already, { feeId: line.feeId, recovered: 'Alma already shows this tx on the fee', intended, cashnet: caps.get(line.lineNo) ?? 0 }, deps.fence)
          return await needsAttention(deps, checkout, 'ALMA_ERROR',
            `Alma shows ${formatDecimal(already)} paid with tx ${tx} on fee ${line.feeId}, more than the ${formatDecimal(caps.get(line.lineNo) ?? 0 as Cents)} ${provider} reported for it: check the fee in Alma`,
            { feeId: line.feeId, almaAmount: already, cashnet: caps.get(line.lineNo) ?? 0 })
        }
        await ledger.markLinePosted(checkout.id, line.lineNo, already, {
          feeId: line.feeId, recovered: 'Alma already shows this tx on the fee', ...(intended !== null && intended !== already ? { intended } : {})
        }, deps.fence)
        budget -= already
        if (already < cap) notes.push(`fee ${line.feeId}: ${formatDecimal((cap - already) as Cents)} not applied`)
        continue
      }
      if (cap <= 0) {
        // CashNet collected nothing for this line: nothing to send, and nothing owed back; the fee stays open.
        await ledger.markLinePosted(checkout.id, line.lineNo, 0 as Cents, { feeId: line.feeId, notCollected: line.amount, why: `${provider} reported nothing for this line` }, deps.fence)
        continue
      }
      if (fee === undefined || fee.status.code !== 'ACTIVE' || fee.balance <= 0) {
        await ledger.markLinePosted(checkout.id, line.lineNo, 0 as Cents, { feeId: line.feeId, unapplied: cap, why: fee === undefined ? 'fee not found in Alma' : `fee is ${fee.status.code || 'closed'}` }, deps.fence)
        notes.push(`fee ${line.feeId}: closed or gone in Alma, ${formatDecimal(cap)} not applied`)
        continue
      }
      const amount = Math.min(cap, fee.balance) as Cents
      // shutting down: a fee read may have taken a while; do not start a payment now
      if (stopping(deps)) return { kind: 'SKIPPED', reason: 'shutting down; the rest is posted on restart' }
      // another process may have taken the posting over (this one paused past its lease): never pay under a lost lease
      const leaseHeld = async (): Promise<void> => {
        if (deps.leaseLive !== undefined && !(await deps.leaseLive())) throw new LeaseLost(checkout.id, deps.fence ?? 0)
      }
      await leaseHeld()
      await ledger.audit(checkout.id, 'line.pay_started', { line: line.lineNo, feeId: line.feeId, amount })
      // ...and asked again once the payment has its Alma rate-limit slot, just before it is written: the wait for a
      // slot has no bound (a queue behind page traffic, a shared budget out of reach), and a holder that lost its
      // lease meanwhile would pay a fee the new holder may already have paid (a part payment leaves it open)
      await alma.payFee({
        userId: checkout.primaryId,
        feeId: line.feeId,
        amount,
        method: deps.paymentMethod,
        externalTransactionId: tx,
        comment: checkout.id
      }, observe, leaseHeld)
      budget -= amount
      await ledger.markLinePosted(checkout.id, line.lineNo, amount, { feeId: line.feeId, ...(cap < line.amount ? { notCollected: line.amount - cap } : {}) }, deps.fence)
      if (amount < cap) notes.push(`fee ${line.feeId}: balance was ${formatDecimal(fee.balance)}, ${formatDecimal((cap - amount) as Cents)} not applied`)
    }

    const posted = await ledger.getCheckout(checkout.id) as Checkout
    const applied = posted.lines.reduce((s, l) => s + (l.postedAmount ?? 0), 0)
    // Money CashNet collected that is not in Alma: lines Alma could not take, and amounts CashNet reported beyond the lines.
    const unapplied = Math.max(0, report.total - applied) as Cents
    if (unapplied > 0) {
      const beyond = report.total - [...caps.values()].reduce((s, c) => s + c, 0)
      if (beyond > 0) notes.push(`${provider} reported ${formatDecimal(beyond as Cents)} more than the fee lines`)
      return await needsAttention(deps, posted, 'UNAPPLIED', `${formatDecimal(unapplied)} could not be applied in Alma (refund or credit it): ${notes.join('; ')}`, { unapplied }, unapplied)
    }
    const notCollected = posted.lines.reduce((s, l) => s + l.amount, 0) - applied
    const moved = await ledger.transition({ checkoutId: checkout.id, from: ['PAID'], to: 'POSTED', event: 'payment.posted', unapplied: 0 as Cents, detail: { tx, total: posted.total, ...(notCollected > 0 ? { posted: applied, notCollected } : {}) }, messages: deps.messages }, deps.fence)
    if (!moved) return { kind: 'SKIPPED', reason: 'checkout changed state while posting' }

    if (deps.releaseBlocks.size > 0) {
      try {
        const release = await releaseBlocksIfSettled(alma, checkout.primaryId, deps.releaseBlocks, observe)
        await ledger.audit(checkout.id, release.released.length > 0 ? 'blocks.released' : 'blocks.kept', { released: release.released, skipped: release.skipped ?? null, balance: release.balance })
      } catch (error) {
        await ledger.audit(checkout.id, 'blocks.release_failed', { error: (error as Error).message })
      }
    }
    return { kind: 'POSTED', checkout: await ledger.getCheckout(checkout.id) as Checkout }
  } catch (error) {
    if (error instanceof AmbiguousPrimaryId) {
      // nothing was paid to the other patron (a fee id names one fee of one patron) and nothing is marked: once the
      // identifier is unique in Alma, a staff retry posts the checkout as it was paid
      return await needsAttention(deps, checkout, 'ALMA_ERROR',
        `Alma answered primary id "${error.primaryId}" with patron "${error.answeredWith}" ("${error.primaryId}" is also one of their identifiers): nothing posted. Make the identifier unique in Alma, then retry`,
        { primaryId: error.primaryId, answeredWith: error.answeredWith })
    }
    if (!isAlmaFailure(error)) throw error
    if (error.retryable) return { kind: 'RETRY', error }
    return await needsAttention(deps, checkout, 'ALMA_ERROR', `Alma refused: ${error.errorCode || error.status} ${error.errorMessage}${error.trackingId !== '' ? ` (trackingId ${error.trackingId})` : ''}`.trim(), {
      status: error.status, errorCode: error.errorCode, errorMessage: error.errorMessage, trackingId: error.trackingId
    })
  }
}
