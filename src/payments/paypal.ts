// The PayPal use cases (SPEC 13), with no HTTP: complete an approved order (the browser's return, or the
// CHECKOUT.ORDER.APPROVED webhook for a patron who never came back), record what a capture says, act on a
// verified webhook event, and record a cancel. A capture's PayPal-Request-Id is "<checkout id>-capture", then
// "-capture-N" once N capture answers that end an attempt (INSTRUMENT_DECLINED, ORDER_NOT_APPROVED) are recorded in
// the ledger: a retry after UNAVAILABLE or a timeout keeps the key, so PayPal answers a repeat with the first
// capture, while a 422 PayPal may replay for a key can never answer the patron's next approval; what is recorded goes through Ledger.recordPostback with decideCapture, so the ledger's compare-and-set
// records one PAID whatever arrives twice or in which order. After PAID it is the same path as CashNet's.

import { LedgerUnavailable } from '../ledger/errors.ts'
import { CAPTURE_PENDING_EVENT, type Ledger, type PageCursor, type Reopen } from '../ledger/ledger.ts'
import type { AuditEvent, Checkout, ComposeMessages, PostbackRecord, RefundRecord, UserIdKind } from '../ledger/types.ts'
import { type Cents, formatDecimal, parseCents } from '../money.ts'
import type { PayPalClient, PayPalOrder } from '../providers/paypal/client.ts'
import { PayPalError } from '../providers/paypal/errors.ts'
import { collectedFrom } from '../providers/paypal/provider.ts'
import type { PayPalWebhookEvent } from '../providers/paypal/webhook.ts'
import type { Collected } from '../providers/provider.ts'
import type { Alerts } from './alerts.ts'
import { decideCapture, reportedItems, resultOf } from './capture-rules.ts'
import { inProgressReason } from './payable.ts'
import type { PostbackLogger } from './record-postback.ts'
import { collectedFor, refundedFor, refundEffect } from './staff-actions.ts'

export interface PayPalDeps {
  ledger: Ledger
  client: PayPalClient
  /** posts a checkout that just became PAID (the posting worker's schedule) */
  schedule: (checkoutId: string) => void
  alerts: Pick<Alerts, 'needsAttention'>
  logger: PostbackLogger
  /** how many times a capture PayPal could not answer is tried again, same PayPal-Request-Id (default 2) */
  captureRetries?: number
  /** pause before a retry, times the attempt number (default 250 ms) */
  retryDelayMs?: number
  /** RECEIPT_EMAIL: the e-mails written to the outbox when a capture hands the payment to staff (as CashNet's postback) */
  messages?: ComposeMessages
}

/**
 * The capture PayPal-Request-Id of an approval attempt: `ended` is how many capture attempts of the checkout were
 * answered with a 4xx that ends them (declined, not approved), as recorded in the ledger. Within an attempt a
 * retry, the return and the webhook all send the same key.
 */
export function captureRequestId (checkoutId: string, ended = 0): string {
  return ended === 0 ? `${checkoutId}-capture` : `${checkoutId}-capture-${ended}`
}

const DECLINED_EVENT = 'paypal.instrument_declined'
const NOT_APPROVED_EVENT = 'paypal.capture_not_approved'

/** How many capture attempts of a checkout PayPal has ended with a 4xx: the key of the next one. */
async function attemptsEnded (ledger: Ledger, checkoutId: string): Promise<number> {
  return (await ledger.history(checkoutId))?.events.filter(e => e.event === DECLINED_EVENT || e.event === NOT_APPROVED_EVENT).length ?? 0
}

export type CaptureResult =
  /** the order is captured (now, or before): what PayPal collected */
  | { kind: 'captured', collected: Collected }
  /** the patron's instrument was declined: back to PayPal to choose another way */
  | { kind: 'choose-again', approveUrl: string | null }
  /** the patron has not approved the order (yet) */
  | { kind: 'not-approved', approveUrl: string | null }
  /** not captured: the checkout's fees were paid in another checkout since; it is CANCELLED, nothing taken */
  | { kind: 'superseded', paidBy: string[] }

/** The checkout an order is for: custom_id (invoice_id) as we sent it. */
export function checkoutIdOf (order: Pick<PayPalOrder, 'customId' | 'invoiceId'>): string | null {
  return order.customId ?? order.invoiceId
}

/**
 * Captures an approved order of a checkout, or takes the capture it already has (ORDER_ALREADY_CAPTURED reads the
 * order). UNAVAILABLE is retried with the same PayPal-Request-Id; still unavailable, the PayPalError is thrown
 * (nothing recorded: the webhook, redelivered by PayPal, or the patron's next visit captures it).
 */
export async function captureApproved (deps: PayPalDeps, orderId: string, checkoutId: string): Promise<CaptureResult> {
  const retries = deps.captureRetries ?? 2
  // read once: every retry of this attempt keeps its key; a decline recorded below moves the next attempt on
  const requestId = captureRequestId(checkoutId, await attemptsEnded(deps.ledger, checkoutId))
  for (let attempt = 0; ; attempt++) {
    try {
      const order = await deps.client.captureOrder(orderId, requestId)
      return { kind: 'captured', collected: collectedFrom(order.capture, checkoutId) }
    } catch (error) {
      if (!(error instanceof PayPalError)) throw error
      if (error.kind === 'INSTRUMENT_DECLINED') {
        deps.logger.info({ event: 'paypal.instrument_declined', checkout: checkoutId, order: orderId, debugId: error.debugId, requestId }, `PayPal declined the patron's instrument for order ${orderId} (checkout ${checkoutId}) [debug_id ${error.debugId}]: back to PayPal to choose another way`)
        await deps.ledger.audit(checkoutId, DECLINED_EVENT, { order: orderId, debugId: error.debugId, requestId })
        const order = await deps.client.getOrder(orderId)
        return { kind: 'choose-again', approveUrl: order.approveUrl }
      }
      if (error.kind === 'ORDER_ALREADY_CAPTURED') {
        const order = await deps.client.getOrder(orderId)
        if (order.capture === null) throw error
        return { kind: 'captured', collected: collectedFrom(order.capture, checkoutId) }
      }
      if (error.kind === 'REJECTED' && error.issue === 'ORDER_NOT_APPROVED') {
        await deps.ledger.audit(checkoutId, NOT_APPROVED_EVENT, { order: orderId, debugId: error.debugId, requestId })
        const order = await deps.client.getOrder(orderId)
        return { kind: 'not-approved', approveUrl: order.approveUrl }
      }
      if (error.kind === 'UNAVAILABLE' && attempt < retries) {
        deps.logger.warn({ event: 'paypal.capture_retry', checkout: checkoutId, order: orderId, attempt: attempt + 1, debugId: error.debugId || undefined }, `PayPal capture of order ${orderId} unavailable (${error.message}); trying again with the same PayPal-Request-Id`)
        await new Promise(resolve => setTimeout(resolve, (deps.retryDelayMs ?? 250) * (attempt + 1)))
        continue
      }
      throw error
    }
  }
}

export interface RecordedCapture {
  outcome: string
  checkout: Checkout | undefined
}

/**
 * Records what PayPal collected, durably, with the rules' decision; a newly PAID checkout goes to the posting
 * worker, one that needs a person to staff. A PENDING capture (PayPal reviews it) changes no state: it marks the open
 * checkout as under review (a payment in progress, not expired) until its COMPLETED or DENIED webhook decides.
 */
export async function recordCollected (deps: PayPalDeps, collected: Collected, source: 'return' | 'webhook' | 'review-check' | 'order-check', raw: Record<string, unknown>): Promise<RecordedCapture> {
  const { ledger, logger } = deps
  const checkoutId = collected.checkoutId
  const before = checkoutId === null ? undefined : await ledger.getCheckout(checkoutId)
  if (collected.status === 'PENDING') {
    // marked on the checkout with its audit event, in one write: while CREATED (or EXPIRED) it is now a payment in
    // progress, its fees not sold again, and it does not expire; a PENDING reported after the outcome marks nothing
    const marked = before !== undefined && await ledger.markUnderReview(before.id, collected.tx, CAPTURE_PENDING_EVENT, { amount: collected.amount, currency: collected.currency, reason: collected.detail })
    logger.info({ event: 'paypal.capture_pending', checkout: checkoutId ?? undefined, tx: collected.tx, underReview: marked }, `PayPal holds capture ${collected.tx} for review (${collected.detail || 'no reason given'}): ${marked ? 'its fees are held until' : 'nothing to hold (the checkout is not open), waiting for'} its COMPLETED or DENIED webhook`)
    return { outcome: 'PENDING', checkout: before === undefined ? undefined : await ledger.getCheckout(before.id) }
  }
  const recorded = await ledger.recordPostback(
    {
      checkoutId,
      peer: `paypal:${source}`,
      result: resultOf(collected),
      tx: collected.tx,
      rawBody: JSON.stringify({ provider: 'paypal', source, ...raw, capture: collected.tx, status: collected.status, amount: formatDecimal(collected.amount), currency: collected.currency }),
      items: reportedItems(before, collected)
    },
    (checkout, earlier, elsewhere) => decideCapture(checkout, earlier, collected, elsewhere),
    deps.messages
  )
  const { outcome, reason } = recorded.decision
  const log = { event: 'paypal.capture_recorded', source, checkout: checkoutId ?? undefined, tx: collected.tx, outcome, user: recorded.checkout?.userId }
  if (outcome === 'ORPHAN' || outcome === 'MISMATCH' || outcome === 'DOUBLE_CHARGE' || outcome === 'TX_REUSED') logger.warn(log, `PayPal capture ${outcome.toLowerCase()}: ${reason}`)
  else logger.info(log, `PayPal capture ${collected.tx} for ${checkoutId ?? '(no checkout)'}: ${outcome.toLowerCase()}`)
  if (recorded.decision.to === 'NEEDS_ATTENTION' && recorded.checkout !== undefined) deps.alerts.needsAttention(recorded.checkout, reason)
  if (outcome === 'PAID' && checkoutId !== null) setImmediate(() => { deps.schedule(checkoutId) })
  return { outcome, checkout: recorded.checkout }
}

/** The audit event of a checkout not captured because its fees were paid in another checkout since. */
export const CAPTURE_SUPERSEDED_EVENT = 'paypal.capture_superseded'

/**
 * The patron's other checkouts that paid (or hold) any of this checkout's fees since it was made: PAID, NEEDS_ATTENTION
 * not settled, or held by PayPal for review (as the fines page holds them, payable.ts), or a line of the fee posted
 * to Alma after this checkout was created. A CREATED checkout holds nothing, so an approval PayPal could not capture
 * at once (an outage) leaves its fees payable again; capturing it later would charge the patron twice.
 */
export async function feesPaidElsewhere (ledger: Ledger, checkout: Checkout): Promise<Array<{ checkout: Checkout, feeIds: string[] }>> {
  const fees = new Set(checkout.lines.map(l => l.feeId))
  const since = Date.parse(checkout.createdAt)
  const others = new Map<string, Checkout>()
  for (const other of [...await ledger.paymentsInProgress(checkout.userId, checkout.primaryId, checkout.userIdKind), ...await ledger.patronPayments(checkout.userId, 50, checkout.userIdKind)]) {
    if (other.id !== checkout.id) others.set(other.id, other)
  }
  const found: Array<{ checkout: Checkout, feeIds: string[] }> = []
  for (const other of others.values()) {
    const holds = inProgressReason(other) !== null
    const feeIds = other.lines.filter(l => fees.has(l.feeId) && (holds || (l.postedAt !== null && Date.parse(l.postedAt) > since))).map(l => l.feeId)
    if (feeIds.length > 0) found.push({ checkout: other, feeIds: [...new Set(feeIds)] })
  }
  return found
}

/**
 * The checkouts a superseded checkout's audit event names as having paid (or holding) its fees, as they stand now;
 * null when it was not superseded. What its receipt tells the patron comes from these (receipt-story.ts).
 */
export async function replacementsOf (ledger: Pick<Ledger, 'history' | 'getCheckout'>, checkoutId: string): Promise<Checkout[] | null> {
  const superseded = await supersededBefore(ledger, checkoutId)
  if (superseded === null || superseded.kind !== 'superseded') return null
  const found = await Promise.all(superseded.paidBy.map(async id => await ledger.getCheckout(id)))
  return found.filter((c): c is Checkout => c !== undefined)
}

/** A checkout another handler already closed as superseded: its result again (nothing to capture), else null. */
async function supersededBefore (ledger: Pick<Ledger, 'history'>, checkoutId: string): Promise<CaptureResult | null> {
  const event = (await ledger.history(checkoutId))?.events.find(e => e.event === CAPTURE_SUPERSEDED_EVENT)
  if (event === undefined) return null
  const { paidBy } = detailOf(event)
  return { kind: 'superseded', paidBy: Array.isArray(paidBy) ? paidBy.map(String) : [] }
}

/**
 * Before capturing a checkout not yet captured: if its fees were paid in another checkout since, and PayPal holds
 * no capture for the order, it is not captured but CANCELLED (nothing taken), with its audit event.
 */
async function supersede (deps: PayPalDeps, orderId: string, checkoutId: string): Promise<CaptureResult | null> {
  const { ledger, logger } = deps
  const checkout = await ledger.getCheckout(checkoutId)
  if (checkout === undefined) return null
  // the return and the APPROVED webhook at once: the other may have cancelled it a moment ago; never capture behind that
  if (checkout.state !== 'CREATED' && checkout.state !== 'EXPIRED') return await supersededBefore(ledger, checkoutId)
  if (checkout.reviewTx !== null) return null
  const elsewhere = await feesPaidElsewhere(ledger, checkout)
  if (elsewhere.length === 0) return null
  // a capture PayPal made whose answer was lost is money taken: recorded as any capture, never hidden by a cancel
  if ((await deps.client.getOrder(orderId)).capture !== null) return null
  const paidBy = elsewhere.map(e => e.checkout.id)
  const feeIds = [...new Set(elsewhere.flatMap(e => e.feeIds))]
  const moved = await ledger.transition({ checkoutId, from: ['CREATED', 'EXPIRED'], to: 'CANCELLED', event: CAPTURE_SUPERSEDED_EVENT, detail: { order: orderId, paidBy, fees: feeIds, states: elsewhere.map(e => e.checkout.state) } })
  if (!moved) return await supersededBefore(ledger, checkoutId)
  logger.warn({ event: 'paypal.capture_superseded', checkout: checkoutId, order: orderId, paidBy, fees: feeIds }, `PayPal order ${orderId} (checkout ${checkoutId}) approved but not captured: its fees ${feeIds.join(', ')} were paid in checkout ${paidBy.join(', ')} since; CANCELLED, nothing taken`)
  return { kind: 'superseded', paidBy }
}

/**
 * The ledger went out of reach between PayPal's capture and its record: PayPal holds the money, the ledger does not
 * know it yet (the checkout is still open and holds no fees). Still LedgerUnavailable (503: nothing was written), with
 * what PayPal collected, so that the patron is told their money was taken and must not pay again.
 */
export class CaptureNotRecorded extends LedgerUnavailable {
  constructor (readonly collected: Collected, readonly orderId: string, cause: LedgerUnavailable) {
    super(cause.message)
    this.message = cause.message
  }
}

/** Whether an error is the ledger out of reach (nothing was written; CaptureNotRecorded says PayPal took money meanwhile). */
export function ledgerOutOfReach (error: unknown): error is LedgerUnavailable {
  return error instanceof LedgerUnavailable
}

/** Captures an approved order and records the capture; the return and the APPROVED webhook both come here. */
export async function completeOrder (deps: PayPalDeps, orderId: string, checkoutId: string, source: 'return' | 'webhook'): Promise<CaptureResult & { recorded?: RecordedCapture }> {
  const superseded = await supersede(deps, orderId, checkoutId)
  if (superseded !== null) return superseded
  const result = await captureApproved(deps, orderId, checkoutId)
  if (result.kind !== 'captured') return result
  try {
    const recorded = await recordCollected(deps, result.collected, source, { order: orderId })
    return { ...result, recorded }
  } catch (error) {
    if (!(error instanceof LedgerUnavailable)) throw error
    // money taken and nowhere recorded here: PayPal's PAYMENT.CAPTURE.COMPLETED webhook (sent again until answered
    // 2xx) or the patron's reloaded return (the same PayPal-Request-Id answers with this capture) records it
    const { tx, amount, currency } = result.collected
    deps.logger.warn({ event: 'paypal.capture_unrecorded', source, checkout: checkoutId, order: orderId, tx, amount }, `PayPal captured ${formatDecimal(amount)} ${currency} for checkout ${checkoutId} (order ${orderId}, capture ${tx}) but the ledger could not record it (${error.message}): it is recorded when PayPal sends its PAYMENT.CAPTURE.COMPLETED webhook again or the patron reloads the return; if checkout ${checkoutId} is still not PAID once the database is back, check the webhook deliveries in PayPal`)
    throw new CaptureNotRecorded(result.collected, orderId, error)
  }
}

/** The patron cancelled on PayPal: a CREATED checkout becomes CANCELLED (nothing was taken). */
export async function recordCancel (deps: Pick<PayPalDeps, 'ledger'>, checkoutId: string, orderId: string): Promise<boolean> {
  return await deps.ledger.transition({ checkoutId, from: ['CREATED', 'EXPIRED'], to: 'CANCELLED', event: 'paypal.cancelled', detail: { order: orderId } })
}

export type WebhookOutcome = { status: 200, what: string } | { status: 503, what: string }

/** Acts on a verified webhook event. 503 asks PayPal to deliver it again (it could not be acted on now). */
export async function handleWebhookEvent (deps: PayPalDeps, event: PayPalWebhookEvent): Promise<WebhookOutcome> {
  const { ledger, logger } = deps
  try {
    if (event.type === 'CHECKOUT.ORDER.APPROVED') {
      const checkoutId = event.checkoutId ?? checkoutIdOf(await deps.client.getOrder(event.orderId))
      const checkout = checkoutId === null ? undefined : await ledger.getCheckout(checkoutId)
      if (checkoutId === null || checkout === undefined) {
        logger.warn({ event: 'paypal.webhook_orphan', order: event.orderId, checkout: checkoutId ?? undefined }, `PayPal approved order ${event.orderId} for no known checkout (${checkoutId ?? 'none'}): not captured, nothing taken`)
        return { status: 200, what: 'no such checkout' }
      }
      if (checkout.state !== 'CREATED' && checkout.state !== 'EXPIRED') return { status: 200, what: `checkout already ${checkout.state}` }
      const done = await completeOrder(deps, event.orderId, checkout.id, 'webhook')
      return { status: 200, what: done.kind === 'captured' ? `captured: ${done.recorded?.outcome ?? ''}` : done.kind }
    }
    if (event.type === 'PAYMENT.CAPTURE.REFUNDED') return await recordRefundEvent(deps, event)
    if (event.type === 'PAYMENT.CAPTURE.REVERSED') return await recordReversalEvent(deps, event)
    // PAYMENT.CAPTURE.COMPLETED / DENIED / PENDING: the capture itself
    if (event.type !== 'PAYMENT.CAPTURE.COMPLETED' && event.type !== 'PAYMENT.CAPTURE.DENIED' && event.type !== 'PAYMENT.CAPTURE.PENDING') return { status: 200, what: 'not handled' }
    let checkoutId = event.checkoutId
    if (checkoutId === null && event.orderId !== null) checkoutId = checkoutIdOf(await deps.client.getOrder(event.orderId))
    const status = event.type === 'PAYMENT.CAPTURE.COMPLETED' ? 'COMPLETED' : event.type === 'PAYMENT.CAPTURE.PENDING' ? 'PENDING' : 'DECLINED'
    const recorded = await recordCollected(deps, { provider: 'paypal', checkoutId, tx: event.captureId, status, amount: event.amount, currency: event.currency, detail: event.statusReason }, 'webhook', { event: event.eventId, order: event.orderId })
    return { status: 200, what: recorded.outcome }
  } catch (error) {
    if (error instanceof PayPalError && error.retryable) {
      logger.warn({ event: 'paypal.webhook_deferred', type: event.type, eventId: event.eventId, debugId: error.debugId || undefined }, `PayPal webhook ${event.eventId} (${event.type}) not acted on now: ${error.message}; answering 503 so PayPal delivers it again`)
      return { status: 503, what: 'PayPal unavailable' }
    }
    throw error
  }
}

async function recordRefundEvent (deps: PayPalDeps, delivered: Extract<PayPalWebhookEvent, { type: 'PAYMENT.CAPTURE.REFUNDED' }>): Promise<WebhookOutcome> {
  const { ledger, logger } = deps
  /** the refund booked: the one delivered, or (below) an earlier one that took this one's record for its own */
  let event = delivered
  let note = `PayPal reported refund ${event.refundId} (webhook ${event.eventId})`
  // PayPal's refund carries our custom_id and invoice_id only when it copies them from the capture; without
  // them the capture it refunds (its `up` link) was recorded against our checkout when it was taken
  const checkoutId = event.checkoutId ?? (await ledger.postbacksWithTx(event.captureId)).find(p => p.checkoutId !== null)?.checkoutId ?? null
  const checkout = checkoutId === null ? undefined : await ledger.getCheckout(checkoutId)
  if (checkout === undefined) {
    logger.warn({ event: 'paypal.refund_orphan', tx: event.captureId, refund: event.refundId }, `PayPal refunded ${formatDecimal(event.amount)} ${event.currency} of capture ${event.captureId} (refund ${event.refundId}) for no known checkout`)
    return { status: 200, what: 'no such checkout' }
  }
  const history = await ledger.history(checkout.id)
  if (history !== undefined) {
    const adopted = adoptedRefunds(history.events)
    if ([...adopted.values()].includes(event.refundId)) return { status: 200, what: `refund ${event.refundId} is already recorded (by staff, by hand)` }
    const own = history.refunds.find(r => r.reference === event.refundId)
    if (own !== undefined && own.by !== 'paypal') {
      const claimedBy = adopted.get(own.id)
      if (claimedBy === undefined) {
        // staff recorded this refund by hand under PayPal's own id: tied to it, so no other PayPal refund of the
        // same amount takes the record for its own
        await adoptRefund(deps, checkout.id, own, event)
        return { status: 200, what: `refund ${event.refundId} is already recorded (by staff, by hand)` }
      }
      // another PayPal refund of the same capture and amount took this record for its own before this webhook
      // came: that one is the refund not recorded yet (once: a second delivery finds it recorded)
      if (history.refunds.some(r => r.reference === claimedBy)) return { status: 200, what: `refund ${event.refundId} is already recorded (by staff, by hand)` }
      event = { ...delivered, refundId: claimedBy, amount: own.amount }
      note = `PayPal refund ${claimedBy}, taken at first for the refund staff recorded by hand as ${own.reference}, which is PayPal's refund ${delivered.refundId} (webhook ${delivered.eventId})`
    } else {
      const byHand = own !== undefined ? undefined : handRecordedMatch(history.refunds, adopted, event)
      if (byHand !== undefined && await adoptRefund(deps, checkout.id, byHand, event)) return { status: 200, what: `refund ${event.refundId} was recorded by staff as ${byHand.reference}` }
    }
  }
  const collected = capturedAmount(history?.postbacks ?? [], event.captureId)
  let beyond: { refunded: Cents, collected: Cents } | null = null
  const result = await ledger.recordRefund(
    { checkoutId: checkout.id, tx: event.captureId, amount: event.amount as Cents, reference: event.refundId, note, by: 'paypal' },
    {
      refuse: record => {
        beyond = null
        if (record.refunds.some(r => r.reference === event.refundId)) return `refund ${event.refundId} is already recorded`
        // money out of a capture never exceeds what it took: more means a record here is wrong (a hand entry of
        // another amount, say), which staff must sort out; booking it would put a refund in the GL that never happened
        const took = collected ?? collectedFor(record, event.captureId)
        const refunded = refundedFor(record, event.captureId)
        if (refunded + event.amount > took) {
          beyond = { refunded, collected: took }
          return `refund ${event.refundId} would take back more than capture ${event.captureId} collected`
        }
        return null
      },
      effect: record => refundEffect(record)
    }
  )
  if (!result.recorded) {
    if (beyond !== null) await refundBeyondCollected(deps, checkout, event, beyond, history?.events ?? [])
    return { status: 200, what: result.reason }
  }
  const reason = `PayPal refunded ${formatDecimal(event.amount)} ${event.currency} of capture ${event.captureId} (refund ${event.refundId}): check what Alma shows paid for this checkout and reverse it there if the fees are owed again`
  const moved = checkout.tx === event.captureId && await ledger.transition({
    checkoutId: checkout.id, from: ['PAID', 'POSTED'], to: 'NEEDS_ATTENTION', event: 'paypal.refunded', attentionKind: 'REFUNDED', attentionReason: reason, detail: { refund: event.refundId, tx: event.captureId, amount: event.amount }
  })
  logger.warn({ event: 'paypal.refunded', checkout: checkout.id, tx: event.captureId, refund: event.refundId, amount: event.amount }, reason)
  const after = await ledger.getCheckout(checkout.id)
  if (after !== undefined && (moved || after.state === 'NEEDS_ATTENTION')) deps.alerts.needsAttention(after, reason)
  return { status: 200, what: 'refund recorded' }
}

/** A reversal of the payment's own capture after staff settled its case: the case is open again. */
function reopensSettled (checkout: Checkout, captureId: string): boolean {
  return checkout.tx === captureId && checkout.state === 'NEEDS_ATTENTION' && checkout.resolvedAt !== null
}

/** The audit event tying a refund staff recorded by hand to the PayPal refund it is (detail: refund, refundRecord). */
const REFUND_ADOPTED = 'paypal.refund_adopted'
/** The audit event of a PayPal refund not booked because the capture's refunds would exceed what it collected. */
const REFUND_BEYOND_COLLECTED = 'paypal.refund_beyond_collected'

function detailOf (event: Pick<AuditEvent, 'detail'>): Record<string, unknown> {
  try {
    const detail: unknown = JSON.parse(event.detail)
    return typeof detail === 'object' && detail !== null ? detail as Record<string, unknown> : {}
  } catch {
    return {}
  }
}

/**
 * Which refund recorded by hand is which PayPal refund: refund record id → PayPal refund id. The first adoption
 * event of a record wins; a later one (two webhooks claiming the same record at once) lost and adopted nothing.
 */
function adoptedRefunds (events: readonly AuditEvent[]): Map<number, string> {
  const adopted = new Map<number, string>()
  for (const e of events) {
    if (e.event !== REFUND_ADOPTED) continue
    const { refundRecord, refund } = detailOf(e)
    const id = Number(refundRecord) // a number as written; a string if a ledger ever returns BIGINT ids as text
    if (Number.isSafeInteger(id) && typeof refund === 'string' && !adopted.has(id)) adopted.set(id, refund)
  }
  return adopted
}

/** A refund staff recorded by hand that this PayPal refund may be: same capture, same amount, not yet tied to one. */
function handRecordedMatch (refunds: readonly RefundRecord[], adopted: Map<number, string>, event: Extract<PayPalWebhookEvent, { type: 'PAYMENT.CAPTURE.REFUNDED' }>): RefundRecord | undefined {
  return refunds.find(r => r.tx === event.captureId && r.kind === 'refund' && r.by !== 'paypal' && r.amount === event.amount && !adopted.has(r.id))
}

/**
 * Takes a refund staff recorded by hand as PayPal's refund: an audit event ties the two, nothing more is recorded
 * or booked. The event is the claim: read back, the first claim on the record wins; false when another PayPal
 * refund claimed it first (this one is then recorded as its own).
 */
async function adoptRefund (deps: PayPalDeps, checkoutId: string, record: RefundRecord, event: Extract<PayPalWebhookEvent, { type: 'PAYMENT.CAPTURE.REFUNDED' }>): Promise<boolean> {
  await deps.ledger.audit(checkoutId, REFUND_ADOPTED, { refund: event.refundId, refundRecord: record.id, reference: record.reference, by: record.by, tx: event.captureId, amount: event.amount, webhook: event.eventId })
  const won = adoptedRefunds((await deps.ledger.history(checkoutId))?.events ?? []).get(record.id) === event.refundId
  if (won) deps.logger.info({ event: 'paypal.refund_adopted', checkout: checkoutId, tx: event.captureId, refund: event.refundId, reference: record.reference, amount: event.amount }, `PayPal refund ${event.refundId} of ${formatDecimal(event.amount)} ${event.currency} (capture ${event.captureId}) is the refund ${record.by} recorded by hand as ${record.reference}: not recorded again`)
  return won
}

/** What PayPal said a capture took, as recorded when it was taken (its report's amount), or null when none is. */
function capturedAmount (postbacks: readonly PostbackRecord[], tx: string): Cents | null {
  for (const p of postbacks) {
    if (p.tx !== tx || p.result !== '0' || p.outcome === 'REJECTED' || p.outcome === 'TX_REUSED') continue
    const { amount } = detailOf({ detail: p.rawBody })
    if (typeof amount !== 'string') continue
    try {
      return parseCents(amount)
    } catch {
      continue
    }
  }
  return null
}

/** A PayPal refund that would take back more than its capture collected: not booked; staff are told (once per refund). */
async function refundBeyondCollected (deps: PayPalDeps, checkout: Checkout, event: Extract<PayPalWebhookEvent, { type: 'PAYMENT.CAPTURE.REFUNDED' }>, amounts: { refunded: Cents, collected: Cents }, events: readonly AuditEvent[]): Promise<void> {
  const { ledger, logger } = deps
  if (events.some(e => e.event === REFUND_BEYOND_COLLECTED && detailOf(e).refund === event.refundId)) return
  const reason = `PayPal reports refund ${event.refundId} of ${formatDecimal(event.amount)} ${event.currency} of capture ${event.captureId}, but ${formatDecimal(amounts.refunded)} of the ${formatDecimal(amounts.collected)} it collected is already recorded as given back: ` +
    'not booked, as it would give back more than was taken. Compare the refunds in PayPal with those recorded here (a refund recorded by hand with another amount?) and correct the record'
  await ledger.audit(checkout.id, REFUND_BEYOND_COLLECTED, { refund: event.refundId, tx: event.captureId, amount: event.amount, refunded: amounts.refunded, collected: amounts.collected, webhook: event.eventId })
  const moved = await ledger.transition({
    checkoutId: checkout.id, from: ['PAID', 'POSTED'], to: 'NEEDS_ATTENTION', event: 'paypal.refunded', attentionKind: 'REFUNDED', attentionReason: reason, detail: { refund: event.refundId, tx: event.captureId, amount: event.amount, booked: false }
  })
  logger.warn({ event: 'paypal.refund_beyond_collected', checkout: checkout.id, tx: event.captureId, refund: event.refundId, amount: event.amount, refunded: amounts.refunded, collected: amounts.collected }, reason)
  const after = await ledger.getCheckout(checkout.id)
  if (after !== undefined && (moved || after.state === 'NEEDS_ATTENTION')) deps.alerts.needsAttention(after, reason)
}

/** The audit event of a reversal whose amount PayPal did not say: its reference is how a redelivery is known. */
const REVERSAL_AMOUNT_UNKNOWN = 'paypal.reversal_amount_unknown'

/**
 * PAYMENT.CAPTURE.REVERSED: PayPal took the money of a capture back by itself (a chargeback, a reversal), possibly
 * long after the payment was posted to Alma. Recorded against the checkout as money out of the capture (beside its
 * refunds, once per reversal: a redelivered event records nothing more), so that the GL journal and the reports
 * book it as they book a refund; a paid or posted checkout goes to staff (REVERSED), and so does one whose case
 * staff had already settled (reopened, unsettled, once per reversal). Nothing is changed in Alma:
 * whether the fees are owed again is the library's decision, and the reason says so. An amount PayPal did not say
 * is not guessed: the checkout goes to staff with that said, and nothing is booked until staff find out.
 */
async function recordReversalEvent (deps: PayPalDeps, event: Extract<PayPalWebhookEvent, { type: 'PAYMENT.CAPTURE.REVERSED' }>): Promise<WebhookOutcome> {
  const { ledger, logger } = deps
  const reference = event.reversalId ?? event.eventId
  const amountText = event.amount === null ? `an amount PayPal did not say (${event.amountProblem})` : `${formatDecimal(event.amount)} ${event.currency ?? ''}`.trim()
  // as refunds: custom_id / invoice_id when PayPal copied them, else the capture recorded against our checkout
  const checkoutId = event.checkoutId ?? (await ledger.postbacksWithTx(event.captureId)).find(p => p.checkoutId !== null)?.checkoutId ?? null
  const checkout = checkoutId === null ? undefined : await ledger.getCheckout(checkoutId)
  if (checkout === undefined) {
    // kept in the ledger's audit trail as well as the log: money taken back of a capture no checkout knows
    await ledger.audit(null, 'paypal.reversal_orphan', { tx: event.captureId, reversal: reference, amount: event.amount, currency: event.currency, checkout: checkoutId, webhook: event.eventId })
    logger.warn({ event: 'paypal.reversal_orphan', tx: event.captureId, reversal: reference, amount: event.amount ?? undefined }, `PayPal took back ${amountText} of capture ${event.captureId} (reversal ${reference}) for no known checkout: find the payment in PayPal`)
    return { status: 200, what: 'no such checkout' }
  }
  const known = event.amount !== null && event.currency === checkout.currency
  const amountWarning = event.amount === null
    ? ` PayPal did not say how much (${event.amountProblem}): find the amount in PayPal's Resolution Center; nothing is booked for it until then.`
    : known ? '' : ` PayPal's currency (${event.currency ?? '?'}) is not the checkout's (${checkout.currency}): find the amount in PayPal; nothing is booked for it.`
  const reason = `PayPal took back ${amountText} of capture ${event.captureId} (a reversal or chargeback, reference ${reference}).` +
    `${amountWarning} Nothing was changed in Alma: decide whether the fees are owed again and reinstate them in Alma if so, then mark this payment settled.`
  // A case staff settled before the money was taken back is theirs again: reopened once, with the reversal's
  // first record (a redelivered event is refused before it gets here, however often staff settle it since)
  const reopen: Reopen = { reopen: 'REVERSED', reason }
  let reopened: boolean
  if (known) {
    const result = await ledger.recordRefund(
      { checkoutId: checkout.id, tx: event.captureId, amount: event.amount as Cents, reference, note: `PayPal reported reversal ${reference} (webhook ${event.eventId})`, by: 'paypal', kind: 'reversal' },
      {
        refuse: record => record.refunds.some(r => r.tx === event.captureId && r.reference === reference) ? `reversal ${reference} is already recorded` : null,
        // taking back a double charge's extra capture ends the double charge as its refund would; taking back the
        // payment of a settled case reopens it; nothing else settles or restores anything: the library decides
        effect: record => record.checkout.attentionKind === 'DOUBLE_CHARGE' && record.checkout.tx !== event.captureId
          ? refundEffect(record)
          : reopensSettled(record.checkout, event.captureId) ? reopen : 'none'
      }
    )
    if (!result.recorded) return { status: 200, what: result.reason }
    reopened = result.effect === 'reopen'
  } else {
    const history = await ledger.history(checkout.id)
    if (history?.events.some(e => e.event === REVERSAL_AMOUNT_UNKNOWN && e.detail.includes(JSON.stringify(reference))) === true) return { status: 200, what: `reversal ${reference} is already recorded` }
    // reopened first, then marked recorded: a failure between the two (the ledger busy, the process gone) leaves the
    // mark unwritten, so PayPal's redelivery does it again, and finds the case already open (a compare-and-set)
    reopened = reopensSettled(checkout, event.captureId) && await ledger.reopenAttention(checkout.id, reopen, { reversal: reference, tx: event.captureId })
    await ledger.audit(checkout.id, REVERSAL_AMOUNT_UNKNOWN, { reversal: reference, tx: event.captureId, amount: event.amount, currency: event.currency, problem: event.amountProblem || 'another currency', webhook: event.eventId })
  }
  const moved = checkout.tx === event.captureId && await ledger.transition({
    checkoutId: checkout.id, from: ['PAID', 'POSTED'], to: 'NEEDS_ATTENTION', event: 'paypal.reversed', attentionKind: 'REVERSED', attentionReason: reason, detail: { reversal: reference, tx: event.captureId, amount: event.amount }
  })
  logger.warn({ event: 'paypal.reversed', checkout: checkout.id, tx: event.captureId, reversal: reference, amount: event.amount ?? undefined, amountKnown: known, reopened }, reason)
  const after = await ledger.getCheckout(checkout.id)
  if (after !== undefined && (moved || reopened || after.state === 'NEEDS_ATTENTION')) deps.alerts.needsAttention(after, reason)
  return { status: 200, what: known ? 'reversal recorded' : 'reversal recorded for staff: amount unknown' }
}

/** A review older than this without its COMPLETED or DENIED webhook: PayPal is asked for the capture's status. */
export const STALLED_REVIEW_MS = 60 * 60 * 1000
/** and asked again at most this often, per capture, while PayPal still reviews it */
export const REVIEW_ASK_EVERY_MS = 15 * 60 * 1000

/**
 * Reviews whose outcome webhook never arrived (lost, or the webhook misconfigured) would keep their fees unpayable for
 * ever: for each checkout held for review for longer than STALLED_REVIEW_MS, PayPal is asked for the capture
 * (GET /v2/payments/captures/{id}) and what it says is recorded as its webhook would have been: COMPLETED pays
 * (and posts), DECLINED, FAILED or VOIDED declines (the fees can be paid again), PENDING waits. The same rules and
 * compare-and-set as the webhook's, so a webhook arriving meanwhile records once. `asked` keeps when each capture
 * was last asked about (per process).
 */
export async function recoverStalledReviews (deps: PayPalDeps, now: Date, asked: Map<string, number>): Promise<void> {
  const { ledger, logger } = deps
  for (const checkout of await ledger.underReviewBefore(new Date(now.getTime() - STALLED_REVIEW_MS))) {
    const tx = checkout.reviewTx
    if (tx === null || tx === '' || now.getTime() - (asked.get(tx) ?? 0) < REVIEW_ASK_EVERY_MS) continue
    asked.set(tx, now.getTime())
    try {
      const capture = await deps.client.getCapture(tx)
      const collected = collectedFrom(capture, checkout.id)
      if (collected.checkoutId !== checkout.id) {
        logger.warn({ event: 'paypal.review_check_mismatch', checkout: checkout.id, tx }, `PayPal capture ${tx} names checkout ${collected.checkoutId ?? '(none)'}, not ${checkout.id}, which it was held for review for: nothing recorded; check PayPal`)
        continue
      }
      if (collected.status === 'PENDING') {
        logger.info({ event: 'paypal.review_still_pending', checkout: checkout.id, tx }, `PayPal still reviews capture ${tx} (checkout ${checkout.id}): its fees stay held`)
        continue
      }
      const recorded = await recordCollected(deps, { ...collected, checkoutId: checkout.id }, 'review-check', { status: capture.status })
      asked.delete(tx)
      logger.warn({ event: 'paypal.review_recovered', checkout: checkout.id, tx, status: capture.status, outcome: recorded.outcome }, `PayPal's outcome of the review of capture ${tx} (checkout ${checkout.id}) never arrived by webhook; asked PayPal: ${capture.status}, recorded ${recorded.outcome}`)
    } catch (error) {
      if (!(error instanceof PayPalError)) throw error
      logger.warn({ event: 'paypal.review_check_failed', checkout: checkout.id, tx, debugId: error.debugId || undefined }, `could not ask PayPal about capture ${tx} held for review (checkout ${checkout.id}): ${error.message}; asked again later`)
    }
  }
}

/** The audit event that remembers a PayPal checkout's order id (detail: order), written before the patron is sent to approve it. */
export const ORDER_CREATED_EVENT = 'paypal.order_created'
/** The audit event of a capture the service found by asking PayPal about the order (detail: order, tx, amount, found, outcome). */
export const CAPTURE_RECOVERED_EVENT = 'paypal.capture_recovered'
/** An order younger than this is left to the patron's own return (and the APPROVED webhook): the sweep does not race them. */
export const ORDER_CHECK_AFTER_MS = 10 * 60 * 1000
/**
 * An order older than this is never asked about. The service makes every capture itself, on the patron's return or on
 * the CHECKOUT.ORDER.APPROVED webhook, which PayPal tries for 3 days (25 times) at the most; so a capture of an older
 * order is not to be expected, and by then the return, PayPal's webhook retries and this sweep have all had their
 * chance. What is left is staff's `npm run reconcile -- --paypal`, which searches PayPal's own records.
 */
export const ORDER_CHECK_WITHIN_MS = 3 * 24 * 60 * 60 * 1000
/** each order asked about at most this often by the sweep (per process) */
export const ORDER_ASK_EVERY_MS = 15 * 60 * 1000
/** at most this many orders asked about in one sweep (the rest wait for the next minute's) */
export const ORDER_CHECKS_PER_SWEEP = 50
/** at most this many of the patron's own open PayPal checkouts asked about before a new checkout */
export const OPEN_ORDERS_BEFORE_CHECKOUT = 5

/** Remembers the order PayPal created for a checkout (one per checkout: created with the checkout id as PayPal-Request-Id). */
export async function rememberOrder (ledger: Pick<Ledger, 'audit'>, checkoutId: string, orderId: string): Promise<void> {
  await ledger.audit(checkoutId, ORDER_CREATED_EVENT, { order: orderId })
}

/**
 * The PayPal order remembered for a checkout (the latest ORDER_CREATED_EVENT), or null: none (made before it was
 * remembered), or the checkout is held for review (CAPTURE_PENDING_EVENT, marked or not yet: its capture is known, and
 * recoverStalledReviews asks PayPal about it).
 */
export async function orderOf (ledger: Pick<Ledger, 'history'>, checkoutId: string): Promise<string | null> {
  const events = (await ledger.history(checkoutId))?.events ?? []
  if (events.some(e => e.event === CAPTURE_PENDING_EVENT)) return null
  for (let i = events.length - 1; i >= 0; i--) {
    if (events[i].event !== ORDER_CREATED_EVENT) continue
    const { order } = detailOf(events[i])
    if (typeof order === 'string' && order !== '') return order
  }
  return null
}

/**
 * Asks PayPal about the order of a checkout still open here (CREATED or EXPIRED) and, if PayPal holds a capture of it
 * whose record never arrived (the ledger down when it was made, the webhook lost), records it as its webhook would
 * have: recordCollected, decideCapture, the ledger's compare-and-set (once, never more than collected; another
 * amount goes to staff; a capture in another currency than its order never gets here: getOrder refuses the answer). An order not captured (not approved, or approved and not captured) is left as it
 * is: the patron's return or the APPROVED webhook captures it under the existing rules. null when nothing was recorded.
 */
async function recoverOrder (deps: PayPalDeps, checkout: Checkout, orderId: string, found: 'sweep' | 'new-checkout'): Promise<RecordedCapture | null> {
  const { ledger, logger } = deps
  const order = await deps.client.getOrder(orderId)
  if (order.capture === null) return null
  const collected = collectedFrom(order.capture, checkout.id)
  if (collected.checkoutId !== checkout.id) {
    logger.warn({ event: 'paypal.order_check_mismatch', checkout: checkout.id, order: orderId, tx: collected.tx }, `PayPal order ${orderId}, remembered for checkout ${checkout.id}, has capture ${collected.tx} naming checkout ${collected.checkoutId ?? '(none)'}: nothing recorded; check PayPal`)
    return null
  }
  const recorded = await recordCollected(deps, collected, 'order-check', { order: orderId, found })
  await ledger.audit(checkout.id, CAPTURE_RECOVERED_EVENT, { order: orderId, tx: collected.tx, amount: collected.amount, currency: collected.currency, status: collected.status, found, outcome: recorded.outcome })
  const how = found === 'sweep' ? 'the sweep asked PayPal about its order' : 'asked PayPal before the patron started a new checkout for the same fees'
  logger.warn({ event: 'paypal.capture_recovered', checkout: checkout.id, order: orderId, tx: collected.tx, amount: collected.amount, found, outcome: recorded.outcome }, `PayPal capture ${collected.tx} of ${formatDecimal(collected.amount)} ${collected.currency} (order ${orderId}, checkout ${checkout.id}) was never recorded by its return or webhook; ${how}: recorded ${recorded.outcome}`)
  return recorded
}

/**
 * A PayPal capture whose record never arrived (the ledger could not record it, PayPal's webhook deliveries stopped,
 * the patron never reloaded the return) would leave money PayPal collected unrecorded, its fees payable again: for
 * each PayPal checkout still CREATED or EXPIRED, created between ORDER_CHECK_WITHIN_MS and ORDER_CHECK_AFTER_MS ago,
 * not held for review, with a remembered order, PayPal is asked for the order (at most every ORDER_ASK_EVERY_MS,
 * ORDER_CHECKS_PER_SWEEP a sweep) and a capture it holds is recorded (recoverOrder). PayPal not answering is logged and
 * asked again later. `asked` keeps when each checkout was last asked about (per process).
 */
export async function recoverLostCaptures (deps: PayPalDeps, now: Date, asked: Map<string, number>): Promise<void> {
  const { ledger, logger } = deps
  const newest = now.getTime() - ORDER_CHECK_AFTER_MS
  const oldest = now.getTime() - ORDER_CHECK_WITHIN_MS
  for (const [id, at] of asked) if (at < oldest) asked.delete(id)
  let checks = 0
  let after: PageCursor | null = null
  for (;;) {
    const page = await ledger.checkoutPage({ states: ['CREATED', 'EXPIRED'] }, after, 100)
    for (const summary of page) {
      const created = Date.parse(summary.createdAt)
      if (created < oldest) return
      if (created > newest || summary.provider !== 'paypal' || summary.reviewTx !== null) continue
      if (now.getTime() - (asked.get(summary.id) ?? -Infinity) < ORDER_ASK_EVERY_MS) continue
      if (checks >= ORDER_CHECKS_PER_SWEEP) return
      asked.set(summary.id, now.getTime())
      const orderId = await orderOf(ledger, summary.id)
      const checkout = orderId === null ? undefined : await ledger.getCheckout(summary.id)
      if (orderId === null || checkout === undefined) continue
      checks++
      try {
        await recoverOrder(deps, checkout, orderId, 'sweep')
      } catch (error) {
        if (error instanceof LedgerUnavailable) asked.delete(summary.id)
        if (!(error instanceof PayPalError)) throw error
        logger.warn({ event: 'paypal.order_check_failed', checkout: summary.id, order: orderId, debugId: error.debugId || undefined }, `could not ask PayPal about order ${orderId} (checkout ${summary.id}): ${error.message}; asked again later`)
      }
    }
    if (page.length < 100) return
    after = page[page.length - 1].cursor
  }
}

/**
 * Before a patron starts a new checkout for these fees: each of their own PayPal checkouts still CREATED or EXPIRED,
 * made within ORDER_CHECK_WITHIN_MS, not held for review, with a remembered order, for any of the same fees (at most
 * OPEN_ORDERS_BEFORE_CHECKOUT, one PayPal call each) is asked about first, and a capture PayPal holds for it is
 * recorded (recoverOrder): its fees are then in progress or paid, and the new checkout refuses them as such. PayPal
 * not answering is logged; the new checkout goes on (PayPal is likely down for it too).
 */
export async function recoverBeforeCheckout (deps: PayPalDeps, payer: { userId: string, userIdKind: UserIdKind }, feeIds: readonly string[], now: Date): Promise<void> {
  const { ledger, logger } = deps
  const fees = new Set(feeIds)
  const oldest = now.getTime() - ORDER_CHECK_WITHIN_MS
  const { checkouts } = await ledger.listCheckouts({ states: ['CREATED', 'EXPIRED'], search: payer.userId, limit: 50 })
  const open = checkouts.filter(c => c.userId === payer.userId && c.userIdKind === payer.userIdKind && c.provider === 'paypal' && c.reviewTx === null &&
    Date.parse(c.createdAt) >= oldest && c.lines.some(l => fees.has(l.feeId))).slice(0, OPEN_ORDERS_BEFORE_CHECKOUT)
  for (const checkout of open) {
    const orderId = await orderOf(ledger, checkout.id)
    if (orderId === null) continue
    try {
      await recoverOrder(deps, checkout, orderId, 'new-checkout')
    } catch (error) {
      if (!(error instanceof PayPalError)) throw error
      logger.warn({ event: 'paypal.order_check_failed', checkout: checkout.id, order: orderId, debugId: error.debugId || undefined }, `could not ask PayPal about order ${orderId} (checkout ${checkout.id}) before a new checkout for the same fees: ${error.message}`)
    }
  }
}
