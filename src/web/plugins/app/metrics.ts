// The service's metrics (src/metrics.ts) as a decorator: one registry per app instance. The gauges read the
// ledger when Prometheus scrapes; the request hook counts answers by route pattern and status, and postbacks
// refused before anything was recorded (403: not from CASHNET_POSTBACK_ALLOW, or a wrong token).

import fp from 'fastify-plugin'
import { ServiceMetrics } from '../../../metrics.ts'
import { routeInCampus } from '../../campus-path.ts'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ServiceMetrics
  }
}

export default fp(async function metrics (fastify) {
  const service = new ServiceMetrics({
    countCheckouts: async (search) => await fastify.ledger.countCheckouts(search),
    countUnmatchedPostbacks: async () => await fastify.ledger.countUnmatchedPostbacks(),
    oldestUnpostedPaid: async () => {
      const paid = await fastify.ledger.paidBefore(new Date())
      return paid.reduce<string | null>((oldest, c) => c.paidAt !== null && (oldest === null || c.paidAt < oldest) ? c.paidAt : oldest, null)
    }
  })
  // a campus of a system deployment: every series carries its campus (SPEC 15), routes are named without the prefix
  if (fastify.config.campus !== undefined) service.registry.setDefaultLabels({ campus: fastify.config.campus })
  const prefix = fastify.prefix
  fastify.decorate('metrics', service)
  fastify.addHook('onResponse', async (request, reply) => {
    const route = request.is404 ? '(no route)' : routeInCampus(request, prefix) ?? '(no route)'
    service.request(route, request.method, reply.statusCode)
    if (route === '/cashnet/postback' && reply.statusCode === 403) service.postback('FORBIDDEN')
  })
}, { name: 'metrics', dependencies: ['config'] })
