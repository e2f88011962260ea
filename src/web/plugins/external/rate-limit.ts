// @fastify/rate-limit, per route (global: false): patron and staff routes per username, the postback per
// checkout reference, /auth/ezproxy per address. Routes that set nothing are not limited.

import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import type { Config } from '../../../config.ts'

export default fp(async function rateLimitSettings (fastify, { config }: { config: Config }) {
  // Patron and staff routes are limited per username (every patron arrives from the EZproxy address, so an IP
  // key would throttle everyone together). This onRoute hook must be added before @fastify/rate-limit registers
  // its own, which reads config.rateLimit when each route is added: hooks run in the order they were added.
  // A pay-link session's username is an Alma primary id: its own bucket, never that of an EZproxy username of the same text.
  const patronKey = (request: FastifyRequest): string => request.patron === null ? `patron:${request.ip}` : `${request.patron.payLink !== undefined ? 'pay-link' : 'patron'}:${request.patron.username}`
  const patronLimit = { max: config.patronRateLimit, timeWindow: '1 minute', keyGenerator: patronKey }
  fastify.addHook('onRoute', (route) => {
    const access = (route.config as { access?: string } | undefined)?.access
    if ((access === 'patron' || access === 'admin') && route.config !== undefined) {
      ;(route.config as Record<string, unknown>).rateLimit = patronLimit
    }
  })
  // preHandler, not onRequest: the postback's key is the checkout reference in its body, read by then
  await fastify.register(rateLimit, { global: false, hook: 'preHandler' })
}, { name: 'rate-limit-settings' })
