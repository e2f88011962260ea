// Starts the whole thing on one machine: the Alma sandbox, the CashNet sandbox (or, with PAYMENT_PROVIDER=paypal,
// the PayPal stand-in, its webhook delivered to the service), the service and the EZproxy
// stand-in in front of it, on ephemeral ports. The demo and the tests both use it, so the tests exercise what a
// librarian sees in the demo. The service's configuration goes through the real loadConfig.

import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from '../app.ts'
import { type Config, loadConfig } from '../config.ts'
import { AlmaSandbox } from './alma.ts'
import { CashnetSandbox } from './cashnet.ts'
import { EzproxyStandIn, STANDIN_LOGOUT_PATH } from './ezproxy.ts'
import { type PayPalSandboxOptions, PayPalSandbox } from './paypal.ts'
import { PrimoJwksStandIn } from './jwks.ts'
import { createServer } from 'node:net'
import { seedUsers } from './seed.ts'

export const SANDBOX_API_KEY = 'sandbox-alma-api-key-l7f3k2'
export const SANDBOX_COOKIE_SECRET = 'sandbox-cookie-secret-0123456789abcdef0123456789'
export const SANDBOX_WSKEY = 'sandbox-ezproxy-wskey-9a8b7c'
export const SANDBOX_PAYPAL_CLIENT_ID = 'sandbox-paypal-client-id'
export const SANDBOX_PAYPAL_SECRET = 'sandbox-paypal-client-secret-4d5e6f'
export const SANDBOX_PAYPAL_WEBHOOK_ID = 'WH-SANDBOX-0001'

export interface StackOptions {
  /** extra or overriding environment variables for the service */
  env?: Record<string, string>
  /** fixed ports for the demo; ephemeral (0) by default */
  ports?: { service?: number, ezproxy?: number, alma?: number, cashnet?: number, primo?: number }
  /** addresses the peers connect from: EZproxy to the service, CashNet to the postback */
  ezproxyFrom?: string
  cashnetFrom?: string
  /** the PayPal stand-in's options (webhook mode, faults), for PAYMENT_PROVIDER=paypal */
  paypal?: Partial<PayPalSandboxOptions>
  app?: AppOptions
}

export interface Stack {
  alma: AlmaSandbox
  cashnet: CashnetSandbox
  /** the PayPal stand-in, when PAYMENT_PROVIDER=paypal */
  paypal: PayPalSandbox | null
  ezproxy: EzproxyStandIn
  /** AUTH_MODE=primo: the Primo VE stand-in (the institution's keys, signed tokens, a library card page) */
  primo: PrimoJwksStandIn | null
  app: FastifyInstance
  config: Config
  /** the service's own address (behind the stand-in) */
  serviceUrl: string
  /** the URL a patron opens: the stand-in */
  publicUrl: string
  close: () => Promise<void>
}

export async function startStack (options: StackOptions = {}): Promise<Stack> {
  const ports = options.ports ?? {}
  const ezproxyFrom = options.ezproxyFrom ?? '127.0.0.1'
  const cashnetFrom = options.cashnetFrom ?? '127.0.0.1'
  const alma = new AlmaSandbox({ apiKey: SANDBOX_API_KEY })
  await alma.start(ports.alma ?? 0)
  const cashnet = new CashnetSandbox({ store: 'LIBFINESTEST', postbackUrl: 'http://127.0.0.1:9/cashnet/postback', postbackFrom: cashnetFrom })
  await cashnet.start(ports.cashnet ?? 0)
  const paypal = options.env?.PAYMENT_PROVIDER === 'paypal'
    ? new PayPalSandbox({ clientId: SANDBOX_PAYPAL_CLIENT_ID, clientSecret: SANDBOX_PAYPAL_SECRET, webhookId: SANDBOX_PAYPAL_WEBHOOK_ID, ...options.paypal })
    : null
  if (paypal !== null) await paypal.start()
  const ezproxy = new EzproxyStandIn({
    target: 'http://127.0.0.1:9',
    users: seedUsers(),
    userHeader: options.env?.EZPROXY_USER_HEADER ?? 'X-EZproxy-User',
    userHeaderEncoding: options.env?.EZPROXY_USER_HEADER_ENCODING === 'base64' ? 'base64' : 'plain',
    secretHeader: options.env?.EZPROXY_SECRET_HEADER,
    secret: options.env?.EZPROXY_SECRET,
    wskey: SANDBOX_WSKEY,
    localAddress: ezproxyFrom,
    // the staff choice on the sign-in page: the service's ADMIN_USERS (below, "staff" unless overridden)
    staffUsers: (options.env?.ADMIN_USERS ?? 'staff').split(',').map(u => u.trim()).filter(u => u !== '')
  })
  const ezproxyUrl = await ezproxy.start(ports.ezproxy ?? 0)

  // Primo mode: patrons come from Primo VE's link straight to the service, not through EZproxy, so the public
  // URL is the service's own address (its port chosen now, as it must be known before the service starts).
  let primo: PrimoJwksStandIn | null = null
  let servicePort = ports.service ?? 0
  let publicUrl = ezproxyUrl
  if (options.env?.AUTH_MODE === 'primo') {
    primo = new PrimoJwksStandIn()
    await primo.start(ports.primo ?? 0)
    if (servicePort === 0) servicePort = await freePort()
    publicUrl = `http://127.0.0.1:${servicePort}`
  }

  const env: Record<string, string> = {
    PUBLIC_URL: publicUrl,
    PORT: String(servicePort),
    ALMA_API_URL: alma.baseUrl,
    ALMA_API_KEY: SANDBOX_API_KEY,
    CASHNET_CHECKOUT_URL: cashnet.checkoutUrl,
    CASHNET_ITEM_CODE: 'LIB-FINE',
    CASHNET_ITEM_CODES: 'LOSTITEMREPLACEMENTFEE=LIB-LOST',
    CASHNET_POSTBACK_ALLOW: cashnetFrom,
    EZPROXY_ALLOW: ezproxyFrom,
    COOKIE_SECRET: SANDBOX_COOKIE_SECRET,
    DATABASE_PATH: ':memory:',
    LIBRARY_NAME: 'Springfield University Library',
    ADMIN_USERS: 'staff',
    EZPROXY_URL: ezproxyUrl,
    EZPROXY_WSKEY: SANDBOX_WSKEY,
    // the stand-in shares its host with the service, so its sign-out is not at EZPROXY_URL/logout
    EZPROXY_LOGOUT_URL: `${ezproxyUrl}${STANDIN_LOGOUT_PATH}`,
    ...(primo === null ? {} : { ALMA_INSTITUTION_CODE: primo.institution, PRIMO_JWKS_URL: primo.jwksUrl, PRIMO_ISSUER: primo.issuer }),
    ALMA_TIMEOUT_MS: '2000',
    POSTING_RETRY_BASE_MS: '50',
    POSTING_RETRY_MAX_MS: '1000',
    LOG_LEVEL: 'info',
    ...(paypal !== null ? { PAYPAL_API_URL: paypal.url, PAYPAL_CLIENT_ID: SANDBOX_PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET: SANDBOX_PAYPAL_SECRET, PAYPAL_WEBHOOK_ID: SANDBOX_PAYPAL_WEBHOOK_ID } : {}),
    ...options.env
  }
  const config = loadConfig(env)
  const app = await buildApp(config, options.app)
  const serviceUrl = await app.listen({ port: config.port, host: config.host })
  ezproxy.setTarget(serviceUrl)
  primo?.setTarget(config.publicUrl, seedUsers())
  // CASHNET_POSTBACK_TOKEN goes in the notification URL, as it would be set in CashNet's store configuration
  cashnet.setPostbackUrl(`${serviceUrl}/cashnet/postback${config.cashnetPostbackToken !== '' ? `?token=${encodeURIComponent(config.cashnetPostbackToken)}` : ''}`)
  // PayPal's servers reach the webhook directly (a public route), not through EZproxy
  paypal?.setWebhookUrl(`${serviceUrl}/paypal/webhook`)
  return {
    alma,
    cashnet,
    paypal,
    ezproxy,
    primo,
    app,
    config,
    serviceUrl,
    publicUrl,
    close: async () => {
      await ezproxy.close()
      await primo?.close()
      await app.close()
      await cashnet.close()
      await paypal?.close()
      await alma.close()
    }
  }
}

/** A port nobody listens on right now (the service's, in primo mode). */
async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => { resolve(port) })
    })
  })
}
