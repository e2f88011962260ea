// The application as a Fastify instance: third-party plugins, then the service's own services (config, Alma,
// ledger, alerts, posting worker), then the trust boundaries, then the routes. One error handler turns errors
// into answers: a calm page for patrons, one clear log line for operators, never a stack trace to a browser.

import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import cookie from '@fastify/cookie'
import csrf from '@fastify/csrf-protection'
import formbody from '@fastify/formbody'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import { createHash, randomUUID } from 'node:crypto'
import type { DestinationStream, Logger } from 'pino'
import pino from 'pino'
import { AlmaClient } from './alma/client.ts'
import { AlmaError, AlmaUnavailable, AlmaBadResponse, USER_NOT_FOUND_CODES } from './alma/errors.ts'
import type { Config } from './config.ts'
import type { Ledger } from './ledger/ledger.ts'
import { SqliteLedger } from './ledger/sqlite.ts'
import { loggerOptions } from './log.ts'
import { type Alerts, createAlerts } from './payments/alerts.ts'
import { PostingWorker } from './payments/worker.ts'
import identity from './web/plugins/identity.ts'
import admin from './web/routes/admin.ts'
import assets from './web/routes/assets.ts'
import auth from './web/routes/auth.ts'
import checkout from './web/routes/checkout.ts'
import ezproxyCheck from './web/routes/ezproxy-check.ts'
import fines from './web/routes/fines.ts'
import health from './web/routes/health.ts'
import postback from './web/routes/postback.ts'
import receipt from './web/routes/return.ts'
import { messagePage } from './web/views/fines.ts'
import { accentCss } from './web/views/layout.ts'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    alma: AlmaClient
    ledger: Ledger
    worker: PostingWorker
    alerts: Alerts
  }
}

export interface AppOptions {
  /** where log lines go (tests capture them); stdout by default */
  logStream?: DestinationStream
  logger?: Logger
  /** how often the worker looks for due retries (tests make it short) */
  workerPollMs?: number
  /** start the posting worker (the default) */
  startWorker?: boolean
}

/**
 * One line per request, written when the answer has gone, with method, path, status and time together, where
 * Fastify writes two (the request when it arrives, the status when it is answered). Half the lines to write and
 * to read; every other Fastify log line is unchanged.
 */
class OneLinePerRequest extends LogController {
  incomingRequest (): void {}

  requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error !== null && error !== undefined) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}

export async function buildApp (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const logger = options.logger ?? pino(loggerOptions(config), options.logStream ?? pino.destination({ sync: false }))
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    trustProxy: config.trustProxy.length > 0 ? [...config.trustProxy] : false,
    bodyLimit: 64 * 1024,
    // a slow client may not hold a connection open for minutes (Node's default is 300 s)
    requestTimeout: 30_000,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    logController: new OneLinePerRequest(),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 200 }
  })

  // Third-party plugins
  await app.register(cookie, { secret: config.cookieSecret })
  await app.register(formbody, { bodyLimit: 64 * 1024 })
  await app.register(csrf, {
    cookieKey: 'acn_csrf',
    cookieOpts: { signed: true, httpOnly: true, secure: config.secureCookies, sameSite: 'lax', path: '/' },
    getToken: (request) => (request.body as Record<string, string> | undefined)?._csrf
  })
  const cashnetOrigin = new URL(config.cashnetCheckoutUrl).origin
  const logoOrigin = config.libraryLogoUrl.startsWith('http') ? new URL(config.libraryLogoUrl).origin : null
  // The accent colour is the only inline style; it is allowed by its hash, never by 'unsafe-inline'.
  const accentHash = `'sha256-${createHash('sha256').update(accentCss(config.accentColor)).digest('base64')}'`
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        scriptSrcAttr: ["'none'"],
        styleSrc: ["'self'", accentHash],
        styleSrcAttr: ["'none'"],
        imgSrc: ["'self'", 'data:', ...(logoOrigin !== null ? [logoOrigin] : [])],
        formAction: ["'self'", cashnetOrigin],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
        connectSrc: ["'self'"]
      }
    },
    strictTransportSecurity: config.secureCookies ? { maxAge: 31536000 } : false,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginEmbedderPolicy: false
  })
  // Patron and staff routes are limited per username (every patron arrives from the EZproxy address, so an IP
  // key would throttle everyone together). This onRoute hook must be added before @fastify/rate-limit registers
  // its own, which reads config.rateLimit when each route is added: hooks run in the order they were added.
  const patronLimit = { max: config.patronRateLimit, timeWindow: '1 minute', keyGenerator: (request: FastifyRequest) => `patron:${request.patron?.username ?? request.ip}` }
  app.addHook('onRoute', (route) => {
    const access = (route.config as { access?: string } | undefined)?.access
    if ((access === 'patron' || access === 'admin') && route.config !== undefined) {
      ;(route.config as Record<string, unknown>).rateLimit = patronLimit
    }
  })
  await app.register(rateLimit, { global: false, hook: 'preHandler' })

  // The service's own services
  const alma = new AlmaClient({
    baseUrl: config.almaApiUrl,
    apiKey: config.almaApiKey,
    userIdType: config.almaUserIdType,
    rateLimit: config.almaRateLimit,
    timeoutMs: config.almaTimeoutMs,
    maxResponseBytes: config.almaMaxResponseBytes,
    logger: logger.child({ component: 'alma' })
  })
  const ledger = new SqliteLedger({ path: config.databasePath })
  const alerts = createAlerts(logger, { smtpUrl: config.smtpUrl, to: config.alertEmailTo, from: config.alertEmailFrom, publicUrl: config.publicUrl })
  const worker = new PostingWorker(
    { alma, ledger, paymentMethod: config.almaPaymentMethod, releaseBlocks: config.releaseBlocks },
    logger.child({ component: 'worker' }),
    alerts,
    { maxAttempts: config.postingMaxAttempts, retryBaseMs: config.postingRetryBaseMs, retryMaxMs: config.postingRetryMaxMs, paidAlertMinutes: config.paidAlertMinutes, pollMs: options.workerPollMs }
  )
  app.decorate('config', config)
  app.decorate('alma', alma)
  app.decorate('ledger', ledger)
  app.decorate('alerts', alerts)
  app.decorate('worker', worker)
  app.addHook('onReady', async () => { if (options.startWorker !== false) worker.start() })
  app.addHook('onClose', async () => {
    await worker.stop()
    ledger.close()
    await alma.close()
  })

  // Trust boundaries, then routes
  await app.register(identity, { config })
  app.addHook('onSend', async (request, reply, payload) => {
    const type = String(reply.getHeader('content-type') ?? '')
    if (!request.url.startsWith('/assets/') && (type.startsWith('text/html') || request.patron !== null)) reply.header('cache-control', 'no-store')
    return payload
  })
  app.setNotFoundHandler(async (request, reply) => {
    return reply.code(404).type('text/html; charset=utf-8')
      .send(messagePage(config, { title: 'Page not found', heading: 'Page not found', message: 'There is nothing at this address. Use the library’s “pay fines” link to see your fines.', root: rootFor(request.url) }))
  })
  app.setErrorHandler(async (error: FastifyError, request, reply) => handleError(app, config, error, request, reply))
  await app.register(health)
  await app.register(assets)
  await app.register(fines)
  await app.register(checkout)
  await app.register(postback)
  await app.register(receipt)
  await app.register(auth)
  await app.register(ezproxyCheck)
  await app.register(admin)

  return app
}

/** Relative path from a URL back to the service root, so error pages keep working under EZproxy. */
function rootFor (url: string): string {
  const depth = url.split('?')[0].split('/').length - 2
  return depth <= 0 ? './' : '../'.repeat(depth)
}

async function handleError (app: FastifyInstance, config: Config, error: FastifyError, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const root = request.routeOptions.config?.root ?? rootFor(request.url)
  const html = (status: number, heading: string, message: string): FastifyReply =>
    reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store')
      .send(messagePage(config, { title: heading, heading, message, root, linkHome: status < 500 && request.method !== 'GET' }))

  if (error instanceof AlmaError && USER_NOT_FOUND_CODES.has(error.errorCode)) {
    request.log.warn({ event: 'patron.unknown', alma: { status: error.status, errorCode: error.errorCode, trackingId: error.trackingId } }, `user ${request.patron?.username ?? '?'} is not known to Alma (${error.errorCode})`)
    return html(404, 'We could not find your library account', 'Your sign-in worked, but the library system has no account for you. If you think this is wrong, contact the library and mention your username.')
  }
  if (error instanceof AlmaError || error instanceof AlmaUnavailable || error instanceof AlmaBadResponse) {
    const operator = error instanceof AlmaError && (error.status === 401 || error.status === 403)
      ? 'Alma refused the API key: check ALMA_API_KEY and its Users read/write permission'
      : 'Alma is unavailable or answered unexpectedly; the patron was told to try later'
    request.log.error({ event: 'alma.unavailable', alma: { status: error.status, errorCode: error.errorCode, trackingId: error.trackingId } }, `${operator} (${error.message})`)
    return html(503, 'The library system is not available', 'We cannot reach the library system right now, so we cannot show or take payments. Nothing was charged. Please try again in a few minutes.')
  }
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 500
  if (error.code === 'FST_CSRF_INVALID_TOKEN' || error.code === 'FST_CSRF_MISSING_SECRET') {
    request.log.warn({ event: 'access.csrf', code: error.code }, `CSRF check failed on ${request.method} ${request.url.split('?')[0]}`)
    return html(403, 'Please start again', 'This form has expired or did not come from this site. Go back to your fines and try again.')
  }
  if (status === 429) {
    return reply.code(429).header('cache-control', 'no-store').type('text/html; charset=utf-8')
      .send(messagePage(config, { title: 'Too many requests', heading: 'Please wait a moment', message: 'You have made many requests in a short time. Please wait a minute and try again.', root }))
  }
  if (status < 500) {
    request.log.info({ event: 'request.refused', status, code: error.code }, `${status} ${request.method} ${request.url.split('?')[0]}: ${error.message}`)
    if (request.routeOptions.config?.access === 'cashnet') return reply.code(status).type('text/plain; charset=utf-8').send(`rejected: ${error.code ?? status}\n`)
    return html(status, 'We could not process that request', status === 413 ? 'That request was too large.' : 'The request was not in the form we expected. Go back to your fines and try again.')
  }
  request.log.error({ event: 'request.failed', err: { message: error.message, stack: error.stack, code: error.code } }, `unexpected error on ${request.method} ${request.url.split('?')[0]}: ${error.message}`)
  if (request.routeOptions.config?.access === 'cashnet') return reply.code(500).type('text/plain; charset=utf-8').send('error\n')
  app.log.debug('error page served')
  return html(500, 'Something went wrong', 'Something went wrong on our side. Nothing was charged by this page. Please try again in a few minutes; if it keeps happening, contact the library.')
}
