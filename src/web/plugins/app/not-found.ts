// The page for an address the service does not have: the same calm page for anyone, showing nothing.

import fp from 'fastify-plugin'
import { pathInCampus } from '../../campus-path.ts'
import { rootFor } from '../../root.ts'
import { messagePage } from '../../views/message.ts'

export default fp(async function notFound (fastify) {
  const { config } = fastify
  // under a campus's prefix (SPEC 12) the way back is to the campus's root, not the list of campuses
  const prefix = fastify.prefix
  fastify.setNotFoundHandler(async (request, reply) => {
    return await reply.code(404).type('text/html; charset=utf-8')
      .send(messagePage(config, { title: 'Page not found', heading: 'Page not found', message: 'There is nothing at this address. Use the library’s “pay fines” link to see your fines.', root: rootFor(pathInCampus(request.url, prefix)) }))
  })
}, { name: 'not-found', dependencies: ['config'] })
