// Reading a PayPal webhook event (already verified through verify-webhook-signature) into what the payment rules
// need: which order, which capture, which checkout, how much. Pure functions; anything malformed is refused with
// a reason rather than half-read.

import type { Cents } from '../../money.ts'
import { InvalidAmount } from '../../money.ts'
import { parsePayPalMoney } from './amount.ts'

export const HANDLED_EVENT_TYPES = [
  'CHECKOUT.ORDER.APPROVED',
  'PAYMENT.CAPTURE.COMPLETED',
  'PAYMENT.CAPTURE.DENIED',
  'PAYMENT.CAPTURE.PENDING',
  'PAYMENT.CAPTURE.REFUNDED',
  'PAYMENT.CAPTURE.REVERSED'
] as const
export type HandledEventType = typeof HANDLED_EVENT_TYPES[number]

interface EventBase {
  /** PayPal's event id (WH-...): the same delivery retried carries the same id */
  eventId: string
  createTime: string | null
  /** our checkout id, from custom_id or invoice_id (null when PayPal sent neither: find it by order or capture id) */
  checkoutId: string | null
  amount: Cents
  currency: string
}

export interface OrderApprovedEvent extends EventBase {
  type: 'CHECKOUT.ORDER.APPROVED'
  orderId: string
}

export interface CaptureEvent extends EventBase {
  type: 'PAYMENT.CAPTURE.COMPLETED' | 'PAYMENT.CAPTURE.DENIED' | 'PAYMENT.CAPTURE.PENDING'
  captureId: string
  /** supplementary_data.related_ids.order_id, when PayPal sent it */
  orderId: string | null
  /** the capture's own status (COMPLETED, DECLINED, PENDING, ...) */
  status: string
  /** status_details.reason, '' when none */
  statusReason: string
}

export interface RefundEvent extends EventBase {
  type: 'PAYMENT.CAPTURE.REFUNDED'
  /** the resource is the refund: amount is what was refunded */
  refundId: string
  /** the refunded capture, from the refund's "up" link */
  captureId: string
  orderId: string | null
}

/**
 * PayPal took money of a capture back by itself (a chargeback, a reversal). PayPal's documentation shows the
 * resource of this event as the refund-like record of the reversal, with an `up` link to the capture; it is read
 * defensively (low confidence in the shape): a resource without that link is taken as the capture itself, and an
 * amount that is missing or unreadable is null, for staff to find out, never guessed.
 */
export interface ReversalEvent extends Omit<EventBase, 'amount' | 'currency'> {
  type: 'PAYMENT.CAPTURE.REVERSED'
  /** the reversal's own id at PayPal, null when the resource is the capture itself */
  reversalId: string | null
  /** the capture reversed */
  captureId: string
  orderId: string | null
  /** what was taken back; null when PayPal did not say (or said it in a way that cannot be read) */
  amount: Cents | null
  currency: string | null
  /** why the amount is null, '' when it is known */
  amountProblem: string
}

export type PayPalWebhookEvent = OrderApprovedEvent | CaptureEvent | RefundEvent | ReversalEvent

export type WebhookReading =
  | { kind: 'event', event: PayPalWebhookEvent }
  /** a well-formed event of a type the service does not act on: acknowledge it and do nothing */
  | { kind: 'ignored', eventId: string, eventType: string }
  | { kind: 'malformed', reason: string }

class Malformed extends Error {}

function object (value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Malformed(`${what} is not an object`)
  return value as Record<string, unknown>
}

function id (value: unknown, what: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{1,127}$/.test(value)) throw new Malformed(`${what} missing or not an id`)
  return value
}

function optionalText (value: unknown, what: string): string | null {
  if (value === undefined || value === null) return null
  if (typeof value !== 'string' || value.length > 127) throw new Malformed(`${what} is not a string of at most 127 characters`)
  return value === '' ? null : value
}

/** custom_id and invoice_id both carry the checkout id: one of them is enough, two that differ are refused. */
function checkoutId (holder: Record<string, unknown>, what: string): string | null {
  const custom = optionalText(holder.custom_id, `${what}.custom_id`)
  const invoice = optionalText(holder.invoice_id, `${what}.invoice_id`)
  if (custom !== null && invoice !== null && custom !== invoice) throw new Malformed(`${what}: custom_id ${custom} and invoice_id ${invoice} differ`)
  return custom ?? invoice
}

function money (value: unknown, what: string): { value: Cents, currency: string } {
  try {
    return parsePayPalMoney(value)
  } catch (error) {
    if (error instanceof InvalidAmount) throw new Malformed(`${what}: ${error.message}`)
    throw error
  }
}

function relatedOrderId (resource: Record<string, unknown>): string | null {
  const related = (resource.supplementary_data as any)?.related_ids?.order_id
  return related === undefined ? null : id(related, 'supplementary_data.related_ids.order_id')
}

/** The capture a refund refunds: its "up" link ends in /v2/payments/captures/{id}. */
function refundedCaptureId (resource: Record<string, unknown>): string {
  const links = resource.links
  if (!Array.isArray(links)) throw new Malformed('refund without links')
  const up = links.find(l => typeof l === 'object' && l !== null && (l as any).rel === 'up')
  const href = typeof up?.href === 'string' ? up.href : ''
  const match = /\/v2\/payments\/captures\/([^/?#]+)$/.exec(href)
  if (match === null) throw new Malformed('refund without a link up to its capture')
  return id(decodeURIComponent(match[1]), 'refunded capture id')
}

/** The capture a reversal reverses: its `up` link, else (no such link) the resource is the capture itself. */
function reversedCapture (resource: Record<string, unknown>): { captureId: string, reversalId: string | null } {
  const links = Array.isArray(resource.links) ? resource.links : []
  const up = links.find(l => typeof l === 'object' && l !== null && (l as any).rel === 'up')
  if (up !== undefined) return { captureId: refundedCaptureId(resource), reversalId: id(resource.id, 'reversal id') }
  return { captureId: id(resource.id, 'reversed capture id'), reversalId: null }
}

/** A reversal's amount, or null with the reason: money taken back is always money out, whatever its sign. */
function reversedAmount (value: unknown): { amount: Cents | null, currency: string | null, amountProblem: string } {
  if (value === undefined || value === null) return { amount: null, currency: null, amountProblem: 'PayPal sent no amount' }
  try {
    const parsed = parsePayPalMoney(value, { allowNegative: true })
    if (parsed.value === 0) return { amount: null, currency: parsed.currency, amountProblem: 'PayPal sent an amount of 0' }
    return { amount: Math.abs(parsed.value) as Cents, currency: parsed.currency, amountProblem: '' }
  } catch (error) {
    if (error instanceof InvalidAmount) return { amount: null, currency: null, amountProblem: `PayPal sent an amount that cannot be read (${error.message})` }
    throw error
  }
}

/** Reads a parsed event body (the JSON PayPal delivered). */
export function readWebhookEvent (body: unknown): WebhookReading {
  try {
    const envelope = object(body, 'event')
    const eventId = id(envelope.id, 'event id')
    const eventType = envelope.event_type
    if (typeof eventType !== 'string' || eventType === '') throw new Malformed('event_type missing')
    if (!(HANDLED_EVENT_TYPES as readonly string[]).includes(eventType)) return { kind: 'ignored', eventId, eventType }
    const createTime = typeof envelope.create_time === 'string' ? envelope.create_time : null
    const resource = object(envelope.resource, 'resource')
    const type = eventType as HandledEventType
    if (type === 'CHECKOUT.ORDER.APPROVED') {
      const orderId = id(resource.id, 'order id')
      const units = resource.purchase_units
      if (!Array.isArray(units) || units.length !== 1) throw new Malformed(`order ${orderId}: expected one purchase unit`)
      const unit = object(units[0], 'purchase unit')
      const amount = money(unit.amount, `order ${orderId} amount`)
      return { kind: 'event', event: { type, eventId, createTime, orderId, checkoutId: checkoutId(unit, 'purchase unit'), amount: amount.value, currency: amount.currency } }
    }
    if (type === 'PAYMENT.CAPTURE.REVERSED') {
      const { captureId, reversalId } = reversedCapture(resource)
      return {
        kind: 'event',
        event: { type, eventId, createTime, reversalId, captureId, orderId: relatedOrderId(resource), checkoutId: checkoutId(resource, 'reversal'), ...reversedAmount(resource.amount) }
      }
    }
    if (type === 'PAYMENT.CAPTURE.REFUNDED') {
      const refundId = id(resource.id, 'refund id')
      const amount = money(resource.amount, `refund ${refundId} amount`)
      return {
        kind: 'event',
        event: { type, eventId, createTime, refundId, captureId: refundedCaptureId(resource), orderId: relatedOrderId(resource), checkoutId: checkoutId(resource, 'refund'), amount: amount.value, currency: amount.currency }
      }
    }
    const captureId = id(resource.id, 'capture id')
    const status = resource.status
    if (typeof status !== 'string' || status === '') throw new Malformed(`capture ${captureId} without status`)
    const amount = money(resource.amount, `capture ${captureId} amount`)
    const reason = (resource.status_details as any)?.reason
    return {
      kind: 'event',
      event: {
        type,
        eventId,
        createTime,
        captureId,
        orderId: relatedOrderId(resource),
        status,
        statusReason: typeof reason === 'string' ? reason : '',
        checkoutId: checkoutId(resource, 'capture'),
        amount: amount.value,
        currency: amount.currency
      }
    }
  } catch (error) {
    if (error instanceof Malformed) return { kind: 'malformed', reason: error.message }
    throw error
  }
}

/** Reads the raw body as delivered. */
export function parseWebhookEvent (rawBody: string | Buffer): WebhookReading {
  let body: unknown
  try {
    body = JSON.parse(typeof rawBody === 'string' ? rawBody : rawBody.toString('utf8'))
  } catch {
    return { kind: 'malformed', reason: 'body is not JSON' }
  }
  return readWebhookEvent(body)
}
