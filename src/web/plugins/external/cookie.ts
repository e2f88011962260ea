// @fastify/cookie, signing cookies with COOKIE_SECRET (the session, the CSRF secret, the checkout and the
// sign-in state are all signed).

import cookie from '@fastify/cookie'
import fp from 'fastify-plugin'
import type { Config } from '../../../config.ts'

export default fp(async function cookieSettings (fastify, { config }: { config: Config }) {
  await fastify.register(cookie, { secret: config.cookieSecret })
}, { name: 'cookie-settings' })
