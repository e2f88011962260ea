// Starts the whole thing on one machine: the Alma sandbox, the CashNet sandbox (or, with PAYMENT_PROVIDER=paypal,
// the PayPal stand-in, its webhook delivered to the service), the service and the EZproxy
// stand-in in front of it, on ephemeral ports. The demo and the tests both use it, so the tests exercise what a
// librarian sees in the demo. The service's configuration goes through the real loadConfig.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from '../app.ts'
import { type Campus, loadCampuses, PROCESS_VARIABLES } from '../campuses/config.ts'
import { type Config, loadConfig } from '../config.ts'
import { AlmaSandbox } from './alma.ts'
import { addAnalytics, finesReport } from './analytics.ts'
import { CashnetSandbox } from './cashnet.ts'
import { EzproxyStandIn, STANDIN_LOGOUT_PATH } from './ezproxy.ts'
import { type PayPalSandboxOptions, PayPalSandbox } from './paypal.ts'
import { PrimoJwksStandIn } from './jwks.ts'
import { createServer } from 'node:net'
import { type SeedUser, seedUsers } from './seed.ts'

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

/** One sandbox campus of a system deployment: its own Alma sandbox, CashNet store, EZproxy stand-in and branding. */
export interface SandboxCampus {
  id: string
  alma: AlmaSandbox
  cashnet: CashnetSandbox
  ezproxy: EzproxyStandIn
  config: Config
  /** the Alma API key only this campus's Alma sandbox accepts */
  almaApiKey: string
  /** the address this campus's EZproxy stand-in connects from (its EZPROXY_ALLOW) */
  ezproxyFrom: string
  /** the address this campus's CashNet posts from (its CASHNET_POSTBACK_ALLOW) */
  cashnetFrom: string
  /** the stand-in's address (its own pages, and the service behind it) */
  ezproxyUrl: string
  /** PUBLIC_URL: the stand-in's address and the campus prefix */
  publicUrl: string
}

export interface CampusStackOptions {
  /** campus ids, with each campus's own variables (over the sandbox's); two campuses by default */
  campuses?: Array<{ id: string, env?: Record<string, string>, ezproxyFrom?: string, cashnetFrom?: string }>
  /** process-wide variables and defaults for every campus */
  env?: Record<string, string>
  /** fixed ports for the demo (the service's; the stand-ins use ezproxy, ezproxy+1, ...) */
  ports?: { service?: number, ezproxy?: number }
  /** where the campuses file is written (a new temporary directory by default) */
  directory?: string
  app?: AppOptions
}

export interface CampusStack {
  campuses: SandboxCampus[]
  app: FastifyInstance
  serviceUrl: string
  close: () => Promise<void>
}

const CAMPUS_LOOKS = [
  { name: 'University Library, Springfield', accent: '#1d4f91' },
  { name: 'University Library, Shelbyville', accent: '#7a1f3d' }
]

/**
 * The sandbox patrons of one campus: the same usernames at every campus (jsmith at one campus is not jsmith at
 * another), with fees of their own: the first campus's as seeded, another's with its own ids and titles.
 */
export function campusSeedUsers (campus: string, index: number): SeedUser[] {
  const users = seedUsers()
  if (index === 0) return users
  return users.map(user => ({
    ...user,
    fees: user.fees.map(fee => ({ ...fee, id: `${index}${fee.id}`, barcode: fee.barcode === '' ? '' : `${fee.barcode}${index}`, title: fee.title === '' ? '' : `${fee.title} (${campus})` }))
  }))
}

/**
 * The loopback addresses a sandbox campus's EZproxy and CashNet stand-ins connect from, one pair per campus so
 * that each campus's allow-lists refuse the other's. Linux answers on all of 127.0.0.0/8; other systems (macOS)
 * only on 127.0.0.1 unless the others are added as aliases.
 */
export function campusSandboxAddresses (index: number): { ezproxyFrom: string, cashnetFrom: string } {
  return { ezproxyFrom: index === 0 ? '127.0.0.1' : `127.0.1.${index}`, cashnetFrom: `127.0.2.${index + 1}` }
}

/** A system deployment in the sandbox: one service, several campuses, each with its own Alma, CashNet and EZproxy. */
export async function startCampusStack (options: CampusStackOptions = {}): Promise<CampusStack> {
  const definitions = options.campuses ?? [{ id: 'springfield' }, { id: 'shelbyville' }]
  // a directory of our own (the campuses file) is removed on close; one the caller gave is the caller's
  const directory = options.directory ?? mkdtempSync(join(tmpdir(), 'alma-cashnet-campuses-'))
  const ownDirectory = options.directory === undefined
  const started: SandboxCampus[] = []
  const file: { defaults: Record<string, string>, campuses: Record<string, Record<string, string>> } = { defaults: {}, campuses: {} }
  // options.env: the process-wide variables stay in the environment, the others become the file's defaults
  const env: Record<string, string> = { PORT: String(options.ports?.service ?? 0), COOKIE_SECRET: SANDBOX_COOKIE_SECRET, DATABASE_PATH: ':memory:', LOG_LEVEL: 'info' }
  for (const [variable, value] of Object.entries(options.env ?? {})) {
    if (PROCESS_VARIABLES.includes(variable)) env[variable] = value
    else file.defaults[variable] = value
  }
  env.CAMPUSES_FILE = join(directory, 'campuses.json')
  let index = 0
  for (const definition of definitions) {
    const addresses = campusSandboxAddresses(index)
    const ezproxyFrom = definition.ezproxyFrom ?? addresses.ezproxyFrom
    const cashnetFrom = definition.cashnetFrom ?? addresses.cashnetFrom
    const almaApiKey = `sandbox-alma-api-key-${definition.id}`
    const alma = new AlmaSandbox({ apiKey: almaApiKey, users: campusSeedUsers(definition.id, index) })
    // its Analytics fines report, read by export:fines --campus ID (ALMA_FINES_REPORT_PATH below)
    const finesReportPath = `/shared/${definition.id}/Reports/Fines for PeopleSoft`
    addAnalytics(alma, { [finesReportPath]: finesReport(alma) })
    await alma.start()
    const cashnet = new CashnetSandbox({ store: `LIBFINES${definition.id.replace(/[^a-z0-9]/g, '').toUpperCase()}`, postbackUrl: 'http://127.0.0.1:9/cashnet/postback', postbackFrom: cashnetFrom })
    await cashnet.start()
    const staff = definition.env?.ADMIN_USERS ?? `staff-${definition.id}`
    const ezproxy = new EzproxyStandIn({
      target: 'http://127.0.0.1:9',
      users: campusSeedUsers(definition.id, index),
      wskey: SANDBOX_WSKEY,
      localAddress: ezproxyFrom,
      home: `/${definition.id}`,
      staffUsers: staff.split(',').map(u => u.trim()).filter(u => u !== '')
    })
    const ezproxyUrl = await ezproxy.start(options.ports?.ezproxy !== undefined ? options.ports.ezproxy + index : 0)
    const publicUrl = `${ezproxyUrl}/${definition.id}`
    const look = CAMPUS_LOOKS[index % CAMPUS_LOOKS.length]
    // the key stays out of the file, as a real deployment's would: "env:NAME"
    const keyVariable = `${definition.id.replace(/-/g, '_').toUpperCase()}_ALMA_API_KEY`
    env[keyVariable] = almaApiKey
    file.campuses[definition.id] = {
      LIBRARY_NAME: index < CAMPUS_LOOKS.length ? look.name : `University Library, ${definition.id}`,
      ACCENT_COLOR: look.accent,
      PUBLIC_URL: publicUrl,
      ALMA_API_URL: alma.baseUrl,
      ALMA_API_KEY: `env:${keyVariable}`,
      CASHNET_CHECKOUT_URL: cashnet.checkoutUrl,
      CASHNET_ITEM_CODE: 'LIB-FINE',
      CASHNET_ITEM_CODES: 'LOSTITEMREPLACEMENTFEE=LIB-LOST',
      CASHNET_POSTBACK_ALLOW: cashnetFrom,
      EZPROXY_ALLOW: ezproxyFrom,
      ADMIN_USERS: staff,
      EZPROXY_URL: ezproxyUrl,
      EZPROXY_WSKEY: SANDBOX_WSKEY,
      EZPROXY_LOGOUT_URL: `${ezproxyUrl}${STANDIN_LOGOUT_PATH}`,
      ALMA_TIMEOUT_MS: '2000',
      POSTING_RETRY_BASE_MS: '50',
      POSTING_RETRY_MAX_MS: '1000',
      ALMA_FINES_REPORT_PATH: finesReportPath,
      ...definition.env
    }
    started.push({ id: definition.id, alma, cashnet, ezproxy, config: undefined as unknown as Config, almaApiKey, ezproxyFrom, cashnetFrom, ezproxyUrl, publicUrl })
    index++
  }
  writeFileSync(env.CAMPUSES_FILE, JSON.stringify(file, null, 2))
  let campuses: Campus[] | null
  try {
    campuses = loadCampuses(env)
  } catch (error) {
    // a refused campuses file (a test of a refusal) must not leave the stand-ins listening
    for (const campus of started) {
      await campus.ezproxy.close()
      await campus.cashnet.close()
      await campus.alma.close()
    }
    if (ownDirectory) rmSync(directory, { recursive: true, force: true })
    throw error
  }
  if (campuses === null) throw new Error('CAMPUSES_FILE was not read')
  const app = await buildApp(campuses[0].config, { ...options.app, campuses })
  const serviceUrl = await app.listen({ port: campuses[0].config.port, host: campuses[0].config.host })
  for (const campus of started) {
    campus.config = campuses.find(c => c.id === campus.id)?.config as Config
    campus.ezproxy.setTarget(serviceUrl)
    campus.cashnet.setPostbackUrl(`${serviceUrl}/${campus.id}/cashnet/postback`)
  }
  return {
    campuses: started,
    app,
    serviceUrl,
    close: async () => {
      for (const campus of started) await campus.ezproxy.close()
      await app.close()
      for (const campus of started) {
        await campus.cashnet.close()
        await campus.alma.close()
      }
      if (ownDirectory) rmSync(directory, { recursive: true, force: true })
    }
  }
}
