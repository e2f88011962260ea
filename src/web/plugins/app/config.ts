// The validated configuration (src/config.ts), handed in by the caller and readable by every plugin and route
// as fastify.config. Nothing below reads process.env.

import fp from 'fastify-plugin'
import type { Config } from '../../../config.ts'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export default fp(async function configDecorator (fastify, { config }: { config: Config }) {
  fastify.decorate('config', config)
}, { name: 'config' })
