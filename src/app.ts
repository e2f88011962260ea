// The application as a Fastify plugin, in three layers registered in this order: the third-party plugins as
// this service configures them (src/web/plugins/external/), the service's own services and hooks
// (src/web/plugins/app/ and the identity plugin), then the routes (src/web/routes/). Fastify's own options,
// listening and shutdown belong to src/server.ts; buildApp is the same assembly for the tests and the demo.

import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { DestinationStream, Logger } from 'pino'
import pino from 'pino'
import type { Config } from './config.ts'
import { loggerOptions } from './log.ts'
import { serverOptions } from './server-options.ts'
import alerts from './web/plugins/app/alerts.ts'
import alma from './web/plugins/app/alma.ts'
import cacheControl from './web/plugins/app/cache-control.ts'
import configDecorator from './web/plugins/app/config.ts'
import errorHandler from './web/plugins/app/error-handler.ts'
import ledger from './web/plugins/app/ledger.ts'
import metrics from './web/plugins/app/metrics.ts'
import notFound from './web/plugins/app/not-found.ts'
import paymentProvider from './web/plugins/app/payment-provider.ts'
import postingWorker, { type PostingWorkerOptions } from './web/plugins/app/posting-worker.ts'
import receipts, { type ReceiptSenderOptions } from './web/plugins/app/receipts.ts'
import cookie from './web/plugins/external/cookie.ts'
import csrf from './web/plugins/external/csrf.ts'
import formbody from './web/plugins/external/formbody.ts'
import helmet from './web/plugins/external/helmet.ts'
import rateLimit from './web/plugins/external/rate-limit.ts'
import identity from './web/plugins/identity.ts'
import admin from './web/routes/admin.ts'
import assets from './web/routes/assets.ts'
import auth from './web/routes/auth.ts'
import checkout from './web/routes/checkout.ts'
import ezproxyCheck from './web/routes/ezproxy-check.ts'
import fines from './web/routes/fines.ts'
import health from './web/routes/health.ts'
import paypal from './web/routes/paypal.ts'
import metricsRoute from './web/routes/metrics.ts'
import payLinks from './web/routes/pay-links.ts'
import history from './web/routes/history.ts'
import postback from './web/routes/postback.ts'
import reports from './web/routes/reports.ts'
import receipt from './web/routes/return.ts'

export interface ApplicationOptions extends PostingWorkerOptions, ReceiptSenderOptions {
  config: Config
  /** the clock sessions are timed by (tests move it to pass idle and absolute limits); Date.now by default */
  now?: () => number
}

async function application (fastify: FastifyInstance, options: ApplicationOptions): Promise<void> {
  const { config } = options

  // Third-party plugins, as this service configures them
  await fastify.register(cookie, { config })
  await fastify.register(formbody)
  await fastify.register(csrf, { config })
  await fastify.register(helmet, { config })
  await fastify.register(rateLimit, { config })

  // The service's own services; onClose hooks run in reverse, so the worker stops before the ledger and Alma close
  await fastify.register(configDecorator, { config })
  await fastify.register(metrics)
  await fastify.register(ledger)
  await fastify.register(alma)
  await fastify.register(alerts)
  await fastify.register(paymentProvider)
  await fastify.register(receipts, { outboxPollMs: options.outboxPollMs, outboxRetryBaseMs: options.outboxRetryBaseMs, outboxRetryMaxMs: options.outboxRetryMaxMs })
  await fastify.register(postingWorker, { workerPollMs: options.workerPollMs, startWorker: options.startWorker })
  // Trust boundaries and what every answer gets
  await fastify.register(identity, { config, now: options.now })
  await fastify.register(cacheControl)
  await fastify.register(notFound)
  await fastify.register(errorHandler)

  // Routes
  await fastify.register(health)
  await fastify.register(metricsRoute)
  await fastify.register(assets)
  await fastify.register(fines)
  await fastify.register(checkout)
  await fastify.register(postback)
  await fastify.register(receipt)
  await fastify.register(paypal)
  await fastify.register(history)
  await fastify.register(auth)
  await fastify.register(ezproxyCheck)
  await fastify.register(admin)
  await fastify.register(reports)
  await fastify.register(payLinks)
}

// fastify-plugin: the application's decorators, hooks and handlers belong to the instance it is registered on
// (the tests and the operator's tools read app.ledger, app.worker and app.routeAccess there).
const applicationPlugin = fp(application, { name: 'alma-cashnet' })
export default applicationPlugin

export interface AppOptions extends Omit<ApplicationOptions, 'config'> {
  /** where log lines go (tests capture them); stdout by default */
  logStream?: DestinationStream
  logger?: Logger
}

/** Fastify with the service's options and the application registered (not listening): for tests and the demo. */
export async function buildApp (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const { logStream, logger, ...rest } = options
  const app = Fastify(serverOptions(config, logger ?? pino(loggerOptions(config), logStream ?? pino.destination({ sync: false }))))
  await app.register(applicationPlugin, { ...rest, config })
  return app
}
