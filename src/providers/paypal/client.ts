// The PayPal REST client (Orders v2, webhook verification, Transaction Search) over got. One OAuth token is
// shared and renewed shortly before it expires; every answer is read strictly into typed values, every failure
// becomes a PayPalError with PayPal's debug_id. It never retries on its own: callers own retries, and a capture
// retried after UNAVAILABLE must reuse its PayPal-Request-Id so that PayPal answers it instead of charging again.

import got, { type Got, type Response } from 'got'
import type { Logger } from 'pino'
import { type Cents, InvalidAmount, sumCents } from '../../money.ts'
import { assertSupportedCurrency, parsePayPalMoney, payPalMoney } from './amount.ts'
import { PayPalError, type PayPalErrorKind } from './errors.ts'

export interface PayPalClientOptions {
  /** https://api-m.paypal.com, https://api-m.sandbox.paypal.com, or the stand-in */
  baseUrl: string
  clientId: string
  clientSecret: string
  /** each HTTP exchange, body included */
  timeoutMs: number
  /** Transaction Search page size (PayPal allows 1 to 500) */
  searchPageSize?: number
  logger?: Logger
}

/** What an order is created from: a subset of the ledger's Checkout, so a checkout can be passed as it is. */
export interface OrderCheckout {
  id: string
  currency: string
  lines: ReadonlyArray<{ feeId: string, amount: Cents, feeTypeDesc?: string, title?: string }>
}

/** Where PayPal sends the browser back, and what its page says. */
export interface OrderExperience {
  returnUrl: string
  cancelUrl: string
  brandName: string
}

export const ORDER_STATUSES = ['CREATED', 'SAVED', 'APPROVED', 'VOIDED', 'COMPLETED', 'PAYER_ACTION_REQUIRED'] as const
export type OrderStatus = typeof ORDER_STATUSES[number]
export const CAPTURE_STATUSES = ['COMPLETED', 'DECLINED', 'PARTIALLY_REFUNDED', 'PENDING', 'REFUNDED', 'FAILED', 'VOIDED'] as const
export type CaptureStatus = typeof CAPTURE_STATUSES[number]

export interface PayPalCapture {
  /** the capture id: the transaction id sent to Alma as external_transaction_id */
  id: string
  status: CaptureStatus
  /** status_details.reason, e.g. PENDING_REVIEW; '' when PayPal gave none */
  statusReason: string
  /** what was collected */
  amount: Cents
  currency: string
  /** our checkout id, as we sent it (custom_id and invoice_id) */
  customId: string | null
  invoiceId: string | null
}

export interface PayPalOrder {
  id: string
  status: OrderStatus
  /** the link the browser goes to (rel payer-action, or approve); null once there is nothing to approve */
  approveUrl: string | null
  customId: string | null
  invoiceId: string | null
  /** the purchase unit's amount, when PayPal returned it */
  amount: Cents | null
  currency: string | null
  /** the order's capture (the first one: an order from createOrder has one purchase unit, captured once) */
  capture: PayPalCapture | null
  /** debug_id of the answer, for the log line of a success too */
  debugId: string
}

export interface CapturedOrder extends PayPalOrder {
  capture: PayPalCapture
}

export type WebhookHeaders = Record<string, string | string[] | undefined>

export type WebhookVerification =
  | { verified: true }
  | { verified: false, reason: string }

export interface PayPalTransaction {
  transactionId: string
  /** PayPal's T-code: T0006 a checkout payment, T1107 a refund, ... */
  eventCode: string
  /** S success, P pending, V reversed, D denied, F partially refunded */
  status: string
  /** signed: a refund is negative */
  amount: Cents
  currency: string
  invoiceId: string | null
  customId: string | null
  /** for a refund, the transaction it refunds */
  referenceId: string | null
  initiatedAt: string
  updatedAt: string | null
}

export const WEBHOOK_HEADERS = ['paypal-auth-algo', 'paypal-cert-url', 'paypal-transmission-id', 'paypal-transmission-sig', 'paypal-transmission-time'] as const

/** PayPal's Transaction Search refuses ranges longer than this. */
export const SEARCH_WINDOW_MS = 31 * 24 * 3600 * 1000
/** A token is renewed this long before PayPal says it expires (at most a tenth of its life). */
const TOKEN_MARGIN_MS = 5 * 60 * 1000

interface Token { value: string, renewAt: number }

interface Answer { status: number, body: unknown, debugId: string }

interface CallOptions {
  json?: unknown
  requestId?: string
  searchParams?: Record<string, string>
}

export class PayPalClient {
  readonly #http: Got
  readonly #options: PayPalClientOptions
  readonly #base: string
  readonly #logger: Logger | undefined
  readonly #shared: { token: Token | null, pending: Promise<Token> | null }

  constructor (options: PayPalClientOptions, shared?: { token: Token | null, pending: Promise<Token> | null }) {
    this.#options = options
    this.#base = options.baseUrl.replace(/\/+$/, '')
    this.#logger = options.logger
    this.#shared = shared ?? { token: null, pending: null }
    this.#http = got.extend({
      timeout: { request: options.timeoutMs },
      retry: { limit: 0 },
      throwHttpErrors: false,
      followRedirect: false,
      responseType: 'text'
    })
  }

  /** The same client and token cache, logging through another logger (a request's, with its reqId). */
  withLogger (logger: Logger): PayPalClient {
    return new PayPalClient({ ...this.#options, logger }, this.#shared)
  }

  /**
   * POST /v2/checkout/orders: intent CAPTURE, one purchase unit for the checkout, one item per fee (sku = fee id),
   * PayPal-Request-Id = checkout id (creating twice gives the same order). Answers the order with its approval link.
   */
  async createOrder (checkout: OrderCheckout, experience: OrderExperience): Promise<PayPalOrder> {
    assertSupportedCurrency(checkout.currency)
    if (checkout.lines.length === 0) throw new RangeError(`checkout ${checkout.id} has no lines`)
    for (const line of checkout.lines) {
      if (!Number.isSafeInteger(line.amount) || line.amount <= 0) throw new RangeError(`checkout ${checkout.id}: fee ${line.feeId} amount ${line.amount} is not a positive number of cents`)
    }
    const total = sumCents(checkout.lines.map(l => l.amount))
    const money = (amount: Cents): { currency_code: string, value: string } => payPalMoney(amount, checkout.currency)
    const body = {
      intent: 'CAPTURE',
      purchase_units: [{
        reference_id: checkout.id,
        custom_id: checkout.id,
        invoice_id: checkout.id,
        description: clip(`${experience.brandName}: fines and fees`),
        amount: { ...money(total), breakdown: { item_total: money(total) } },
        items: checkout.lines.map(line => ({
          name: clip(itemName(line)),
          sku: line.feeId,
          quantity: '1',
          unit_amount: money(line.amount),
          category: 'DIGITAL_GOODS'
        }))
      }],
      payment_source: {
        paypal: {
          experience_context: {
            return_url: experience.returnUrl,
            cancel_url: experience.cancelUrl,
            brand_name: clip(experience.brandName),
            user_action: 'PAY_NOW',
            shipping_preference: 'NO_SHIPPING'
          }
        }
      }
    }
    const answer = await this.#call('createOrder', 'POST', '/v2/checkout/orders', { json: body, requestId: checkout.id })
    const order = readOrder('createOrder', answer)
    if (order.amount !== null && (order.amount !== total || order.currency !== checkout.currency)) {
      throw new PayPalError('BAD_RESPONSE', 'createOrder', answer.status, 'AMOUNT_CHANGED', answer.debugId, `order ${order.id} is for ${String(order.amount)} ${String(order.currency)} cents, checkout ${checkout.id} for ${total} ${checkout.currency}`)
    }
    if (order.approveUrl === null && (order.status === 'CREATED' || order.status === 'PAYER_ACTION_REQUIRED')) {
      throw new PayPalError('BAD_RESPONSE', 'createOrder', answer.status, 'NO_APPROVAL_LINK', answer.debugId, `order ${order.id} has no payer-action or approve link`)
    }
    return order
  }

  /**
   * POST /v2/checkout/orders/{id}/capture with its own PayPal-Request-Id. Reuse the same requestId when retrying
   * after UNAVAILABLE: PayPal then answers the first capture instead of making a second.
   */
  async captureOrder (orderId: string, requestId: string): Promise<CapturedOrder> {
    const answer = await this.#call('captureOrder', 'POST', `/v2/checkout/orders/${encodeURIComponent(orderId)}/capture`, { json: {}, requestId })
    const order = readOrder('captureOrder', answer)
    if (order.id !== orderId) throw new PayPalError('BAD_RESPONSE', 'captureOrder', answer.status, 'ORDER_ID_CHANGED', answer.debugId, `asked to capture ${orderId}, answered ${order.id}`)
    if (order.capture === null) throw new PayPalError('BAD_RESPONSE', 'captureOrder', answer.status, 'NO_CAPTURE', answer.debugId, `order ${orderId} answered ${order.status} without a capture`)
    return order as CapturedOrder
  }

  /** GET /v2/checkout/orders/{id}: the order and, once captured, its capture (after ORDER_ALREADY_CAPTURED). */
  async getOrder (orderId: string): Promise<PayPalOrder> {
    const answer = await this.#call('getOrder', 'GET', `/v2/checkout/orders/${encodeURIComponent(orderId)}`)
    const order = readOrder('getOrder', answer)
    if (order.id !== orderId) throw new PayPalError('BAD_RESPONSE', 'getOrder', answer.status, 'ORDER_ID_CHANGED', answer.debugId, `asked for ${orderId}, answered ${order.id}`)
    return order
  }

  /** GET /v2/payments/captures/{id}: a capture's current status (a review whose webhook never came). */
  async getCapture (captureId: string): Promise<PayPalCapture> {
    const answer = await this.#call('getCapture', 'GET', `/v2/payments/captures/${encodeURIComponent(captureId)}`)
    const capture = readCapture('getCapture', answer, answer.body)
    if (capture.id !== captureId) throw new PayPalError('BAD_RESPONSE', 'getCapture', answer.status, 'CAPTURE_ID_CHANGED', answer.debugId, `asked for ${captureId}, answered ${capture.id}`)
    return capture
  }

  /**
   * POST /v1/notifications/verify-webhook-signature with the transmission headers and the event as received
   * (parsed from the raw body). Verified only when PayPal answers SUCCESS; missing headers or a body that is not
   * JSON are refused without asking. Throws UNAVAILABLE when PayPal cannot say (answer 5xx so PayPal redelivers).
   */
  async verifyWebhookSignature (headers: WebhookHeaders, rawBody: string | Buffer, webhookId: string): Promise<WebhookVerification> {
    const values: Record<string, string> = {}
    for (const name of WEBHOOK_HEADERS) {
      const value = headers[name]
      if (typeof value !== 'string' || value.trim() === '') return { verified: false, reason: `header ${name} missing` }
      values[name] = value
    }
    if (webhookId === '') return { verified: false, reason: 'no webhook id configured' }
    let event: unknown
    try {
      event = JSON.parse(typeof rawBody === 'string' ? rawBody : rawBody.toString('utf8'))
    } catch {
      return { verified: false, reason: 'body is not JSON' }
    }
    if (typeof event !== 'object' || event === null || Array.isArray(event)) return { verified: false, reason: 'body is not a JSON object' }
    let answer: Answer
    try {
      answer = await this.#call('verifyWebhookSignature', 'POST', '/v1/notifications/verify-webhook-signature', {
        json: {
          auth_algo: values['paypal-auth-algo'],
          cert_url: values['paypal-cert-url'],
          transmission_id: values['paypal-transmission-id'],
          transmission_sig: values['paypal-transmission-sig'],
          transmission_time: values['paypal-transmission-time'],
          webhook_id: webhookId,
          webhook_event: event
        }
      })
    } catch (error) {
      // PayPal refusing the request itself (400 VALIDATION_ERROR for a malformed header) is a verdict, not an outage
      if (error instanceof PayPalError && error.kind === 'REJECTED') return { verified: false, reason: `PayPal refused the verification request: ${error.issue}` }
      throw error
    }
    const status = field(answer.body, 'verification_status')
    if (status === 'SUCCESS') return { verified: true }
    if (status === 'FAILURE') return { verified: false, reason: 'PayPal answered FAILURE' }
    throw new PayPalError('BAD_RESPONSE', 'verifyWebhookSignature', answer.status, 'NO_VERIFICATION_STATUS', answer.debugId, `verification_status ${JSON.stringify(status)}`)
  }

  /**
   * GET /v1/reporting/transactions from start to end, every page; ranges longer than 31 days are asked in
   * consecutive windows. A transaction at a window's edge is listed once.
   */
  async searchTransactions (start: Date, end: Date): Promise<PayPalTransaction[]> {
    if (!(start.getTime() < end.getTime())) throw new RangeError('searchTransactions: start must be before end')
    const pageSize = this.#options.searchPageSize ?? 500
    const seen = new Set<string>()
    const out: PayPalTransaction[] = []
    for (let from = start.getTime(); from < end.getTime(); from += SEARCH_WINDOW_MS) {
      const to = Math.min(from + SEARCH_WINDOW_MS, end.getTime())
      for (let page = 1, pages = 1; page <= pages; page++) {
        const answer = await this.#call('searchTransactions', 'GET', '/v1/reporting/transactions', {
          searchParams: { start_date: payPalTime(from), end_date: payPalTime(to), fields: 'transaction_info', page_size: String(pageSize), page: String(page) }
        })
        const body = answer.body as Record<string, unknown>
        const totalPages = body.total_pages
        if (!Number.isSafeInteger(totalPages) || (totalPages as number) < 0) throw bad('searchTransactions', answer, 'total_pages missing')
        pages = totalPages as number
        const details = body.transaction_details
        if (!Array.isArray(details)) throw bad('searchTransactions', answer, 'transaction_details missing')
        for (const detail of details) {
          const transaction = readTransaction(answer, detail)
          if (seen.has(transaction.transactionId)) continue
          seen.add(transaction.transactionId)
          out.push(transaction)
        }
      }
    }
    return out
  }

  async #token (): Promise<Token> {
    const shared = this.#shared
    if (shared.token !== null && Date.now() < shared.token.renewAt) return shared.token
    // concurrent callers wait for the same token request
    shared.pending ??= this.#fetchToken().finally(() => { shared.pending = null })
    return await shared.pending
  }

  async #fetchToken (): Promise<Token> {
    const started = Date.now()
    const basic = Buffer.from(`${this.#options.clientId}:${this.#options.clientSecret}`).toString('base64')
    let response: Response<string>
    try {
      response = await this.#http.post(`${this.#base}/v1/oauth2/token`, {
        headers: { authorization: `Basic ${basic}`, accept: 'application/json' },
        form: { grant_type: 'client_credentials' }
      })
    } catch (error: any) {
      throw this.#log(new PayPalError('UNAVAILABLE', 'token', 0, String(error?.code ?? 'ERROR'), '', String(error?.message ?? '')), 'POST', '/v1/oauth2/token', started)
    }
    const answer = readAnswer(response)
    if (response.statusCode !== 200) throw this.#log(errorFor('token', answer), 'POST', '/v1/oauth2/token', started)
    const value = field(answer.body, 'access_token')
    const expiresIn = field(answer.body, 'expires_in')
    if (typeof value !== 'string' || value === '' || typeof expiresIn !== 'number' || !(expiresIn > 0)) {
      throw this.#log(bad('token', answer, 'access_token or expires_in missing'), 'POST', '/v1/oauth2/token', started)
    }
    const lifeMs = expiresIn * 1000
    const token = { value, renewAt: started + lifeMs - Math.min(TOKEN_MARGIN_MS, lifeMs / 10) }
    this.#shared.token = token
    this.#logCall('POST', '/v1/oauth2/token', response.statusCode, answer.debugId, '', started)
    return token
  }

  async #call (operation: string, method: 'GET' | 'POST', path: string, options: CallOptions = {}): Promise<Answer> {
    let renewed = false
    for (;;) {
      const token = await this.#token()
      const started = Date.now()
      let response: Response<string>
      try {
        response = await this.#http(`${this.#base}${path}`, {
          method,
          searchParams: options.searchParams,
          headers: {
            authorization: `Bearer ${token.value}`,
            accept: 'application/json',
            prefer: 'return=representation',
            ...(options.requestId !== undefined ? { 'paypal-request-id': options.requestId } : {})
          },
          ...(options.json !== undefined ? { json: options.json } : {})
        })
      } catch (error: any) {
        throw this.#log(new PayPalError('UNAVAILABLE', operation, 0, String(error?.code ?? 'ERROR'), '', String(error?.message ?? '')), method, path, started)
      }
      const answer = readAnswer(response)
      if (response.statusCode === 401 && !renewed) {
        // the token expired or was revoked early: forget it (unless another call already did) and ask once more
        if (this.#shared.token === token) this.#shared.token = null
        renewed = true
        this.#logCall(method, path, 401, answer.debugId, 'token refused, renewing', started)
        continue
      }
      if (response.statusCode < 200 || response.statusCode > 299) throw this.#log(errorFor(operation, answer), method, path, started)
      if (typeof answer.body !== 'object' || answer.body === null || Array.isArray(answer.body)) {
        throw this.#log(bad(operation, answer, 'body is not a JSON object'), method, path, started)
      }
      this.#logCall(method, path, response.statusCode, answer.debugId, '', started)
      return answer
    }
  }

  #log (error: PayPalError, method: string, path: string, started: number): PayPalError {
    this.#logger?.warn({
      event: 'paypal.call',
      paypal: { method, path: logPath(path), status: error.status, kind: error.kind, issue: error.issue || undefined, debugId: error.debugId || undefined, ms: Date.now() - started }
    }, `PayPal ${method} ${logPath(path)}: ${error.message}`)
    return error
  }

  #logCall (method: string, path: string, status: number, debugId: string, note: string, started: number): void {
    this.#logger?.debug({
      event: 'paypal.call',
      paypal: { method, path: logPath(path), status, debugId: debugId || undefined, ms: Date.now() - started }
    }, `PayPal ${method} ${logPath(path)} ${status}${note !== '' ? ': ' + note : ''}`)
  }
}

function logPath (path: string): string {
  return path.split('?')[0]
}

function clip (text: string): string {
  return text.length <= 127 ? text : text.slice(0, 126) + '…'
}

function itemName (line: { feeId: string, feeTypeDesc?: string, title?: string }): string {
  const kind = line.feeTypeDesc !== undefined && line.feeTypeDesc !== '' ? line.feeTypeDesc : 'Library fee'
  return line.title !== undefined && line.title !== '' ? `${kind}: ${line.title}` : kind
}

/** "2026-01-31T00:00:00Z": PayPal's ISO 8601 without milliseconds. */
function payPalTime (ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

function field (body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined
}

function readAnswer (response: Response<string>): Answer {
  let body: unknown
  try {
    body = response.body === '' ? {} : JSON.parse(response.body)
  } catch {
    body = undefined
  }
  const header = response.headers['paypal-debug-id']
  const fromBody = field(body, 'debug_id')
  const debugId = typeof fromBody === 'string' ? fromBody : typeof header === 'string' ? header : ''
  return { status: response.statusCode, body, debugId }
}

function bad (operation: string, answer: Answer, detail: string): PayPalError {
  return new PayPalError('BAD_RESPONSE', operation, answer.status, '', answer.debugId, detail)
}

/** A non-2xx answer as a PayPalError: its kind from the status and PayPal's issue. */
function errorFor (operation: string, answer: Answer): PayPalError {
  const details = field(answer.body, 'details')
  const first = Array.isArray(details) ? details[0] : undefined
  const issue = [field(first, 'issue'), field(answer.body, 'name'), field(answer.body, 'error')].find((v): v is string => typeof v === 'string' && v !== '') ?? ''
  const description = [field(first, 'description'), field(answer.body, 'message'), field(answer.body, 'error_description')].find((v): v is string => typeof v === 'string') ?? ''
  const status = answer.status
  let kind: PayPalErrorKind
  if (status >= 500 || status === 429 || status === 408) kind = 'UNAVAILABLE'
  else if (status === 401 || status === 403) kind = 'UNAUTHORIZED'
  else if (status === 404) kind = 'NOT_FOUND'
  else if (issue === 'INSTRUMENT_DECLINED') kind = 'INSTRUMENT_DECLINED'
  else if (issue === 'ORDER_ALREADY_CAPTURED') kind = 'ORDER_ALREADY_CAPTURED'
  else if (status >= 400) kind = 'REJECTED'
  else kind = 'BAD_RESPONSE' // 1xx or 3xx: not an answer this client can use
  return new PayPalError(kind, operation, status, issue, answer.debugId, description)
}

function text (value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null
}

function money (operation: string, answer: Answer, value: unknown, what: string, allowNegative = false): { value: Cents, currency: string } {
  try {
    return parsePayPalMoney(value, { allowNegative })
  } catch (error) {
    if (error instanceof InvalidAmount) throw bad(operation, answer, `${what}: ${error.message}`)
    throw error
  }
}

function readCapture (operation: string, answer: Answer, raw: unknown): PayPalCapture {
  const id = text(field(raw, 'id'))
  if (id === null) throw bad(operation, answer, 'capture without id')
  const status = field(raw, 'status')
  if (!(CAPTURE_STATUSES as readonly unknown[]).includes(status)) throw bad(operation, answer, `capture ${id} status ${JSON.stringify(status)}`)
  const amount = money(operation, answer, field(raw, 'amount'), `capture ${id} amount`)
  return {
    id,
    status: status as CaptureStatus,
    statusReason: text(field(field(raw, 'status_details'), 'reason')) ?? '',
    amount: amount.value,
    currency: amount.currency,
    customId: text(field(raw, 'custom_id')),
    invoiceId: text(field(raw, 'invoice_id'))
  }
}

function readOrder (operation: string, answer: Answer): PayPalOrder {
  const body = answer.body
  const id = text(field(body, 'id'))
  if (id === null) throw bad(operation, answer, 'order without id')
  const status = field(body, 'status')
  if (!(ORDER_STATUSES as readonly unknown[]).includes(status)) throw bad(operation, answer, `order ${id} status ${JSON.stringify(status)}`)
  const links = field(body, 'links')
  let approveUrl: string | null = null
  if (Array.isArray(links)) {
    const link = links.find(l => field(l, 'rel') === 'payer-action') ?? links.find(l => field(l, 'rel') === 'approve')
    approveUrl = text(field(link, 'href'))
  }
  const units = field(body, 'purchase_units')
  if (units !== undefined && (!Array.isArray(units) || units.length !== 1)) throw bad(operation, answer, `order ${id} has ${Array.isArray(units) ? units.length : 'no'} purchase units, expected one`)
  const unit = Array.isArray(units) ? units[0] : undefined
  const unitAmount = field(unit, 'amount')
  const amount = unitAmount === undefined ? null : money(operation, answer, unitAmount, `order ${id} amount`)
  const captures = field(field(unit, 'payments'), 'captures')
  if (captures !== undefined && !Array.isArray(captures)) throw bad(operation, answer, `order ${id} captures is not a list`)
  const capture = Array.isArray(captures) && captures.length > 0 ? readCapture(operation, answer, captures[0]) : null
  if (capture !== null && amount !== null && capture.currency !== amount.currency) {
    throw bad(operation, answer, `order ${id} is in ${amount.currency}, its capture in ${capture.currency}`)
  }
  return {
    id,
    status: status as OrderStatus,
    approveUrl,
    customId: text(field(unit, 'custom_id')) ?? capture?.customId ?? null,
    invoiceId: text(field(unit, 'invoice_id')) ?? capture?.invoiceId ?? null,
    amount: amount?.value ?? null,
    currency: amount?.currency ?? capture?.currency ?? null,
    capture,
    debugId: answer.debugId
  }
}

function readTransaction (answer: Answer, detail: unknown): PayPalTransaction {
  const info = field(detail, 'transaction_info')
  const id = text(field(info, 'transaction_id'))
  if (id === null) throw bad('searchTransactions', answer, 'transaction without transaction_id')
  const amount = money('searchTransactions', answer, field(info, 'transaction_amount'), `transaction ${id} amount`, true)
  const initiatedAt = text(field(info, 'transaction_initiation_date'))
  if (initiatedAt === null || Number.isNaN(Date.parse(initiatedAt))) throw bad('searchTransactions', answer, `transaction ${id} without a valid transaction_initiation_date`)
  return {
    transactionId: id,
    eventCode: text(field(info, 'transaction_event_code')) ?? '',
    status: text(field(info, 'transaction_status')) ?? '',
    amount: amount.value,
    currency: amount.currency,
    invoiceId: text(field(info, 'invoice_id')),
    customId: text(field(info, 'custom_field')),
    referenceId: text(field(info, 'paypal_reference_id')),
    initiatedAt,
    updatedAt: text(field(info, 'transaction_updated_date'))
  }
}
