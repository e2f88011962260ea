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
  'PAYMENT.CAPTURE.REFUNDED'
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

export type PayPalWebhookEvent = OrderApprovedEvent | CaptureEvent | RefundEvent

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
