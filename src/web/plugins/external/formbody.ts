// @fastify/formbody: the patron and staff forms arrive as application/x-www-form-urlencoded. A field sent
// twice arrives as an array; the route schemas say which fields may repeat.

import formbody from '@fastify/formbody'
import fp from 'fastify-plugin'
import { BODY_LIMIT } from '../../../server-options.ts'

export default fp(async function formbodySettings (fastify) {
  await fastify.register(formbody, { bodyLimit: BODY_LIMIT })
}, { name: 'formbody-settings' })
