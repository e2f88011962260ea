// The process's part of a system deployment (SPEC 12): what belongs to no campus. GET / lists the campuses
// (name, link), /healthz and /readyz stay at the root (ready when every campus's ledger is writable), the
// assets are served once, and /metrics joins every campus's series under a `campus` label. Each campus's own
// routes live under /{id}/ (src/app.ts); this part only reads the campuses' services, never acts for one.
//
// The root routes are encapsulated with their own access hook: `public`, or `metrics` for METRICS_ALLOW; a root
// route that says anything else is refused (fail closed). The route table (routeAccess) is the process's: it
// records every route, the campuses' included, with its full path.

import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import { AggregatorRegistry } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import type { Campus } from '../../campuses/config.ts'
import type { Config } from '../../config.ts'
import { loggablePath } from '../../log.ts'
import { html } from '../html.ts'
import assets from '../routes/assets.ts'
import { allowList } from '../trust.ts'
import { accentCss, page } from '../views/layout.ts'
import { messagePage } from '../views/message.ts'
import { answerError } from './app/error-handler.ts'
import { type Access, DEFAULT_ACCESS } from './identity.ts'

interface ProcessOptions {
  config: Config
  campuses: readonly Campus[]
}

/** The root pages' branding: the system's, not a campus's. */
function systemBranding (config: Config): { libraryName: string, libraryLogoUrl: string, accentColor: string } {
  return { libraryName: 'Library fines', libraryLogoUrl: '', accentColor: config.accentColor }
}

async function rootRoutes (fastify: FastifyInstance, { config, campuses }: ProcessOptions): Promise<void> {
  const fromMetrics = allowList(config.metricsAllow)
  const branding = systemBranding(config)
  const csp = [
    "default-src 'self'", "script-src 'self'", "script-src-attr 'none'",
    `style-src 'self' 'sha256-${createHash('sha256').update(accentCss(branding.accentColor)).digest('base64')}'`, "style-src-attr 'none'",
    "img-src 'self' data:", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'", "connect-src 'self'"
  ].join('; ')

  fastify.addHook('onRequest', async (request, reply) => {
    if (request.is404) return
    const access = request.routeOptions.config?.access ?? DEFAULT_ACCESS
    if (access === 'public') return
    if (access === 'metrics') {
      if (fromMetrics(request.ip)) return
      request.log.warn({ event: 'access.metrics_refused', peer: request.ip, reason: 'peer not in METRICS_ALLOW' }, `/metrics refused: ${request.ip} is not in METRICS_ALLOW`)
    } else {
      request.log.warn({ event: 'access.untrusted_peer', peer: request.ip, reason: 'no patron or staff route at the root of a system deployment' }, `${request.method} ${loggablePath(request.url)} refused at the root for ${request.ip}`)
    }
    return await reply.code(403).type('text/plain; charset=utf-8').send('forbidden\n')
  })
  fastify.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').header('x-frame-options', 'DENY')
    if (String(reply.getHeader('content-type') ?? '').startsWith('text/html')) reply.header('content-security-policy', csp).header('cache-control', 'no-store')
    return payload
  })

  fastify.get('/', { config: { access: 'public' } }, async (_request, reply) => {
    const body = html`<h1>Pay library fines</h1>
<p>Choose your campus library.</p>
<ul class="campuses">
${campuses.map(c => html`<li><a href="./${c.id}/">${c.config.libraryName}</a></li>`)}
</ul>`
    return await reply.type('text/html; charset=utf-8').send(page({ title: 'Pay library fines', root: './', branding, body }))
  })
  fastify.get('/healthz', { config: { access: 'public' } }, async (_request, reply) => {
    return await reply.header('cache-control', 'no-store').send({ status: 'ok' })
  })
  fastify.get('/readyz', { config: { access: 'public' } }, async (_request, reply) => {
    const ledgers: Record<string, string> = {}
    let ready = true
    for (const [id, campus] of fastify.campuses) {
      const writable = await campus.ledger.writable()
      ledgers[id] = writable ? 'writable' : 'not writable'
      ready &&= writable
    }
    return await reply.code(ready ? 200 : 503).header('cache-control', 'no-store')
      .send({ status: ready ? 'ready' : 'not ready', ledger: ready ? 'writable' : 'not writable', ledgers, configuration: 'loaded' })
  })
  fastify.get('/metrics', { config: { access: 'metrics' } }, async (_request, reply) => {
    // every campus's registry carries its campus label; aggregating keeps each campus's series apart
    const registry = AggregatorRegistry.aggregate(await Promise.all([...fastify.campuses.values()].map(async c => await c.metrics.registry.getMetricsAsJSON())))
    return await reply.type(registry.contentType).header('cache-control', 'no-store').send(await registry.metrics())
  })
  await fastify.register(assets)
}

export default fp(async function processPart (fastify, options: ProcessOptions) {
  const { config } = options
  const branding = systemBranding(config)
  const routeAccess = new Map<string, Access>()
  fastify.decorate('routeAccess', routeAccess)
  fastify.addHook('onRoute', (route) => {
    const access = (route.config as { access?: Access } | undefined)?.access ?? DEFAULT_ACCESS
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) routeAccess.set(`${method} ${route.url}`, access)
  })
  fastify.setNotFoundHandler(async (_request, reply) => {
    return await reply.code(404).type('text/html; charset=utf-8').header('cache-control', 'no-store')
      .send(messagePage(branding, { title: 'Page not found', heading: 'Page not found', message: 'There is nothing at this address. Use your library’s “pay fines” link to see your fines.', root: './' }))
  })
  fastify.setErrorHandler(async (error, request, reply) => await answerError({ ...config, ...branding }, error as any, request, reply))
  await fastify.register(rootRoutes, options)
}, { name: 'process' })
