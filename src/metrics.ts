// What the service tells Prometheus (SPEC 15, docs/monitoring.md): one prom-client Registry per app instance
// (tests build many apps in one process; nothing here is global). The names below are a stable interface for
// alert rules and dashboards: rename one and every library's alerts go quiet. Counters are fed by small hooks
// (the postback use case, the poster, the Alma client's call hook, the request hook); the gauges read the ledger
// when Prometheus scrapes, so they are true even after a restart.

import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { AlmaCallRecord } from './alma/client.ts'
import { CHECKOUT_STATES, type CheckoutState } from './ledger/types.ts'

/** The metric names, as alert rules and the Grafana dashboard use them. */
export const METRIC_NAMES = {
  checkouts: 'almacashnet_checkouts',
  attentionOpen: 'almacashnet_attention_open',
  unmatchedPostbacks: 'almacashnet_unmatched_postbacks',
  oldestUnpostedPaid: 'almacashnet_oldest_unposted_paid_seconds',
  postbacks: 'almacashnet_postbacks_total',
  postbackAck: 'almacashnet_postback_ack_seconds',
  postings: 'almacashnet_postings_total',
  posting: 'almacashnet_posting_seconds',
  almaCalls: 'almacashnet_alma_calls_total',
  almaRateLimitWait: 'almacashnet_alma_rate_limit_wait_seconds_total',
  receipts: 'almacashnet_receipts_total',
  requests: 'almacashnet_http_requests_total'
} as const

/** Postback outcomes: the ledger's, plus FORBIDDEN (not from CASHNET_POSTBACK_ALLOW, or a wrong token: nothing recorded). */
export const POSTBACK_OUTCOMES = ['PAID', 'DUPLICATE', 'DECLINED', 'CANCELLED', 'MISMATCH', 'DOUBLE_CHARGE', 'ORPHAN', 'REJECTED', 'LATE_FAILURE', 'TX_REUSED', 'FORBIDDEN'] as const
export const POSTING_OUTCOMES = ['POSTED', 'NEEDS_ATTENTION', 'RETRY', 'SKIPPED', 'ERROR'] as const
/** ok: 2xx; client_error: Alma refused (4xx, a business error); rate_limited: 429; server_error: 5xx; unavailable: no answer; bad_response: unreadable 2xx. */
export const ALMA_OUTCOMES = ['ok', 'client_error', 'rate_limited', 'server_error', 'unavailable', 'bad_response'] as const
export const RECEIPT_OUTCOMES = ['sent', 'retrying', 'gave_up'] as const

/** What the scrape-time gauges read from the ledger. */
export interface LedgerGaugeSource {
  countCheckouts: (search: string) => Promise<{ byState: Record<CheckoutState, number>, openAttention: number }>
  countUnmatchedPostbacks: () => Promise<number>
  /** the oldest paid_at of a PAID checkout (ISO), or null */
  oldestUnpostedPaid: () => Promise<string | null>
}

export function almaOutcome (call: Pick<AlmaCallRecord, 'status' | 'errorCode'>): typeof ALMA_OUTCOMES[number] {
  if (call.status === 0) return 'unavailable'
  if (call.status === 429) return 'rate_limited'
  if (call.status >= 500) return 'server_error'
  if (call.status >= 300) return 'client_error'
  return call.errorCode === 'BAD_RESPONSE' ? 'bad_response' : 'ok'
}

export class ServiceMetrics {
  readonly registry = new Registry()
  readonly #postbacks: Counter<'outcome'>
  readonly #postbackAck: Histogram
  readonly #postings: Counter<'outcome'>
  readonly #posting: Histogram<'outcome'>
  readonly #almaCalls: Counter<'outcome'>
  readonly #almaWait: Counter
  readonly #receipts: Counter<'outcome'>
  readonly #requests: Counter<'route' | 'method' | 'status'>

  constructor (source: LedgerGaugeSource, now: () => number = Date.now) {
    const registers = [this.registry]
    // One ledger read per scrape feeds the two count gauges.
    let counts: Promise<{ byState: Record<CheckoutState, number>, openAttention: number }> | null = null
    const readCounts = async (): Promise<{ byState: Record<CheckoutState, number>, openAttention: number }> => {
      counts ??= source.countCheckouts('').finally(() => { setImmediate(() => { counts = null }) })
      return await counts
    }
    // The gauges below are read at scrape time through `collect`; constructing one registers it, nothing else
    // holds it.
    /* eslint-disable no-new */
    new Gauge({
      name: METRIC_NAMES.checkouts,
      help: 'Checkouts in the ledger by state, read at scrape time.',
      labelNames: ['state'],
      registers,
      async collect () {
        const { byState } = await readCounts()
        for (const state of CHECKOUT_STATES) this.set({ state }, byState[state] ?? 0)
      }
    })
    new Gauge({
      name: METRIC_NAMES.attentionOpen,
      help: 'Payments that need attention and that staff have not settled.',
      registers,
      async collect () { this.set((await readCounts()).openAttention) }
    })
    new Gauge({
      name: METRIC_NAMES.unmatchedPostbacks,
      help: 'Postbacks that matched no checkout, could not be read, or reused a tx.',
      registers,
      async collect () { this.set(await source.countUnmatchedPostbacks()) }
    })
    new Gauge({
      name: METRIC_NAMES.oldestUnpostedPaid,
      help: 'Age in seconds of the oldest PAID checkout not yet posted to Alma (0 when none).',
      registers,
      async collect () {
        const oldest = await source.oldestUnpostedPaid()
        this.set(oldest === null ? 0 : Math.max(0, (now() - Date.parse(oldest)) / 1000))
      }
    })
    /* eslint-enable no-new */
    this.#postbacks = new Counter({ name: METRIC_NAMES.postbacks, help: 'CashNet postbacks by outcome (FORBIDDEN: refused before anything was recorded).', labelNames: ['outcome'], registers })
    this.#postbackAck = new Histogram({ name: METRIC_NAMES.postbackAck, help: 'Seconds from a readable postback to its durable record (CashNet wants the answer within seconds).', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers })
    this.#postings = new Counter({ name: METRIC_NAMES.postings, help: 'Posting attempts to Alma by outcome.', labelNames: ['outcome'], registers })
    this.#posting = new Histogram({ name: METRIC_NAMES.posting, help: 'Seconds one posting of a checkout to Alma took, by outcome.', labelNames: ['outcome'], buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers })
    this.#almaCalls = new Counter({ name: METRIC_NAMES.almaCalls, help: 'Alma API calls by outcome.', labelNames: ['outcome'], registers })
    this.#almaWait = new Counter({ name: METRIC_NAMES.almaRateLimitWait, help: 'Seconds spent waiting for the Alma rate limit (ALMA_RATE_LIMIT) before calls.', registers })
    this.#receipts = new Counter({ name: METRIC_NAMES.receipts, help: 'Receipt e-mails by outcome.', labelNames: ['outcome'], registers })
    this.#requests = new Counter({ name: METRIC_NAMES.requests, help: 'HTTP requests answered, by route, method and status.', labelNames: ['route', 'method', 'status'], registers })
    // Every outcome is a series from the start: an alert on rate(...) needs the zero before the first one.
    for (const outcome of POSTBACK_OUTCOMES) this.#postbacks.inc({ outcome }, 0)
    for (const outcome of POSTING_OUTCOMES) this.#postings.inc({ outcome }, 0)
    for (const outcome of ALMA_OUTCOMES) this.#almaCalls.inc({ outcome }, 0)
    for (const outcome of RECEIPT_OUTCOMES) this.#receipts.inc({ outcome }, 0)
    this.#almaWait.inc(0)
  }

  /** The postback use case's hook: its outcome and how long the record took. */
  postback (outcome: string, seconds?: number): void {
    this.#postbacks.inc({ outcome })
    if (seconds !== undefined) this.#postbackAck.observe(seconds)
  }

  /** The poster's hook: one posting of a checkout and its duration. */
  posting (outcome: string, seconds: number): void {
    this.#postings.inc({ outcome })
    this.#posting.observe({ outcome }, seconds)
  }

  /** The Alma client's call hook: the call's outcome and how long it waited for the rate limit. */
  almaCall (call: Pick<AlmaCallRecord, 'status' | 'errorCode'>, waitedMs: number): void {
    this.#almaCalls.inc({ outcome: almaOutcome(call) })
    if (waitedMs > 0) this.#almaWait.inc(waitedMs / 1000)
  }

  /** The e-mail outbox's hook: what one run sent, will retry, and gave up. */
  receipts (result: { sent: number, retrying: number, gaveUp: number }): void {
    this.#receipts.inc({ outcome: 'sent' }, result.sent)
    this.#receipts.inc({ outcome: 'retrying' }, result.retrying)
    this.#receipts.inc({ outcome: 'gave_up' }, result.gaveUp)
  }

  /** The request hook: the route pattern (never the raw URL, whose ids would make endless series). */
  request (route: string, method: string, status: number): void {
    this.#requests.inc({ route, method, status: String(status) })
  }

  async text (): Promise<string> {
    return await this.registry.metrics()
  }

  get contentType (): string {
    return this.registry.contentType
  }
}
