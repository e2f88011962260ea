// pino options for the service: JSON lines, one per event; secrets from the configuration, pay-link tokens and
// any card-like digit run (src/mask.ts) are masked before a line is written, on every path into it: the fields
// and message of each call, the bindings of child loggers (the `user` every patron request carries), and what
// the serializers make of Fastify's request (its URL, through loggablePath) and of errors.

import type { LoggerOptions } from 'pino'
import type { Config } from './config.ts'
import { maskCardLike } from './mask.ts'

/** A pay link's token (src/payments/pay-links.ts), maybe percent-encoded: a bearer credential wherever it is found. */
const PAY_LINK_TOKEN = /(?<![A-Za-z0-9])pl1(?:\.|%2e)[A-Za-z0-9_-]{16,}(?:(?:\.|%2e)[A-Za-z0-9_-]*)?/gi

export function createMasker (secrets: string[]): (text: string) => string {
  const known = secrets.filter(s => s.length >= 6).sort((a, b) => b.length - a.length)
  return (text: string) => {
    let out = text
    for (const secret of known) {
      if (out.includes(secret)) out = out.split(secret).join('[REDACTED]')
    }
    return maskCardLike(out.replace(PAY_LINK_TOKEN, '[token]'))
  }
}

/**
 * A request's URL as a log line may name it: the path only (a query may carry a UserObject or a CSRF token), a
 * pay link's token replaced (it is in the path, /pay/<token> or /{campus}/pay/<token>, and opens the patron's
 * session), card-like digit runs masked. Every log line that names a request's path takes it from here.
 */
export function loggablePath (url: string): string {
  const path = url.split('?', 1)[0]
  // the router matches the decoded path: /p%61y/<token> is a pay link too
  let decoded = path
  try { decoded = decodeURIComponent(path) } catch {}
  const payLink = decoded.search(/\/pay\//i)
  const shown = payLink >= 0 ? `${decoded.slice(0, payLink)}/pay/[token]` : path
  return maskCardLike(shown.replace(PAY_LINK_TOKEN, '[token]'))
}

/**
 * Fields whose value is never written, at any depth, whatever it holds: credentials and the headers that carry
 * them (compared in lower case). The walk below copies every logged object anyway, so it censors them in the same
 * pass; pino's own `redact` (used before) parsed each of its paths again and cloned the object on every line,
 * a tenth of a fines page's garbage.
 */
const CENSORED_FIELDS = new Set(['authorization', 'cookie', 'set-cookie', 'apikey', 'password', 'wskey', 'token', 'clientsecret', 'csrf', '_csrf'])

function maskDeep (value: unknown, mask: (s: string) => string, depth = 0): unknown {
  if (typeof value === 'string') return mask(value)
  if (depth > 6 || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(v => maskDeep(v, mask, depth + 1))
  if (value instanceof Error) return { type: value.name, message: mask(value.message), stack: mask(value.stack ?? '') }
  // Only plain data is walked. Fastify's request and reply (logged as `req`/`res`) go to their serializers
  // untouched: copying them here walked the whole socket graph on every request and left the serializers
  // an empty copy (`"url":"undefined"`).
  const prototype = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) return value
  const out: Record<string, unknown> = {}
  for (const k in value) {
    if (!Object.hasOwn(value, k)) continue
    out[k] = CENSORED_FIELDS.has(k.toLowerCase()) ? '[REDACTED]' : maskDeep((value as Record<string, unknown>)[k], mask, depth + 1)
  }
  return out
}

/** The settings whose values are secrets (the ones not set are empty). */
export type SecretSettings = Pick<Config, 'almaApiKey' | 'cookieSecret' | 'ezproxySecret' | 'ezproxyWskey'> &
  Partial<Pick<Config, 'paypalClientSecret' | 'cashnetPostbackToken' | 'smtpUrl' | 'databaseUrl'>>

/** The password of a URL setting (SMTP_URL, DATABASE_URL), as written and percent-decoded. */
function urlPassword (url: string | undefined): string[] {
  if (url === undefined || url === '') return []
  let password: string
  try { password = new URL(url).password } catch { return [] }
  if (password === '') return []
  let decoded = password
  try { decoded = decodeURIComponent(password) } catch {}
  return [password, decoded]
}

/** Every secret value of one configuration: what the masker replaces wherever it appears in a line. */
export function secretsOf (config: SecretSettings): string[] {
  return [config.almaApiKey, config.cookieSecret, config.ezproxySecret, config.ezproxyWskey, config.paypalClientSecret ?? '',
    config.cashnetPostbackToken ?? '', ...urlPassword(config.smtpUrl), ...urlPassword(config.databaseUrl)]
}

/**
 * One logger for the process masks every campus's secrets (`campuses`, with CAMPUSES_FILE), not only those of
 * the configuration the process's own settings are read from: any campus's request, error or job can write a line.
 */
export function loggerOptions (config: Pick<Config, 'logLevel'> & SecretSettings, campuses: readonly SecretSettings[] = []): LoggerOptions {
  const mask = createMasker([config, ...campuses].flatMap(secretsOf))
  return {
    level: config.logLevel,
    base: { service: 'alma-cashnet' },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: {
      log: (object) => maskDeep(object, mask) as Record<string, unknown>,
      // the root logger's bindings; pino applies no formatter to a child's (see `user` below)
      bindings: (bindings) => maskDeep(bindings, mask) as Record<string, unknown>
    },
    hooks: {
      logMethod (args, method) {
        const masked = args.map(a => typeof a === 'string' ? mask(a) : a) as Parameters<typeof method>
        method.apply(this, masked)
      }
    },
    serializers: {
      // Child bindings (request.log.child({ user }) on every patron request) pass through serializers only,
      // never through the `log` formatter: a card-like username would otherwise be written in clear.
      // The worker's child carries checkout, tx and user the same way.
      user: (value: unknown) => maskDeep(value, mask),
      tx: (value: unknown) => maskDeep(value, mask),
      checkout: (value: unknown) => maskDeep(value, mask),
      req (request) {
        // Serializers run after the `log` formatter, so the path is masked here (the secrets too).
        return { method: request.method, url: mask(loggablePath(String(request.url))), remoteAddress: request.socket?.remoteAddress ?? request.ip }
      },
      res (reply) {
        return { statusCode: reply.statusCode }
      }
    }
  }
}
