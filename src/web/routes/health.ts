// GET /healthz (the process answers) and GET /readyz (the ledger is writable and the configuration loaded).

import type { FastifyPluginAsync } from 'fastify'

const health: FastifyPluginAsync = async (fastify) => {
  fastify.get('/healthz', { config: { access: 'public' } }, async (_request, reply) => {
    return reply.header('cache-control', 'no-store').send({ status: 'ok' })
  })
  fastify.get('/readyz', { config: { access: 'public' } }, async (_request, reply) => {
    const ledger = await fastify.ledger.writable()
    const ready = ledger && fastify.config !== undefined
    return reply.code(ready ? 200 : 503).header('cache-control', 'no-store')
      .send({ status: ready ? 'ready' : 'not ready', ledger: ledger ? 'writable' : 'not writable', configuration: 'loaded' })
  })
}

export default health
