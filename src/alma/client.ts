// The Alma REST client: XML over got, the API key in the Authorization header (never in a URL), every call
// through the shared rate limit, every failure turned into a typed error and logged as one alma.call line.
//
// One got instance per client (one Alma base URL), shared by every view of it (withLogger): a keep-alive agent
// with a bounded pool, ALMA_TIMEOUT_MS over the whole exchange, no redirects, no retries (the posting worker
// owns them: it must look at Alma's record before paying again), no decompression (the size cap counts what
// we read), and answers larger than ALMA_MAX_RESPONSE_BYTES refused while they arrive.

import got, { CancelError, type Got, type Response, TimeoutError } from 'got'
import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import type { Logger } from 'pino'
import { type Cents, formatDecimal } from '../money.ts'
import { AlmaBadResponse, AlmaError, AlmaResponseTooLarge, AlmaUnavailable } from './errors.ts'
import { createRateLimiter, type RateLimiter, type RateSlot, type ReserveCall } from './rate-limit.ts'
import type { AlmaUser, Fee, FeeList } from './types.ts'
import { mapFeeList, mapSingleFee, mapUser, parseErrorBody, parseXml, XmlRejected } from './xml.ts'

/** ALMA_MAX_RESPONSE_BYTES' default: Alma's largest documents we read (an Analytics page of 1,000 rows) are under 1 MB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024

export interface AlmaClientOptions {
  baseUrl: string
  apiKey: string
  userIdType: string
  rateLimit: number
  timeoutMs: number
  /** ALMA_MAX_RESPONSE_BYTES: a larger answer is refused (AlmaResponseTooLarge) and its connection dropped */
  maxResponseBytes?: number
  logger: Logger
  /** the ALMA_RATE_LIMIT budget shared by every process (SPEC 11); without it the budget is this process's */
  reserve?: ReserveCall
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

/** One call's state, shared with the got hooks through `context`. */
interface CallState {
  slot?: RateSlot
  /** the exchange is over (a request destroyed while its hook waited for a slot must give the slot back) */
  done?: boolean
  /** when the call asked for a rate-limit slot */
  queuedAt: number
  startedAt: number
  /** the size that made us stop reading, when the answer was too large */
  tooLarge?: number
  status: number
  /** asked once the call has its slot, just before it is written; throwing refuses the call (nothing is sent) */
  guard?: SendGuard
  /** what the guard threw: the call's error, as it was thrown */
  refused?: unknown
}

/**
 * Asked just before a call is written, after its wait for a rate-limit slot (which may be long): throws to refuse
 * it. A posting checks here that its lease is still its own, so a holder that lost it while waiting pays nothing.
 */
export type SendGuard = () => Promise<void>

/** The HTTP side of a client, shared by its views: the got instance, its agents, the calls in flight. */
interface AlmaHttp {
  got: Got
  onCall?: (call: AlmaCallRecord, waitedMs: number) => void
  agents: { http: HttpAgent, https: HttpsAgent }
  maxResponseBytes: number
  timeoutMs: number
  inFlight: Set<Promise<unknown>>
}

/** Another view of an existing client: its connections and rate limit, a different logger. */
interface AlmaClientView {
  http: AlmaHttp
  userIdType: string
  logger: Logger
}

/**
 * The got instance for one Alma base URL. The rate limit is a beforeRequest hook, so the wait for a slot is
 * not part of ALMA_TIMEOUT_MS (got starts its timer when the request is created, after the hooks).
 */
function almaHttp (options: AlmaClientOptions, limit: RateLimiter): AlmaHttp {
  // A socket is held at most ALMA_TIMEOUT_MS and at most ALMA_RATE_LIMIT calls start a second, so this bound
  // never makes a call wait for a socket; it only caps what a fault could open. Idle sockets close after 4 s,
  // before Alma's side would (a socket Alma closed under a reused request is a reset, not a lost payment,
  // but it costs a retry).
  const maxSockets = options.rateLimit * (Math.ceil(options.timeoutMs / 1000) + 1)
  const agentOptions = { keepAlive: true, maxSockets, maxFreeSockets: options.rateLimit, timeout: 4_000, scheduling: 'lifo' as const }
  const agents = { http: new HttpAgent(agentOptions), https: new HttpsAgent(agentOptions) }
  const instance = got.extend({
    prefixUrl: options.baseUrl.replace(/\/+$/, ''),
    headers: { authorization: `apikey ${options.apiKey}`, accept: 'application/xml', 'user-agent': 'alma-cashnet' },
    agent: agents,
    timeout: { request: options.timeoutMs },
    retry: { limit: 0 },
    followRedirect: false,
    throwHttpErrors: false,
    decompress: false,
    responseType: 'text',
    hooks: {
      beforeRequest: [async (request) => {
        const call = request.context.call as CallState
        const slot = await limit(request.method)
        const granted = performance.now()
        if (call.done === true) {
          slot.answered()
          return
        }
        if (call.guard !== undefined) {
          try {
            await call.guard()
          } catch (error) {
            // nothing is written: the slot ages out like a call that failed
            call.refused = error
            slot.answered()
            throw error
          }
          // A shared budget counts a call at most ALMA_TIMEOUT_MS and a window from its grant (its end may never
          // be told): the time the guard took comes off this call's timeout, so Alma cannot read it after that.
          const left = options.timeoutMs - (performance.now() - granted)
          if (left < options.timeoutMs) request.timeout = { ...request.timeout, request: Math.max(1, Math.floor(left)) }
        }
        call.slot = slot
        call.startedAt = Date.now()
      }]
    }
  })
  return { got: instance, agents, maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, timeoutMs: options.timeoutMs, inFlight: new Set(), onCall: options.onCall }
}

export class AlmaClient {
  readonly #http: AlmaHttp
  readonly #logger: Logger
  readonly #userIdType: string

  constructor (options: AlmaClientOptions | AlmaClientView) {
    this.#logger = options.logger
    this.#userIdType = options.userIdType
    this.#http = 'http' in options ? options.http : almaHttp(options, createRateLimiter(options.rateLimit, {}, options.reserve))
  }

  /**
   * The same client (one connection pool, one rate limit) logging through another logger, so each alma.call
   * line carries the request's reqId and user, or the posting's checkout and tx.
   */
  withLogger (logger: Logger): AlmaClient {
    return new AlmaClient({ http: this.#http, userIdType: this.#userIdType, logger })
  }

  /** Waits for the calls in flight (shared by every view), then closes the connections. */
  async close (): Promise<void> {
    await Promise.allSettled([...this.#http.inFlight])
    this.#http.agents.http.destroy()
    this.#http.agents.https.destroy()
  }

  /**
   * One HTTP exchange: waits for a rate-limit slot (hook), stamps it when the request is written and when its
   * answer arrives (the slot's end depends on both: src/alma/rate-limit.ts), stops reading an answer that grows
   * past ALMA_MAX_RESPONSE_BYTES (announced by Content-Length or counted as it arrives).
   */
  async #exchange (call: CallState, method: Method, path: string, searchParams: Record<string, string>, body?: string): Promise<Response<string>> {
    const { got: http, maxResponseBytes } = this.#http
    const request = http<string>(path, {
      method,
      searchParams,
      ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/xml' } }),
      context: { call }
    })
    request.on('request', (outgoing) => {
      outgoing.once('finish', () => { call.slot?.sent() })
      outgoing.once('response', (response) => {
        call.status = response.statusCode ?? 0
        call.slot?.answered(true)
      })
    })
    request.on('downloadProgress', ({ transferred, total }) => {
      const size = Math.max(transferred, total ?? 0)
      if (size > maxResponseBytes && call.tooLarge === undefined) {
        call.tooLarge = size
        request.cancel()
      }
    })
    this.#http.inFlight.add(request)
    try {
      return await request
    } finally {
      this.#http.inFlight.delete(request)
      call.done = true
      call.slot?.answered()
    }
  }

  /** One rate-limited call; returns the body text of a 2xx answer, throws a typed error otherwise. */
  async #raw (method: Method, path: string, searchParams: Record<string, string>, observe?: AlmaCallObserver, body?: string, guard?: SendGuard): Promise<{ status: number, text: string, finish: (error?: Error) => void }> {
    const call: CallState = { queuedAt: Date.now(), startedAt: Date.now(), status: 0, guard }
    const record: AlmaCallRecord = { method, path, status: 0, errorCode: '', errorMessage: '', trackingId: '', startedAt: 0, durationMs: 0 }
    const finish = (error?: Error): void => {
      if (error !== undefined && record.errorCode === '') {
        record.errorCode = 'BAD_RESPONSE'
        record.errorMessage = error.message
      }
      record.startedAt = call.startedAt
      record.durationMs = Date.now() - call.startedAt
      observe?.(record)
      this.#http.onCall?.(record, call.startedAt - call.queuedAt)
      const failed = record.status === 0 || record.status >= 300 || record.errorCode !== ''
      this.#logger[failed ? 'warn' : 'info']({
        event: 'alma.call',
        alma: { method, path, status: record.status, errorCode: record.errorCode || undefined, trackingId: record.trackingId || undefined, ms: record.durationMs }
      }, record.status === 0 ? `Alma ${method} ${path} got no answer (${record.errorCode})` : `Alma ${method} ${path} ${record.status}${record.errorCode !== '' ? ' ' + record.errorCode : ''}`)
    }
    let response: Response<string>
    try {
      response = await this.#exchange(call, method, path, searchParams, body)
    } catch (error: any) {
      // refused before it was written: no Alma call to record, the guard's own error to the caller
      if (call.refused !== undefined) throw call.refused
      if (call.tooLarge !== undefined && error instanceof CancelError) {
        const tooLarge = new AlmaResponseTooLarge(call.status, this.#http.maxResponseBytes, call.tooLarge)
        record.status = call.status
        record.errorCode = tooLarge.errorCode
        record.errorMessage = tooLarge.errorMessage
        finish()
        throw tooLarge
      }
      const reason = error instanceof TimeoutError ? 'TIMEOUT' : String(error?.code ?? error?.name ?? 'ERROR')
      record.errorCode = reason
      record.errorMessage = reason === 'TIMEOUT' ? `no answer within ${this.#http.timeoutMs} ms` : String(error?.message ?? '')
      finish()
      throw new AlmaUnavailable(reason)
    }
    record.status = response.statusCode
    const text = response.body
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
  async #call (method: Method, path: string, searchParams: Record<string, string>, observe?: AlmaCallObserver, body?: string, guard?: SendGuard): Promise<Record<string, any>> {
    const { status, text, finish } = await this.#raw(method, path, searchParams, observe, body, guard)
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

  /**
   * The user as the patron identified themself (EZproxy username, looked up by ALMA_USER_ID_TYPE); `byPrimaryId`: by
   * Alma primary id (no user_id_type); `anyIdentifier`: by any unique identifier (user_id_type=all_unique), as staff type one.
   */
  async getUser (userId: string, options: { expandFees?: boolean, byPrimaryId?: boolean, anyIdentifier?: boolean, observe?: AlmaCallObserver } = {}): Promise<AlmaUser> {
    // Alma's brief view (core fields, emails, identifiers) has all the pages and checkout use: less for Alma to
    // assemble and for us to read. Blocks are not in it; block release reads the full record (getUserXml).
    const params: Record<string, string> = { view: 'brief', ...(options.expandFees === true ? { expand: 'fees' } : {}) }
    const query = options.anyIdentifier === true ? { user_id_type: 'all_unique', ...params } : this.#userParams(options.byPrimaryId, params)
    const doc = await this.#call('GET', this.#userPath(userId), query, options.observe)
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

  /** Pays a fee; `guard`, when given, is asked once the call has its rate-limit slot, just before it is written. */
  async payFee (request: PayFeeRequest, observe?: AlmaCallObserver, guard?: SendGuard): Promise<Fee> {
    const doc = await this.#call('POST', `${this.#userPath(request.userId)}/fees/${encodeURIComponent(request.feeId)}`, {
      op: 'pay',
      amount: formatDecimal(request.amount),
      method: request.method,
      external_transaction_id: request.externalTransactionId,
      comment: request.comment
    }, observe, undefined, guard)
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
