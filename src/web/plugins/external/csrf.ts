// @fastify/csrf-protection for every form that changes something (checkout, the staff actions). The secret
// sits in a signed cookie; the token travels in the form's _csrf field.

import { createHash } from 'node:crypto'
import csrf from '@fastify/csrf-protection'
import fp from 'fastify-plugin'
import type { Config } from '../../../config.ts'
import { cookiePath, csrfUserInfo } from '../identity.ts'

export default fp(async function csrfSettings (fastify, { config }: { config: Config }) {
  await fastify.register(csrf, {
    cookieKey: 'acn_csrf',
    cookieOpts: { signed: true, httpOnly: true, secure: config.secureCookies, sameSite: 'lax', path: cookiePath(config) },
    getToken: (request) => (request.body as Record<string, string> | undefined)?._csrf,
    // A token is bound to the patron (and, in userobject mode, the session) it was issued to: the identity
    // plugin passes the same value when the token is made. A token issued to patron A is refused for patron B.
    getUserInfo: (request) => csrfUserInfo(request),
    csrfOpts: { hmacKey: createHash('sha256').update(`csrf-user-binding\u0000${config.cookieSecret}`).digest() }
  })
}, { name: 'csrf-settings', dependencies: ['cookie-settings'] })
