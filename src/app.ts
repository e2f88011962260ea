// The application as a Fastify plugin, in three layers registered in this order: the third-party plugins as
// this service configures them (src/web/plugins/external/), the service's own services and hooks
// (src/web/plugins/app/ and the identity plugin), then the routes (src/web/routes/). Fastify's own options,
// listening and shutdown belong to src/server.ts; buildApp is the same assembly for the tests and the demo.
//
// Campuses (SPEC 12): "the campus part" (its services and routes, campusPart below) is registered once. With one
// campus from the environment it is the app itself at / (fastify-plugin semantics: app.ledger, app.worker where
// they always were); with CAMPUSES_FILE it is registered once per campus, encapsulated under /{id}, and the
// process part (src/web/plugins/process.ts: the campus list at GET /, health, /metrics, assets) once at the root.
// app.campuses.get(id) gives a campus's services to tests and tools ('' for the one campus at /).

import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { DestinationStream, Logger } from 'pino'
import pino from 'pino'
import type { Campus } from './campuses/config.ts'
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
import processPart from './web/plugins/process.ts'
import paypal from './web/routes/paypal.ts'
import metricsRoute from './web/routes/metrics.ts'
import payLinks from './web/routes/pay-links.ts'
import history from './web/routes/history.ts'
import postback from './web/routes/postback.ts'
import reports from './web/routes/reports.ts'
import receipt from './web/routes/return.ts'

export interface ApplicationOptions extends PostingWorkerOptions, ReceiptSenderOptions {
  config: Config
  /** the campuses of a system deployment (SPEC 12), each served under /{id}/; one campus at / when absent */
  campuses?: readonly Campus[]
  /** the clock sessions are timed by (tests move it to pass idle and absolute limits); Date.now by default */
  now?: () => number
  /** the clock the ledger stamps its rows with (tests put payments on a day that is over, for export:gl); now by default */
  ledgerNow?: () => Date
}

declare module 'fastify' {
  interface FastifyInstance {
    /** each campus's part of the app (its config, ledger, alma, worker, metrics...), by campus id ('' for the one campus at /) */
    campuses: Map<string, FastifyInstance>
  }
}

type CampusOptions = PostingWorkerOptions & ReceiptSenderOptions & { config: Config, now?: () => number, ledgerNow?: () => Date, registry?: Map<string, FastifyInstance> }

/**
 * The part of the app that belongs to one campus: its configuration, ledger, Alma client and rate limit, payment
 * provider, alerts, posting worker, identity rules, branding and staff, and its routes. A system deployment
 * registers it once per campus, encapsulated under /{id}, so no campus can reach another's services.
 */
async function campusPart (fastify: FastifyInstance, options: CampusOptions): Promise<void> {
  const { config } = options
  const campus = config.campus
  if (campus !== undefined) {
    // every line this campus's services write carries the campus (request lines get it from the child logger factory)
    fastify.log = fastify.log.child({ campus })
    const factory = fastify.childLoggerFactory
    fastify.setChildLoggerFactory(function (logger, bindings, opts, rawReq) { return factory.call(this, logger, { ...bindings, campus }, opts, rawReq) })
    // /{id} without the slash: relative links need /{id}/
    fastify.addHook('onRequest', async (request, reply) => {
      if (request.url === `/${campus}` || request.url.startsWith(`/${campus}?`)) return await reply.redirect(`/${campus}/${request.url.slice(campus.length + 1)}`, 301)
    })
  }
  options.registry?.set(campus ?? '', fastify)

  // Third-party plugins, as this campus configures them (cookie and formbody belong to the process)
  await fastify.register(csrf, { config })
  await fastify.register(helmet, { config })
  await fastify.register(rateLimit, { config })

  // The campus's own services; onClose hooks run in reverse, so the worker stops before the ledger and Alma close
  await fastify.register(configDecorator, { config })
  await fastify.register(metrics)
  await fastify.register(ledger, { now: options.ledgerNow })
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
  // a campus's pages link their stylesheet and scripts relatively (EZproxy rewrites): /{campus}/assets/...
  if (campus !== undefined) await fastify.register(assets)
}

async function application (fastify: FastifyInstance, options: ApplicationOptions): Promise<void> {
  const { config } = options
  const registry = new Map<string, FastifyInstance>()
  fastify.decorate('campuses', registry)

  // Third-party plugins of the process
  await fastify.register(cookie, { config })
  await fastify.register(formbody)

  if (options.campuses === undefined) {
    // One campus at /: its part is the app itself (fastify-plugin), so app.ledger, app.worker, app.routeAccess are where they always were
    // (fastify-plugin marks the function it is given: a fresh one, so campusPart itself stays encapsulated elsewhere)
    await fastify.register(fp(async (instance: FastifyInstance, opts: CampusOptions) => { await campusPart(instance, opts) }, { name: 'campus' }), { config, now: options.now, ledgerNow: options.ledgerNow, workerPollMs: options.workerPollMs, startWorker: options.startWorker, outboxPollMs: options.outboxPollMs, outboxRetryBaseMs: options.outboxRetryBaseMs, outboxRetryMaxMs: options.outboxRetryMaxMs, registry })
    await fastify.register(health)
    await fastify.register(metricsRoute)
    await fastify.register(assets)
    return
  }

  // A system deployment: the process's routes at the root, each campus encapsulated under /{id}
  await fastify.register(processPart, { config, campuses: options.campuses })
  for (const campus of options.campuses) {
    await fastify.register(campusPart, { prefix: `/${campus.id}`, config: campus.config, now: options.now, ledgerNow: options.ledgerNow, workerPollMs: options.workerPollMs, startWorker: options.startWorker, outboxPollMs: options.outboxPollMs, outboxRetryBaseMs: options.outboxRetryBaseMs, outboxRetryMaxMs: options.outboxRetryMaxMs, registry })
  }
}

// fastify-plugin: the application's decorators, hooks and handlers belong to the instance it is registered on
// (the tests and the operator's tools read app.ledger, app.worker, app.routeAccess and app.campuses there).
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
  const app = Fastify(serverOptions(config, logger ?? pino(loggerOptions(config, rest.campuses?.map(c => c.config)), logStream ?? pino.destination({ sync: false }))))
  await app.register(applicationPlugin, { ...rest, config })
  return app
}
