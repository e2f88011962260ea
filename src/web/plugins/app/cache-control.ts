// No page about a patron is kept by a browser or a shared cache (library computers are shared): every HTML
// answer, and anything answered to a signed-in patron, says no-store. The static assets may be cached.

import fp from 'fastify-plugin'

export default fp(async function cacheControl (fastify) {
  fastify.addHook('onSend', async (request, reply, payload) => {
    const type = String(reply.getHeader('content-type') ?? '')
    if (!request.url.startsWith('/assets/') && (type.startsWith('text/html') || request.patron !== null)) reply.header('cache-control', 'no-store')
    return payload
  })
}, { name: 'cache-control', dependencies: ['identity'] })
