// No page about a patron is kept by a browser or a shared cache (library computers are shared): every HTML
// answer, and anything answered to a signed-in patron, says no-store. The static assets may be cached.

import fp from 'fastify-plugin'
import { pathInCampus } from '../../campus-path.ts'

export default fp(async function cacheControl (fastify) {
  const campusPrefix = fastify.prefix
  fastify.addHook('onSend', async (request, reply, payload) => {
    const type = String(reply.getHeader('content-type') ?? '')
    if (!pathInCampus(request.url, campusPrefix).startsWith('/assets/') && (type.startsWith('text/html') || request.patron !== null)) reply.header('cache-control', 'no-store')
    return payload
  })
}, { name: 'cache-control', dependencies: ['identity'] })
