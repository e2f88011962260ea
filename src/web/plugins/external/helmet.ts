// helmet: security headers, and a Content-Security-Policy that lets a page load only this service's own assets,
// post forms (and follow a form's redirect) only here and to the payment provider's pages (CashNet's store, or
// PayPal's approval origin), and never be framed.
//
// helmet itself, configured once at start-up, run for every request. @fastify/helmet (used before) builds a new
// helmet from its options on every request, parsing the policy each time (with per-request nonces and per-route
// options in mind, neither of which this service uses): a measured 1.5% of a fines page's CPU and 5 KB of its
// garbage, for the same headers.

import { createHash } from 'node:crypto'
import helmet from 'helmet'
import fp from 'fastify-plugin'
import type { Config } from '../../../config.ts'
import { approvalOrigin } from '../../../providers/paypal/provider.ts'
import { accentCss } from '../../views/layout.ts'

export default fp(async function helmetSettings (fastify, { config }: { config: Config }) {
  // exactly the one provider's origin: a PayPal deployment never lets a form go to CashNet, nor the reverse
  const payOrigin = config.paymentProvider === 'paypal' ? approvalOrigin(config.paypalApiUrl) : new URL(config.cashnetCheckoutUrl).origin
  const logoOrigin = config.libraryLogoUrl.startsWith('http') ? new URL(config.libraryLogoUrl).origin : null
  // The accent colour is the only inline style; it is allowed by its hash, never by 'unsafe-inline'.
  const accentHash = `'sha256-${createHash('sha256').update(accentCss(config.accentColor)).digest('base64')}'`
  const securityHeaders = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        scriptSrcAttr: ["'none'"],
        styleSrc: ["'self'", accentHash],
        styleSrcAttr: ["'none'"],
        imgSrc: ["'self'", 'data:', ...(logoOrigin !== null ? [logoOrigin] : [])],
        // the hand-off page's form goes to CashNet; POST /checkout redirects to PayPal's approval page
        formAction: ["'self'", payOrigin],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
        connectSrc: ["'self'"]
      }
    },
    strictTransportSecurity: config.secureCookies ? { maxAge: 31536000 } : false,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginEmbedderPolicy: false
  })
  fastify.addHook('onRequest', (request, reply, done) => { securityHeaders(request.raw, reply.raw, (error?: unknown) => { done(error as Error | undefined) }) })
}, { name: 'helmet-settings' })
