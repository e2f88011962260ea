// The Alma REST client: XML over undici, the API key in the Authorization header (never in a URL), every call
// through the shared rate limiter, every failure turned into a typed error and logged as one alma.call line.
// undici rather than got: a fines page makes two Alma calls, and got's request pipeline cost 0.25 ms of CPU per
// call against undici's 0.04 on the bench machine (docs/performance.md), a sixth of the page's whole cost.

import type { Logger } from 'pino'
import { Pool } from 'undici'
import { type Cents, formatDecimal } from '../money.ts'
import { AlmaBadResponse, AlmaError, AlmaUnavailable } from './errors.ts'
import { createRateLimiter, type RateLimiter } from './rate-limit.ts'
import type { AlmaUser, Fee, FeeList } from './types.ts'
import { mapFeeList, mapSingleFee, mapUser, parseErrorBody, parseXml, XmlRejected } from './xml.ts'

export interface AlmaClientOptions {
  baseUrl: string
  apiKey: string
  userIdType: string
  rateLimit: number
  timeoutMs: number
  logger: Logger
  /** told of every call (its outcome, and how long it waited for the rate limit): the service's metrics */
  onCall?: (call: AlmaCallRecord, waitedMs: number) => void
}

/** What one call looked like, for the ledger's record of a posting and for logs. */
export interface AlmaCallRecord {
  method: string
  path: string
  status: number
  errorCode: string
  errorMessage: string
  trackingId: string
  startedAt: number
  durationMs: number
}

export type AlmaCallObserver = (call: AlmaCallRecord) => void

export interface PayFeeRequest {
  userId: string
  feeId: string
  amount: Cents
  method: string
  externalTransactionId: string
  comment: string
}

type Method = 'GET' | 'POST' | 'PUT'

/** The connection pool to Alma's host and what every call sends. */
interface AlmaHttp {
  pool: Pool
  basePath: string
  headers: Record<string, string>
  timeoutMs: number
  onCall?: (call: AlmaCallRecord, waitedMs: number) => void
}

/** Another view of an existing client: its connection pool and rate limit, a different logger. */
interface AlmaClientView {
  http: AlmaHttp
  limit: RateLimiter
  userIdType: string
  logger: Logger
}

export class AlmaClient {
  readonly #http: AlmaHttp
  readonly #limit: RateLimiter
  readonly #logger: Logger
  readonly #userIdType: string

  constructor (options: AlmaClientOptions | AlmaClientView) {
    this.#logger = options.logger
    this.#userIdType = options.userIdType
    if ('http' in options) {
      this.#http = options.http
      this.#limit = options.limit
      return
    }
    const base = new URL(options.baseUrl)
    this.#http = {
      // undici never retries and never follows redirects unless asked to; idle sockets do not hold the process open
      pool: new Pool(base.origin, { keepAliveTimeout: 4_000 }),
      basePath: base.pathname.replace(/\/+$/, ''),
      headers: { authorization: `apikey ${options.apiKey}`, accept: 'application/xml' },
      timeoutMs: options.timeoutMs,
      onCall: options.onCall
    }
    this.#limit = createRateLimiter(options.rateLimit)
  }

  /**
   * The same client (one connection pool, one rate limit) logging through another logger, so each alma.call
   * line carries the request's reqId and user, or the posting's checkout and tx.
   */
  withLogger (logger: Logger): AlmaClient {
    return new AlmaClient({ http: this.#http, limit: this.#limit, userIdType: this.#userIdType, logger })
  }

  /** Closes the connection pool (shared by every view); calls in flight finish first. */
  async close (): Promise<void> {
    await this.#http.pool.close()
  }

  /** One HTTP exchange within ALMA_TIMEOUT_MS, body included; throws with a code ('TIMEOUT', 'ECONNREFUSED', ...). */
  async #exchange (method: Method, path: string, searchParams: Record<string, string>, body?: string): Promise<{ statusCode: number, headers: Record<string, string | string[] | undefined>, body: string }> {
    const { pool, basePath, headers, timeoutMs } = this.#http
    const query = new URLSearchParams(searchParams).toString()
    const abort = new AbortController()
    const timer = setTimeout(() => { abort.abort() }, timeoutMs)
    try {
      const response = await pool.request({
        method,
        path: `${basePath}/${path}${query === '' ? '' : '?' + query}`,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/xml' },
        body,
        signal: abort.signal
      })
      return { statusCode: response.statusCode, headers: response.headers, body: await response.body.text() }
    } catch (error: any) {
      if (abort.signal.aborted) throw Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'TIMEOUT' })
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  /** One rate-limited call; returns the body text of a 2xx answer, throws a typed error otherwise. */
  async #raw (method: Method, path: string, searchParams: Record<string, string>, observe?: AlmaCallObserver, body?: string): Promise<{ status: number, text: string, finish: (error?: Error) => void }> {
    const queuedAt = Date.now()
    await this.#limit()
    const startedAt = Date.now()
    const record: AlmaCallRecord = { method, path, status: 0, errorCode: '', errorMessage: '', trackingId: '', startedAt, durationMs: 0 }
    const finish = (error?: Error): void => {
      if (error !== undefined && record.errorCode === '') {
        record.errorCode = 'BAD_RESPONSE'
        record.errorMessage = error.message
      }
      record.durationMs = Date.now() - startedAt
      observe?.(record)
      this.#http.onCall?.(record, startedAt - queuedAt)
      const failed = record.status === 0 || record.status >= 300 || error !== undefined
      this.#logger[failed ? 'warn' : 'info']({
        event: 'alma.call',
        alma: { method, path, status: record.status, errorCode: record.errorCode || undefined, trackingId: record.trackingId || undefined, ms: record.durationMs }
      }, record.status === 0 ? `Alma ${method} ${path} got no answer (${record.errorCode})` : `Alma ${method} ${path} ${record.status}${record.errorCode !== '' ? ' ' + record.errorCode : ''}`)
    }
    let response
    try {
      response = await this.#exchange(method, path, searchParams, body)
    } catch (error: any) {
      const reason = String(error?.code ?? error?.name ?? 'ERROR')
      record.errorCode = reason
      record.errorMessage = String(error?.message ?? '')
      finish()
      throw new AlmaUnavailable(reason)
    }
    record.status = response.statusCode
    const text = String(response.body ?? '')
    if (response.statusCode >= 200 && response.statusCode < 300) return { status: response.statusCode, text, finish }
    const parsed = parseErrorBody(text)
    record.errorCode = parsed?.errorCode ?? ''
    record.errorMessage = parsed?.errorMessage ?? text.slice(0, 200)
    record.trackingId = parsed?.trackingId ?? ''
    finish()
    const retryAfter = Number(response.headers['retry-after'])
    throw new AlmaError(
      response.statusCode,
      record.errorCode,
      record.errorMessage,
      record.trackingId,
      response.statusCode === 429 || response.statusCode >= 500,
      Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined
    )
  }

  /** A call whose 2xx answer is an XML document. */
  async #call (method: Method, path: string, searchParams: Record<string, string>, observe?: AlmaCallObserver, body?: string): Promise<Record<string, any>> {
    const { status, text, finish } = await this.#raw(method, path, searchParams, observe, body)
    try {
      const doc = parseXml(text)
      finish()
      return doc
    } catch (error) {
      finish(error as Error)
      throw new AlmaBadResponse(status, (error as Error).message)
    }
  }

  #userPath (userId: string): string {
    return `users/${encodeURIComponent(userId)}`
  }

  /** The user as the patron identified themself (EZproxy username, looked up by ALMA_USER_ID_TYPE). */
  async getUser (userId: string, options: { expandFees?: boolean, byPrimaryId?: boolean, observe?: AlmaCallObserver } = {}): Promise<AlmaUser> {
    // Alma's brief view (core fields, emails, identifiers) has all the pages and checkout use: less for Alma to
    // assemble and for us to read. Blocks are not in it; block release reads the full record (getUserXml).
    const params: Record<string, string> = { view: 'brief', ...(options.expandFees === true ? { expand: 'fees' } : {}) }
    const doc = await this.#call('GET', this.#userPath(userId), this.#userParams(options.byPrimaryId, params), options.observe)
    return mapXml(() => mapUser(doc))
  }

  /** The raw user document (with the fee balance), for the GET-modify-PUT of block release: PUT is swap-all. */
  async getUserXml (primaryId: string, observe?: AlmaCallObserver): Promise<string> {
    const { text, finish } = await this.#raw('GET', this.#userPath(primaryId), { expand: 'fees' }, observe)
    finish()
    return text
  }

  async putUserXml (primaryId: string, xml: string, observe?: AlmaCallObserver): Promise<AlmaUser> {
    const doc = await this.#call('PUT', this.#userPath(primaryId), {}, observe, xml)
    return mapXml(() => mapUser(doc))
  }

  async listActiveFees (userId: string, options: { byPrimaryId?: boolean, observe?: AlmaCallObserver } = {}): Promise<FeeList> {
    const doc = await this.#call('GET', `${this.#userPath(userId)}/fees`, this.#userParams(options.byPrimaryId, { status: 'ACTIVE' }), options.observe)
    return mapXml(() => mapFeeList(doc))
  }

  async getFee (primaryId: string, feeId: string, observe?: AlmaCallObserver): Promise<Fee> {
    const doc = await this.#call('GET', `${this.#userPath(primaryId)}/fees/${encodeURIComponent(feeId)}`, {}, observe)
    return mapXml(() => mapSingleFee(doc))
  }

  async payFee (request: PayFeeRequest, observe?: AlmaCallObserver): Promise<Fee> {
    const doc = await this.#call('POST', `${this.#userPath(request.userId)}/fees/${encodeURIComponent(request.feeId)}`, {
      op: 'pay',
      amount: formatDecimal(request.amount),
      method: request.method,
      external_transaction_id: request.externalTransactionId,
      comment: request.comment
    }, observe)
    return mapXml(() => mapSingleFee(doc))
  }

  /** One page of an Analytics report: the first with the report path, later ones with the resumption token. */
  async analyticsReportPage (page: { path: string } | { token: string }, limit: number, observe?: AlmaCallObserver): Promise<Record<string, any>> {
    const params: Record<string, string> = { limit: String(limit), col_names: 'true' }
    if ('path' in page) params.path = page.path
    else params.token = page.token
    return await this.#call('GET', 'analytics/reports', params, observe)
  }

  #userParams (byPrimaryId: boolean | undefined, extra: Record<string, string>): Record<string, string> {
    return byPrimaryId === true ? extra : { user_id_type: this.#userIdType, ...extra }
  }
}

function mapXml<T> (map: () => T): T {
  try {
    return map()
  } catch (error) {
    if (error instanceof XmlRejected) throw new AlmaBadResponse(200, error.message)
    throw error
  }
}
