// The posting worker: posts paid checkouts to Alma after the postback's 200 has gone, retries with backoff,
// and alerts when a payment needs a person. It starts when the app is ready and, on close, waits for a
// posting in flight (bounded by ALMA_TIMEOUT_MS plus a margin) or abandons it visibly, before the ledger and
// the Alma client close (onClose hooks run last-registered first).

import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { type PayPalDeps, recoverLostCaptures, recoverStalledReviews } from '../../../payments/paypal.ts'
import { PostingWorker, STOP_MARGIN_MS } from '../../../payments/worker.ts'

declare module 'fastify' {
  interface FastifyInstance {
    worker: PostingWorker
    /**
     * What the PayPal rules need (the ledger, the client, the worker, alerts, receipts), logging to `logger`; null
     * for a CashNet deployment. The PayPal routes, the checkout route and the worker's sweeps all take it from here.
     */
    paypalDeps: ((logger: Logger) => PayPalDeps) | null
  }
}

export interface PostingWorkerOptions {
  /** how often the worker looks for due retries (tests make it short) */
  workerPollMs?: number
  /** start the posting worker (the default) */
  startWorker?: boolean
}

export default fp(async function postingWorker (fastify, options: PostingWorkerOptions) {
  const { config, alma, ledger, alerts } = fastify
  const logger = (fastify.log as unknown as Logger).child({ component: 'worker' })
  const sweeps: Array<(now: Date) => Promise<void>> = []
  const paypal = fastify.paypal
  const paypalDeps = config.paymentProvider !== 'paypal' || paypal === null
    ? null
    : (log: Logger): PayPalDeps => ({ ledger, client: paypal.withLogger(log), schedule: id => { worker.schedule(id) }, alerts, logger: log, messages: fastify.receiptMessages })
  if (paypalDeps !== null) {
    // a PayPal review whose outcome webhook never came: ask PayPal (SPEC 13's webhook, recovered)
    const asked = new Map<string, number>()
    const deps = paypalDeps(logger)
    sweeps.push(async now => { await recoverStalledReviews(deps, now, asked) })
    // a capture whose record never arrived (the ledger down, the webhook lost, the patron gone): ask PayPal for the order
    const ordersAsked = new Map<string, number>()
    sweeps.push(async now => { await recoverLostCaptures(deps, now, ordersAsked) })
  }
  const worker = new PostingWorker(
    { alma, ledger, paymentMethod: config.almaPaymentMethod, releaseBlocks: config.releaseBlocks, onPosting: (outcome, seconds) => { fastify.metrics.posting(outcome, seconds) }, messages: fastify.receiptMessages },
    logger,
    alerts,
    { maxAttempts: config.postingMaxAttempts, retryBaseMs: config.postingRetryBaseMs, retryMaxMs: config.postingRetryMaxMs, paidAlertMinutes: config.paidAlertMinutes, pollMs: options.workerPollMs, stopWaitMs: config.almaTimeoutMs + STOP_MARGIN_MS, leaseMs: config.postingLeaseSeconds * 1000, sweeps }
  )
  fastify.decorate('worker', worker)
  fastify.decorate('paypalDeps', paypalDeps)
  fastify.addHook('onReady', async () => { if (options.startWorker !== false) worker.start() })
  fastify.addHook('onClose', async () => { await worker.stop() })
}, { name: 'posting-worker', dependencies: ['config', 'alma', 'ledger', 'alerts', 'receipts', 'payment-provider'] })
