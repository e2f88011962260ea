// The posting worker: posts paid checkouts to Alma after the postback's 200 has gone, retries with backoff,
// and alerts when a payment needs a person. It starts when the app is ready and, on close, waits for a
// posting in flight (bounded by ALMA_TIMEOUT_MS plus a margin) or abandons it visibly, before the ledger and
// the Alma client close (onClose hooks run last-registered first).

import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { recoverLostCaptures, recoverStalledReviews } from '../../../payments/paypal.ts'
import { PostingWorker, STOP_MARGIN_MS } from '../../../payments/worker.ts'

declare module 'fastify' {
  interface FastifyInstance {
    worker: PostingWorker
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
  if (config.paymentProvider === 'paypal' && paypal !== null) {
    // a PayPal review whose outcome webhook never came: ask PayPal (SPEC 13's webhook, recovered)
    const asked = new Map<string, number>()
    const deps = { ledger, client: paypal.withLogger(logger), schedule: (id: string) => { worker.schedule(id) }, alerts, logger, messages: fastify.receiptMessages }
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
  fastify.addHook('onReady', async () => { if (options.startWorker !== false) worker.start() })
  fastify.addHook('onClose', async () => { await worker.stop() })
}, { name: 'posting-worker', dependencies: ['config', 'alma', 'ledger', 'alerts', 'receipts', 'payment-provider'] })
