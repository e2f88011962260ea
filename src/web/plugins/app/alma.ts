// The Alma client: one for the process (its connection pool and the ALMA_RATE_LIMIT budget are shared), and
// per request a view of it whose alma.call log lines carry the request's id and patron.

import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { AlmaClient } from '../../../alma/client.ts'

declare module 'fastify' {
  interface FastifyInstance {
    alma: AlmaClient
  }
  interface FastifyRequest {
    /** the process's Alma client, logging through this request's logger */
    alma: AlmaClient
  }
}

export default fp(async function almaClient (fastify) {
  const { config } = fastify
  const alma = new AlmaClient({
    baseUrl: config.almaApiUrl,
    apiKey: config.almaApiKey,
    userIdType: config.almaUserIdType,
    rateLimit: config.almaRateLimit,
    timeoutMs: config.almaTimeoutMs,
    logger: (fastify.log as unknown as Logger).child({ component: 'alma' }),
    onCall: (call, waitedMs) => { fastify.metrics.almaCall(call, waitedMs) }
  })
  fastify.decorate('alma', alma)
  fastify.decorateRequest('alma', {
    getter () { return alma.withLogger(this.log as unknown as Logger) }
  })
  // onClose hooks run last-registered first: the posting worker has stopped before the pool closes
  fastify.addHook('onClose', async () => { await alma.close() })
}, { name: 'alma', dependencies: ['config', 'metrics'] })
