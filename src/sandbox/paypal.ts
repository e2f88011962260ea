// The PayPal stand-in: OAuth client-credentials tokens that expire, Orders v2 (create, get, capture) honouring
// PayPal-Request-Id, an approval page (Approve, Approve with a card that will decline, Cancel) that sends the
// browser back like PayPal, refunds, signed webhook deliveries that only its own verify-webhook-signature accepts,
// and Transaction Search over its captures. It records every call and misbehaves on request: 5xx on captures
// (before or after charging), slow answers, the token endpoint down, odd amounts in the capture.

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import formbody from '@fastify/formbody'
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { xmlEscape as escape } from './xml-escape.ts'

export interface PayPalFaults {
  /** added to every API answer (not the approval page) */
  latencyMs: number
  /** answer the next N captures 503 without capturing */
  failNextCaptures: number
  /** capture the next N orders, then answer 500 (the answer is lost; the capture exists) */
  loseNextCaptureAnswers: number
  /** answer the next N order creations 503 without creating */
  failNextCreates: number
  /** the token endpoint answers 503 */
  tokenDown: boolean
  /** status of new captures: PENDING holds the money for review (complete or deny it later) */
  captureStatus: 'COMPLETED' | 'PENDING'
  /** added to the captured amount (a capture that differs from the order) */
  captureAmountDeltaCents: number
  /** the captured currency, when it should differ from the order's */
  captureCurrency: string | null
  /** the capture amount's value sent verbatim (e.g. "16.755", "1e3"): the client must refuse it */
  captureAmountValue: string | null
  /**
   * a 4xx answer is stored under its PayPal-Request-Id and replayed for the same key, as live PayPal may do
   * (successes always are): a client that reuses a declined capture's key gets the decline again
   */
  replayErrorAnswers: boolean
}

const NO_FAULTS: PayPalFaults = {
  latencyMs: 0, failNextCaptures: 0, loseNextCaptureAnswers: 0, failNextCreates: 0, tokenDown: false, captureStatus: 'COMPLETED', captureAmountDeltaCents: 0, captureCurrency: null, captureAmountValue: null, replayErrorAnswers: false
}

/** immediate: sent (and awaited) before the browser is redirected; held: queued until deliverHeld(); off: never */
export type WebhookMode = 'immediate' | 'held' | 'off'

export interface PayPalSandboxOptions {
  clientId: string
  clientSecret: string
  /** the id of the webhook registered for webhookUrl: verify-webhook-signature accepts only this one */
  webhookId: string
  webhookUrl?: string
  /** expires_in of the tokens it hands out, in seconds (PayPal: about 9 hours) */
  tokenLifetimeSeconds?: number
  webhookMode?: WebhookMode
  faults?: Partial<PayPalFaults>
}

export interface PayPalSandboxCall {
  method: string
  path: string
  requestId: string | null
  /** 0 until answered (and for ever if the caller gave up first) */
  status: number
  at: number
}

export interface SandboxCapture {
  id: string
  orderId: string
  status: 'COMPLETED' | 'PENDING' | 'DECLINED' | 'REFUNDED' | 'PARTIALLY_REFUNDED' | 'REVERSED'
  amountCents: number
  currency: string
  /** the value string sent (the fault may make it malformed) */
  value: string
  customId: string
  invoiceId: string
  createTime: string
  refunds: SandboxRefund[]
}

export interface SandboxRefund {
  id: string
  captureId: string
  amountCents: number
  currency: string
  createTime: string
  /** 'reversal': PayPal took the money back by itself (a chargeback), not a refund the merchant made */
  kind?: 'refund' | 'reversal'
}

interface Item { name: string, sku: string, quantity: string, unitCents: number }

export interface SandboxOrder {
  id: string
  status: 'CREATED' | 'PAYER_ACTION_REQUIRED' | 'APPROVED' | 'COMPLETED'
  createRequestId: string | null
  referenceId: string
  customId: string
  invoiceId: string
  description: string
  currency: string
  amountCents: number
  items: Item[]
  returnUrl: string
  cancelUrl: string
  brandName: string
  /** the patron approved with an instrument that will decline at capture */
  declining: boolean
  captures: SandboxCapture[]
  createTime: string
  /** the body the client sent, as received */
  request: unknown
}

export interface WebhookDelivery {
  eventType: string
  body: string
  headers: Record<string, string>
  /** the listener's status, 0 if it did not answer; undefined while held */
  status?: number
}

interface Stored { status: number, body: unknown }

let counter = 0
function payPalId (): string {
  counter++
  return (randomBytes(6).toString('hex') + String(counter).padStart(5, '0')).toUpperCase().slice(-17)
}

function decimal (cents: number): string {
  const sign = cents < 0 ? '-' : ''
  const abs = Math.abs(cents)
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`
}

const AMOUNT = /^\d{1,10}(\.\d{1,2})?$/
function toCents (value: string): number {
  const [whole, fraction = ''] = value.split('.')
  return Number(whole) * 100 + Number((fraction + '00').slice(0, 2))
}

/** HTTP error answers as PayPal writes them, each with a fresh debug_id. */
class Refusal extends Error {
  constructor (readonly status: number, readonly payPalName: string, readonly issue: string, readonly description: string) {
    super(description)
  }
}

export class PayPalSandbox {
  faults: PayPalFaults
  webhookMode: WebhookMode
  tokenLifetimeSeconds: number
  /** the clock of orders, captures and Transaction Search (tests move it to spread captures over months) */
  now: () => Date = () => new Date()
  readonly calls: PayPalSandboxCall[] = []
  readonly orders = new Map<string, SandboxOrder>()
  readonly captures: SandboxCapture[] = []
  readonly webhooks: WebhookDelivery[] = []
  readonly held: WebhookDelivery[] = []
  /** tokens handed out */
  tokensIssued = 0
  readonly #options: PayPalSandboxOptions
  readonly #tokens = new Map<string, number>()
  readonly #idempotent = new Map<string, Stored>()
  /** the stand-in's signing secret: only its own verify endpoint knows it */
  readonly #secret = randomBytes(32)
  readonly #app: FastifyInstance
  #url = ''

  constructor (options: PayPalSandboxOptions) {
    this.#options = options
    this.faults = { ...NO_FAULTS, ...options.faults }
    this.webhookMode = options.webhookMode ?? 'immediate'
    this.tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? 32400
    this.#app = Fastify({ logger: false, forceCloseConnections: true })
    this.#app.register(formbody)
    this.#routes()
  }

  get url (): string { return this.#url }
  get webhookId (): string { return this.#options.webhookId }
  setWebhookUrl (url: string): void { this.#options.webhookUrl = url }

  async start (port = 0, host = '127.0.0.1'): Promise<string> {
    this.#url = await this.#app.listen({ port, host })
    return this.#url
  }

  async close (): Promise<void> {
    await this.#app.close()
  }

  /** how many calls of this method and path pattern were answered (e.g. 'POST', /\/capture$/) */
  count (method: string, path: RegExp | string): number {
    return this.calls.filter(c => c.method === method && (typeof path === 'string' ? c.path === path : path.test(c.path))).length
  }

  /** every token handed out so far stops working (as if PayPal revoked them) */
  expireTokens (): void {
    this.#tokens.clear()
  }

  /** The headers PayPal would send with this body: verify-webhook-signature accepts them for webhookId only. */
  sign (body: string, webhookId = this.#options.webhookId): Record<string, string> {
    const transmissionId = randomUUID()
    const time = this.now().toISOString()
    return {
      'paypal-auth-algo': 'SHA256withRSA',
      'paypal-cert-url': `${this.#url}/v1/notifications/certs/CERT-sandbox-0001`,
      'paypal-transmission-id': transmissionId,
      'paypal-transmission-sig': this.#signature(transmissionId, time, webhookId, body),
      'paypal-transmission-time': time
    }
  }

  #signature (transmissionId: string, time: string, webhookId: string, body: string): string {
    return createHmac('sha256', this.#secret).update(`${transmissionId}|${time}|${webhookId}|${crc32(body)}`).digest('base64')
  }

  /** Sends a signed event to the listener now (tests of odd deliveries: pass headers to override or drop some). */
  async deliver (eventType: string, resource: unknown, options: { headers?: Record<string, string | null>, body?: string } = {}): Promise<WebhookDelivery> {
    const delivery = this.#event(eventType, resource)
    if (options.body !== undefined) delivery.body = options.body
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (value === null) delete delivery.headers[name]
      else delivery.headers[name] = value
    }
    return await this.#send(delivery)
  }

  /** Sends a delivery again, as PayPal does when the listener did not answer 2xx. */
  async redeliver (delivery: WebhookDelivery): Promise<WebhookDelivery> {
    return await this.#send({ ...delivery, headers: { ...delivery.headers }, status: undefined })
  }

  /** Sends every held delivery, oldest first. */
  async deliverHeld (): Promise<WebhookDelivery[]> {
    const out: WebhookDelivery[] = []
    for (const delivery of this.held.splice(0)) out.push(await this.#send(delivery))
    return out
  }

  #event (eventType: string, resource: unknown): WebhookDelivery {
    const body = JSON.stringify({
      id: `WH-${payPalId()}`,
      event_version: '1.0',
      create_time: this.now().toISOString(),
      resource_type: eventType.startsWith('CHECKOUT.') ? 'checkout-order' : eventType.endsWith('REFUNDED') || eventType.endsWith('REVERSED') ? 'refund' : 'capture',
      resource_version: '2.0',
      event_type: eventType,
      summary: eventType,
      resource
    })
    return { eventType, body, headers: { 'content-type': 'application/json', ...this.sign(body) } }
  }

  async #send (delivery: WebhookDelivery): Promise<WebhookDelivery> {
    const url = this.#options.webhookUrl
    this.webhooks.push(delivery)
    if (url === undefined || url === '') {
      delivery.status = 0
      return delivery
    }
    try {
      const response = await fetch(url, { method: 'POST', headers: delivery.headers, body: delivery.body, signal: AbortSignal.timeout(10000) })
      await response.arrayBuffer()
      delivery.status = response.status
    } catch {
      delivery.status = 0
    }
    return delivery
  }

  async #emit (eventType: string, resource: unknown): Promise<void> {
    if (this.webhookMode === 'off') return
    const delivery = this.#event(eventType, resource)
    if (this.webhookMode === 'held') this.held.push(delivery)
    else await this.#send(delivery)
  }

  /** Refunds a capture (all of it by default) and delivers PAYMENT.CAPTURE.REFUNDED. */
  async refund (captureId: string, amountCents?: number): Promise<SandboxRefund> {
    const capture = this.captures.find(c => c.id === captureId)
    if (capture === undefined) throw new Error(`sandbox: no capture ${captureId}`)
    const refunded = capture.refunds.reduce((sum, r) => sum + r.amountCents, 0)
    const amount = amountCents ?? capture.amountCents - refunded
    if (amount <= 0 || refunded + amount > capture.amountCents) throw new Error(`sandbox: cannot refund ${amount} of capture ${captureId}`)
    const refund: SandboxRefund = { id: payPalId(), captureId, amountCents: amount, currency: capture.currency, createTime: this.now().toISOString() }
    capture.refunds.push(refund)
    capture.status = refunded + amount === capture.amountCents ? 'REFUNDED' : 'PARTIALLY_REFUNDED'
    await this.#emit('PAYMENT.CAPTURE.REFUNDED', this.#refundResource(refund, capture))
    return refund
  }

  /**
   * PayPal takes (part of) a capture back by itself (a chargeback, a reversal) and delivers PAYMENT.CAPTURE.REVERSED,
   * its resource the reversal with an `up` link to the capture (as PayPal documents it). `amountCents: null` leaves
   * the amount out of the event, `ids: false` leaves out custom_id and invoice_id: the shapes a listener must survive.
   */
  async reverse (captureId: string, options: { amountCents?: number | null, ids?: boolean } = {}): Promise<SandboxRefund> {
    const capture = this.captures.find(c => c.id === captureId)
    if (capture === undefined) throw new Error(`sandbox: no capture ${captureId}`)
    const given = capture.refunds.reduce((sum, r) => sum + r.amountCents, 0)
    const amount = options.amountCents ?? capture.amountCents - given
    if (amount <= 0 || given + amount > capture.amountCents) throw new Error(`sandbox: cannot reverse ${amount} of capture ${captureId}`)
    const reversal: SandboxRefund = { id: payPalId(), captureId, amountCents: amount, currency: capture.currency, createTime: this.now().toISOString(), kind: 'reversal' }
    capture.refunds.push(reversal)
    if (given + amount === capture.amountCents) capture.status = 'REVERSED'
    const resource = this.#refundResource(reversal, capture)
    resource.note_to_payer = 'Payment reversed'
    if (options.amountCents === null) delete resource.amount
    if (options.ids === false) {
      delete resource.custom_id
      delete resource.invoice_id
    }
    await this.#emit('PAYMENT.CAPTURE.REVERSED', resource)
    return reversal
  }

  /**
   * Settles a PENDING capture: COMPLETED or DENIED, with its webhook; `webhook: false` changes the capture's status
   * (GET /v2/payments/captures/{id} tells it) without delivering anything, as when the webhook is lost.
   */
  async settlePending (captureId: string, outcome: 'COMPLETED' | 'DENIED', options: { webhook?: boolean } = {}): Promise<void> {
    const capture = this.captures.find(c => c.id === captureId)
    if (capture?.status !== 'PENDING') throw new Error(`sandbox: capture ${captureId} is not pending`)
    capture.status = outcome === 'COMPLETED' ? 'COMPLETED' : 'DECLINED'
    if (options.webhook === false) return
    await this.#emit(`PAYMENT.CAPTURE.${outcome}`, this.#captureResource(capture))
  }

  #links (kind: string, id: string): Array<{ href: string, rel: string, method: string }> {
    return [{ href: `${this.#url}/v2/${kind}/${id}`, rel: 'self', method: 'GET' }]
  }

  #captureResource (capture: SandboxCapture): Record<string, unknown> {
    return {
      id: capture.id,
      status: capture.status,
      ...(capture.status === 'PENDING' ? { status_details: { reason: 'PENDING_REVIEW' } } : {}),
      amount: { currency_code: capture.currency, value: capture.value },
      final_capture: true,
      seller_protection: { status: 'ELIGIBLE' },
      seller_receivable_breakdown: {
        gross_amount: { currency_code: capture.currency, value: decimal(capture.amountCents) },
        paypal_fee: { currency_code: capture.currency, value: decimal(Math.round(capture.amountCents * 0.0349) + 49) },
        net_amount: { currency_code: capture.currency, value: decimal(capture.amountCents - Math.round(capture.amountCents * 0.0349) - 49) }
      },
      custom_id: capture.customId,
      invoice_id: capture.invoiceId,
      supplementary_data: { related_ids: { order_id: capture.orderId } },
      create_time: capture.createTime,
      update_time: capture.createTime,
      links: this.#links('payments/captures', capture.id)
    }
  }

  #refundResource (refund: SandboxRefund, capture: SandboxCapture): Record<string, unknown> {
    return {
      id: refund.id,
      status: 'COMPLETED',
      amount: { currency_code: refund.currency, value: decimal(refund.amountCents) },
      custom_id: capture.customId,
      invoice_id: capture.invoiceId,
      create_time: refund.createTime,
      update_time: refund.createTime,
      links: [...this.#links('payments/refunds', refund.id), { href: `${this.#url}/v2/payments/captures/${capture.id}`, rel: 'up', method: 'GET' }]
    }
  }

  #orderResource (order: SandboxOrder): Record<string, unknown> {
    const money = (cents: number): { currency_code: string, value: string } => ({ currency_code: order.currency, value: decimal(cents) })
    const links: Array<{ href: string, rel: string, method: string }> = this.#links('checkout/orders', order.id)
    if (order.status === 'PAYER_ACTION_REQUIRED' || order.status === 'CREATED') links.push({ href: `${this.#url}/checkoutnow?token=${order.id}`, rel: 'payer-action', method: 'GET' })
    if (order.status === 'APPROVED') links.push({ href: `${this.#url}/v2/checkout/orders/${order.id}/capture`, rel: 'capture', method: 'POST' })
    return {
      id: order.id,
      intent: 'CAPTURE',
      status: order.status,
      payment_source: { paypal: {} },
      purchase_units: [{
        reference_id: order.referenceId,
        description: order.description,
        custom_id: order.customId,
        invoice_id: order.invoiceId,
        amount: { ...money(order.amountCents), breakdown: { item_total: money(order.amountCents) } },
        items: order.items.map(i => ({ name: i.name, sku: i.sku, quantity: i.quantity, unit_amount: money(i.unitCents), category: 'DIGITAL_GOODS' })),
        ...(order.captures.length > 0 ? { payments: { captures: order.captures.map(c => this.#captureResource(c)) } } : {})
      }],
      ...(order.status !== 'CREATED' && order.status !== 'PAYER_ACTION_REQUIRED' ? { payer: { name: { given_name: 'Sandbox', surname: 'Patron' }, email_address: 'patron@example.edu', payer_id: 'SANDBOXPAYER1' } } : {}),
      create_time: order.createTime,
      links
    }
  }

  #authorised (request: FastifyRequest): boolean {
    const header = request.headers.authorization ?? ''
    const token = header.startsWith('Bearer ') ? header.slice(7) : ''
    const expires = this.#tokens.get(token)
    return expires !== undefined && Date.now() < expires
  }

  #refuse (reply: FastifyReply, refusal: Refusal): FastifyReply {
    const debugId = randomBytes(7).toString('hex').slice(0, 13)
    return reply.code(refusal.status).header('paypal-debug-id', debugId).send({
      name: refusal.payPalName,
      message: refusal.description,
      debug_id: debugId,
      details: refusal.issue !== '' ? [{ issue: refusal.issue, description: refusal.description }] : [],
      links: []
    })
  }

  #createOrder (request: FastifyRequest): Stored {
    const body = request.body as any
    const bad = (issue: string, description: string): Refusal => new Refusal(400, 'INVALID_REQUEST', issue, description)
    if (typeof body !== 'object' || body === null) throw bad('MALFORMED_REQUEST_JSON', 'the body is not JSON')
    if (body.intent !== 'CAPTURE') throw bad('INVALID_PARAMETER_VALUE', 'intent must be CAPTURE here')
    if (!Array.isArray(body.purchase_units) || body.purchase_units.length !== 1) throw bad('INVALID_ARRAY_MAX_ITEMS', 'exactly one purchase unit')
    const unit = body.purchase_units[0]
    const currency = unit?.amount?.currency_code
    const value = unit?.amount?.value
    if (typeof currency !== 'string' || typeof value !== 'string' || !AMOUNT.test(value)) throw bad('INVALID_PARAMETER_VALUE', 'purchase_units[0].amount')
    const items: Item[] = []
    for (const item of Array.isArray(unit.items) ? unit.items : []) {
      const unitValue = item?.unit_amount?.value
      if (typeof item?.name !== 'string' || item.name === '' || item.name.length > 127) throw bad('INVALID_STRING_LENGTH', 'items[].name')
      if (typeof unitValue !== 'string' || !AMOUNT.test(unitValue) || item.unit_amount.currency_code !== currency) throw bad('INVALID_PARAMETER_VALUE', 'items[].unit_amount')
      if (item.quantity !== '1' || typeof item.sku !== 'string' || item.sku === '') throw bad('INVALID_PARAMETER_VALUE', 'items[].quantity or sku')
      items.push({ name: item.name, sku: item.sku, quantity: item.quantity, unitCents: toCents(unitValue) })
    }
    const itemTotal = unit.amount.breakdown?.item_total
    const sum = items.reduce((s, i) => s + i.unitCents, 0)
    if (items.length > 0 && (itemTotal?.currency_code !== currency || typeof itemTotal?.value !== 'string' || toCents(itemTotal.value) !== sum)) {
      throw new Refusal(422, 'UNPROCESSABLE_ENTITY', 'ITEM_TOTAL_MISMATCH', 'item_total must equal the sum of the items')
    }
    if (toCents(value) !== (items.length > 0 ? sum : toCents(value))) throw new Refusal(422, 'UNPROCESSABLE_ENTITY', 'AMOUNT_MISMATCH', 'amount must equal item_total')
    const context = body.payment_source?.paypal?.experience_context ?? {}
    if (typeof context.return_url !== 'string' || typeof context.cancel_url !== 'string') throw bad('MISSING_REQUIRED_PARAMETER', 'experience_context.return_url and cancel_url')
    const order: SandboxOrder = {
      id: payPalId(),
      status: 'PAYER_ACTION_REQUIRED',
      createRequestId: typeof request.headers['paypal-request-id'] === 'string' ? request.headers['paypal-request-id'] : null,
      referenceId: String(unit.reference_id ?? 'default'),
      customId: String(unit.custom_id ?? ''),
      invoiceId: String(unit.invoice_id ?? ''),
      description: String(unit.description ?? ''),
      currency,
      amountCents: toCents(value),
      items,
      returnUrl: context.return_url,
      cancelUrl: context.cancel_url,
      brandName: String(context.brand_name ?? ''),
      declining: false,
      captures: [],
      createTime: this.now().toISOString(),
      request: body
    }
    if ([...this.orders.values()].some(o => o.invoiceId !== '' && o.invoiceId === order.invoiceId && o.status === 'COMPLETED')) {
      throw new Refusal(422, 'UNPROCESSABLE_ENTITY', 'DUPLICATE_INVOICE_ID', 'Duplicate Invoice ID detected')
    }
    this.orders.set(order.id, order)
    return { status: 200, body: this.#orderResource(order) }
  }

  async #captureOrder (orderId: string): Promise<Stored> {
    const order = this.orders.get(orderId)
    if (order === undefined) throw new Refusal(404, 'RESOURCE_NOT_FOUND', 'INVALID_RESOURCE_ID', 'Specified resource ID does not exist.')
    if (order.status === 'COMPLETED') throw new Refusal(422, 'UNPROCESSABLE_ENTITY', 'ORDER_ALREADY_CAPTURED', 'Order already captured.')
    if (order.status !== 'APPROVED') throw new Refusal(422, 'UNPROCESSABLE_ENTITY', 'ORDER_NOT_APPROVED', 'Payer has not yet approved the Order for payment.')
    if (order.declining) {
      // PayPal: send the payer back to the approval link to choose another funding source
      order.declining = false
      order.status = 'PAYER_ACTION_REQUIRED'
      throw new Refusal(422, 'UNPROCESSABLE_ENTITY', 'INSTRUMENT_DECLINED', 'The instrument presented was either declined by the processor or bank, or it can\'t be used for this payment.')
    }
    const f = this.faults
    const cents = order.amountCents + f.captureAmountDeltaCents
    const capture: SandboxCapture = {
      id: payPalId(),
      orderId: order.id,
      status: f.captureStatus,
      amountCents: cents,
      currency: f.captureCurrency ?? order.currency,
      value: f.captureAmountValue ?? decimal(cents),
      customId: order.customId,
      invoiceId: order.invoiceId,
      createTime: this.now().toISOString(),
      refunds: []
    }
    order.captures.push(capture)
    order.status = 'COMPLETED'
    this.captures.push(capture)
    await this.#emit(capture.status === 'PENDING' ? 'PAYMENT.CAPTURE.PENDING' : 'PAYMENT.CAPTURE.COMPLETED', this.#captureResource(capture))
    return { status: 201, body: this.#orderResource(order) }
  }

  #routes (): void {
    const app = this.#app

    // recorded as it arrives (a caller that gave up still made the call), its status filled in once answered
    const arrived = new WeakMap<FastifyRequest, PayPalSandboxCall>()
    app.addHook('onRequest', async (request) => {
      const requestId = request.headers['paypal-request-id']
      const call = { method: request.method, path: request.url.split('?')[0], requestId: typeof requestId === 'string' ? requestId : null, status: 0, at: Date.now() }
      arrived.set(request, call)
      this.calls.push(call)
    })
    app.addHook('onRequest', async (request) => {
      if (this.faults.latencyMs > 0 && (request.url.startsWith('/v1/') || request.url.startsWith('/v2/'))) {
        await new Promise(resolve => setTimeout(resolve, this.faults.latencyMs))
      }
    })
    app.addHook('onResponse', async (request, reply) => {
      const call = arrived.get(request)
      if (call !== undefined) call.status = reply.statusCode
    })

    // the capture happened but its answer is lost on the way: PayPal-Request-Id is how the retry learns of it
    app.addHook('onSend', async (request, reply, payload) => {
      if (request.method === 'POST' && /^\/v2\/checkout\/orders\/[^/]+\/capture$/.test(request.url) && reply.statusCode === 201 && this.faults.loseNextCaptureAnswers > 0) {
        this.faults.loseNextCaptureAnswers--
        const debugId = randomBytes(7).toString('hex').slice(0, 13)
        reply.code(500).header('paypal-debug-id', debugId)
        return JSON.stringify({ name: 'INTERNAL_SERVER_ERROR', message: 'An internal server error has occurred.', debug_id: debugId, details: [] })
      }
      return payload
    })

    app.post('/v1/oauth2/token', async (request, reply) => {
      if (this.faults.tokenDown) return this.#refuse(reply, new Refusal(503, 'SERVICE_UNAVAILABLE', '', 'Service Unavailable'))
      const header = request.headers.authorization ?? ''
      const given = Buffer.from(header.startsWith('Basic ') ? header.slice(6) : '', 'base64')
      const expected = Buffer.from(`${this.#options.clientId}:${this.#options.clientSecret}`)
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return reply.code(401).send({ error: 'invalid_client', error_description: 'Client Authentication failed' })
      }
      if ((request.body as any)?.grant_type !== 'client_credentials') return reply.code(400).send({ error: 'unsupported_grant_type', error_description: 'Grant Type is NULL' })
      const token = `A21AA${randomBytes(24).toString('base64url')}`
      this.#tokens.set(token, Date.now() + this.tokenLifetimeSeconds * 1000)
      this.tokensIssued++
      return { scope: 'https://uri.paypal.com/services/payments/payment', access_token: token, token_type: 'Bearer', app_id: 'APP-SANDBOX', expires_in: this.tokenLifetimeSeconds, nonce: randomUUID() }
    })

    /** the API: bearer token, then PayPal-Request-Id replays a stored success instead of acting again */
    const api = (operation: (request: FastifyRequest) => Promise<Stored> | Stored) => async (request: FastifyRequest, reply: FastifyReply) => {
      if (!this.#authorised(request)) return this.#refuse(reply, new Refusal(401, 'AUTHENTICATION_FAILURE', '', 'Authentication failed due to invalid authentication credentials or a missing Authorization header.'))
      const requestId = request.headers['paypal-request-id']
      const key = typeof requestId === 'string' && requestId !== '' ? `${request.method} ${request.url} ${requestId}` : null
      const stored = key !== null ? this.#idempotent.get(key) : undefined
      if (stored !== undefined) return reply.code(stored.status).send(stored.body)
      try {
        const answer = await operation(request)
        if (key !== null) this.#idempotent.set(key, answer)
        return reply.code(answer.status).send(answer.body)
      } catch (error) {
        if (error instanceof Refusal) {
          if (key !== null && this.faults.replayErrorAnswers && error.status >= 400 && error.status < 500) {
            const debugId = randomBytes(7).toString('hex').slice(0, 13)
            this.#idempotent.set(key, { status: error.status, body: { name: error.payPalName, message: error.description, debug_id: debugId, details: error.issue === '' ? [] : [{ issue: error.issue, description: error.description }], links: [] } })
          }
          return this.#refuse(reply, error)
        }
        throw error
      }
    }

    app.post('/v2/checkout/orders', api((request) => {
      if (this.faults.failNextCreates > 0) {
        this.faults.failNextCreates--
        throw new Refusal(503, 'SERVICE_UNAVAILABLE', '', 'Service Unavailable.')
      }
      return this.#createOrder(request)
    }))

    app.get('/v2/checkout/orders/:id', api((request) => {
      const order = this.orders.get((request.params as any).id)
      if (order === undefined) throw new Refusal(404, 'RESOURCE_NOT_FOUND', 'INVALID_RESOURCE_ID', 'Specified resource ID does not exist.')
      return { status: 200, body: this.#orderResource(order) }
    }))

    app.post('/v2/checkout/orders/:id/capture', api(async (request) => {
      if (this.faults.failNextCaptures > 0) {
        this.faults.failNextCaptures--
        throw new Refusal(503, 'SERVICE_UNAVAILABLE', '', 'Service Unavailable.')
      }
      return await this.#captureOrder((request.params as any).id)
    }))

    app.get('/v2/payments/captures/:id', api((request) => {
      const capture = this.captures.find(c => c.id === (request.params as any).id)
      if (capture === undefined) throw new Refusal(404, 'RESOURCE_NOT_FOUND', 'INVALID_RESOURCE_ID', 'Specified resource ID does not exist.')
      return { status: 200, body: this.#captureResource(capture) }
    }))

    app.post('/v2/payments/captures/:id/refund', api(async (request) => {
      const id = (request.params as any).id
      const capture = this.captures.find(c => c.id === id)
      if (capture === undefined) throw new Refusal(404, 'RESOURCE_NOT_FOUND', 'INVALID_RESOURCE_ID', 'Specified resource ID does not exist.')
      if (capture.status !== 'COMPLETED' && capture.status !== 'PARTIALLY_REFUNDED') throw new Refusal(422, 'UNPROCESSABLE_ENTITY', 'CAPTURE_FULLY_REFUNDED', 'The capture has already been fully refunded.')
      const refund = await this.refund(id)
      return { status: 201, body: this.#refundResource(refund, capture) }
    }))

    app.post('/v1/notifications/verify-webhook-signature', api((request) => {
      const body = request.body as any
      const names = ['auth_algo', 'cert_url', 'transmission_id', 'transmission_sig', 'transmission_time', 'webhook_id']
      for (const name of names) {
        if (typeof body?.[name] !== 'string' || body[name] === '') throw new Refusal(400, 'VALIDATION_ERROR', 'MISSING_REQUIRED_PARAMETER', `${name} is required`)
      }
      if (typeof body.webhook_event !== 'object' || body.webhook_event === null) throw new Refusal(400, 'VALIDATION_ERROR', 'MISSING_REQUIRED_PARAMETER', 'webhook_event is required')
      const expected = this.#signature(body.transmission_id, body.transmission_time, body.webhook_id, JSON.stringify(body.webhook_event))
      const given = Buffer.from(body.transmission_sig)
      const ok = body.webhook_id === this.#options.webhookId && body.auth_algo === 'SHA256withRSA' &&
        given.length === Buffer.byteLength(expected) && timingSafeEqual(given, Buffer.from(expected))
      return { status: 200, body: { verification_status: ok ? 'SUCCESS' : 'FAILURE' } }
    }))

    app.get('/v1/reporting/transactions', api((request) => {
      const query = request.query as Record<string, string>
      const start = Date.parse(query.start_date ?? '')
      const end = Date.parse(query.end_date ?? '')
      if (Number.isNaN(start) || Number.isNaN(end) || end <= start) throw new Refusal(400, 'INVALID_REQUEST', 'INVALID_REQUEST', 'start_date and end_date are required, start before end')
      if (end - start > 31 * 24 * 3600 * 1000) throw new Refusal(400, 'INVALID_REQUEST', 'INVALID_REQUEST', 'Date range is greater than 31 days')
      const pageSize = Math.min(500, Math.max(1, Number(query.page_size ?? '100') || 100))
      const page = Math.max(1, Number(query.page ?? '1') || 1)
      const rows: unknown[] = []
      const within = (iso: string): boolean => { const t = Date.parse(iso); return t >= start && t <= end }
      for (const c of this.captures) {
        if (within(c.createTime)) {
          rows.push({ transaction_info: { transaction_id: c.id, transaction_event_code: 'T0006', transaction_initiation_date: c.createTime, transaction_updated_date: c.createTime, transaction_amount: { currency_code: c.currency, value: c.value }, transaction_status: c.status === 'PENDING' ? 'P' : c.status === 'DECLINED' ? 'D' : 'S', invoice_id: c.invoiceId, custom_field: c.customId } })
        }
        for (const r of c.refunds) {
          if (within(r.createTime)) rows.push({ transaction_info: { transaction_id: r.id, paypal_reference_id: c.id, paypal_reference_id_type: 'TXN', transaction_event_code: r.kind === 'reversal' ? 'T1106' : 'T1107', transaction_initiation_date: r.createTime, transaction_updated_date: r.createTime, transaction_amount: { currency_code: r.currency, value: decimal(-r.amountCents) }, transaction_status: 'S', invoice_id: c.invoiceId, custom_field: c.customId } })
        }
      }
      const totalPages = Math.ceil(rows.length / pageSize)
      return {
        status: 200,
        body: { transaction_details: rows.slice((page - 1) * pageSize, page * pageSize), account_number: 'SANDBOXMERCHANT', start_date: query.start_date, end_date: query.end_date, last_refreshed_datetime: this.now().toISOString(), page, total_items: rows.length, total_pages: totalPages, links: [] }
      }
    }))

    // The approval page PayPal's payer-action link opens: server-rendered, plain forms, no JavaScript.
    app.get('/checkoutnow', async (request, reply) => {
      const order = this.orders.get(String((request.query as any).token ?? ''))
      if (order === undefined || (order.status !== 'PAYER_ACTION_REQUIRED' && order.status !== 'CREATED')) {
        return reply.code(400).type('text/html; charset=utf-8').send('<!doctype html><html lang="en"><title>PayPal sandbox</title><h1>PayPal sandbox: this order cannot be approved</h1></html>')
      }
      const rows = order.items.map(i => `<tr><td>${escape(i.name)}</td><td style="text-align:right">$${decimal(i.unitCents)}</td></tr>`).join('')
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>PayPal sandbox checkout</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}table{width:100%;border-collapse:collapse}td,th{padding:.4rem;border-bottom:1px solid #ccc;text-align:left}.note{background:#fff4d6;padding:.5rem 1rem;border-left:4px solid #b7791f}button{font:inherit;padding:.6rem 1.2rem;margin:.25rem .5rem .25rem 0;min-height:44px}</style></head>
<body><main><h1>PayPal sandbox: pay ${escape(order.brandName)}</h1>
<p class="note">The demo's stand-in for PayPal's approval page. No account is needed: choose what the payment should do.</p>
<table><thead><tr><th scope="col">Item</th><th scope="col" style="text-align:right">Amount</th></tr></thead><tbody>${rows}</tbody>
<tfoot><tr><th scope="row">Total</th><td style="text-align:right"><strong>$${decimal(order.amountCents)} ${escape(order.currency)}</strong></td></tr></tfoot></table>
<form method="post" action="/checkoutnow/decide"><input type="hidden" name="token" value="${escape(order.id)}">
<p><button type="submit" name="action" value="approve">Approve and pay $${decimal(order.amountCents)}</button><button type="submit" name="action" value="decline">Approve with a card that will be declined</button><button type="submit" name="action" value="cancel">Cancel and return</button></p>
</form></main></body></html>`)
    })

    app.post('/checkoutnow/decide', async (request, reply) => {
      const form = (request.body ?? {}) as Record<string, string>
      const order = this.orders.get(String(form.token ?? ''))
      const action = String(form.action ?? '')
      if (order === undefined || (order.status !== 'PAYER_ACTION_REQUIRED' && order.status !== 'CREATED') || !['approve', 'decline', 'cancel'].includes(action)) {
        return reply.code(400).type('text/html; charset=utf-8').send('<!doctype html><html lang="en"><title>PayPal sandbox</title><h1>PayPal sandbox: this approval is over</h1></html>')
      }
      if (action === 'cancel') {
        const url = new URL(order.cancelUrl)
        url.searchParams.set('token', order.id)
        return reply.redirect(url.toString(), 303)
      }
      order.status = 'APPROVED'
      order.declining = action === 'decline'
      await this.#emit('CHECKOUT.ORDER.APPROVED', this.#orderResource(order))
      const url = new URL(order.returnUrl)
      url.searchParams.set('token', order.id)
      url.searchParams.set('PayerID', 'SANDBOXPAYER1')
      return reply.redirect(url.toString(), 303)
    })

    // The merchant's view, for the demo: captures with a Refund button (PayPal's dashboard does this).
    app.get('/sandbox/captures', async (_request, reply) => {
      const rows = this.captures.map(c => `<tr><td>${escape(c.id)}</td><td>${escape(c.invoiceId)}</td><td style="text-align:right">${escape(c.value)} ${escape(c.currency)}</td><td>${escape(c.status)}</td><td>${c.status === 'COMPLETED' ? `<form method="post" action="/sandbox/captures/${escape(c.id)}/refund"><button type="submit">Refund</button></form>` : ''}</td></tr>`).join('')
      return reply.type('text/html; charset=utf-8').send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>PayPal sandbox: captures</title></head><body><main><h1>PayPal sandbox: captures</h1>
<table><thead><tr><th scope="col">Capture</th><th scope="col">Invoice (checkout)</th><th scope="col">Amount</th><th scope="col">Status</th><th scope="col">Action</th></tr></thead><tbody>${rows}</tbody></table></main></body></html>`)
    })

    app.post('/sandbox/captures/:id/refund', async (request, reply) => {
      const capture = this.captures.find(c => c.id === (request.params as any).id)
      if (capture === undefined || capture.status !== 'COMPLETED') return reply.code(400).type('text/html').send('<h1>PayPal sandbox: nothing to refund</h1>')
      await this.refund(capture.id)
      return reply.redirect('/sandbox/captures', 303)
    })
  }
}
