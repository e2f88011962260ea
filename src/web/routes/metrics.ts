// GET /metrics: Prometheus text format, only for peers in METRICS_ALLOW (the identity plugin's 'metrics' access;
// nobody when it is empty). What the names mean and the alert rules that use them: docs/monitoring.md.

import type { FastifyPluginAsync } from 'fastify'

const metrics: FastifyPluginAsync = async (fastify) => {
  fastify.get('/metrics', { config: { access: 'metrics' } }, async (_request, reply) => {
    const text = await fastify.metrics.text()
    return reply.type(fastify.metrics.contentType).header('cache-control', 'no-store').send(text)
  })
}

export default metrics
