// EZproxy's UserObject web service, server to server: the token EZproxy handed the patron's browser is
// exchanged, with the LocalWSKey, for the patron's uid. The wskey is a bearer secret, so it is only ever sent
// to EZPROXY_URL's own origin: never to wherever a token claims to point, and never along a redirect.

import got, { CancelError, type Got, TimeoutError } from 'got'
import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { text, xmlReader } from '../xml.ts'

export type UserObjectAnswer =
  /** EZproxy vouched for this uid */
  | { kind: 'user', uid: string }
  /** EZproxy answered, but not with a usable user: the token expired, was used already, or the wskey is wrong */
  | { kind: 'rejected', reason: string, serviceStatus?: string }
  /** the token is not something we will send the wskey for (another origin, another path, odd parameters) */
  | { kind: 'refused', reason: string, tokenOrigin?: string, tokenPath?: string }
  /** EZproxy could not be asked, or answered something that is not a UserObject */
  | { kind: 'unavailable', reason: string, status?: number }

export interface UserObjectOptions {
  /** EZPROXY_URL, without a trailing slash */
  ezproxyUrl: string
  wskey: string
  timeoutMs?: number
}

const MAX_TOKEN_LENGTH = 4096
const MAX_RESPONSE_BYTES = 64 * 1024
const parseXml = xmlReader()
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/

/**
 * The getUserObject URL for a token, or why the token is refused. Public samples treat the token as a URL to
 * which `&service=getUserObject&wskey=…` is appended; a token that is not a URL is sent as `token=` to
 * EZPROXY_URL's /userObject.
 */
export function userObjectRequestUrl (token: string, options: Pick<UserObjectOptions, 'ezproxyUrl' | 'wskey'>): { url: string } | { refused: string, tokenOrigin?: string, tokenPath?: string } {
  const base = new URL(options.ezproxyUrl)
  const endpoint = `${base.pathname.replace(/\/+$/, '')}/userObject`
  const credentials = `service=getUserObject&wskey=${encodeURIComponent(options.wskey)}`
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (token === '' || token.length > MAX_TOKEN_LENGTH || /[\s\x00-\x1f\x7f]/.test(token)) return { refused: 'the token is empty, too long or contains spaces or control characters' }
  if (!SCHEME.test(token)) {
    return { url: `${base.origin}${endpoint}?token=${encodeURIComponent(token)}&${credentials}` }
  }
  let url: URL
  try {
    url = new URL(token)
  } catch {
    return { refused: 'the token looks like a URL but is not a valid one' }
  }
  const where = { tokenOrigin: url.origin, tokenPath: url.pathname }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { refused: `the token URL's scheme ${url.protocol} is not http(s)`, ...where }
  if (url.origin !== base.origin) return { refused: `the token URL's origin ${url.origin} is not EZPROXY_URL's origin ${base.origin}`, ...where }
  if (url.username !== '' || url.password !== '') return { refused: 'the token URL carries a user name or password', ...where }
  if (url.pathname.toLowerCase() !== endpoint.toLowerCase()) return { refused: `the token URL's path ${url.pathname} is not ${endpoint}`, ...where }
  if (url.searchParams.has('wskey') || url.searchParams.has('service')) return { refused: 'the token URL already carries a service or wskey parameter', ...where }
  url.hash = ''
  return { url: `${url.toString()}${url.search === '' ? '?' : '&'}${credentials}` }
}

export class UserObjectClient {
  readonly #options: UserObjectOptions
  readonly #http: Got

  constructor (options: UserObjectOptions) {
    this.#options = options
    // No redirect is followed (one could carry the wskey to another host), certificates are verified (the
    // https agent's default), nothing is retried (a token is good for one exchange), and an answer larger than
    // a UserObject could be is not read. One sign-in is one call: a small keep-alive pool is plenty.
    const agentOptions = { keepAlive: true, maxSockets: 16, maxFreeSockets: 4, timeout: 4_000 }
    this.#http = got.extend({
      headers: { accept: 'text/xml, application/xml', 'user-agent': 'alma-cashnet' },
      agent: { http: new HttpAgent(agentOptions), https: new HttpsAgent({ ...agentOptions, rejectUnauthorized: true }) },
      timeout: { request: options.timeoutMs ?? 10_000 },
      retry: { limit: 0 },
      followRedirect: false,
      throwHttpErrors: false,
      decompress: false,
      responseType: 'text'
    })
  }

  /** Exchanges a token for the patron's uid. Never throws; the answer says what happened. */
  async lookup (token: string): Promise<UserObjectAnswer> {
    const target = userObjectRequestUrl(token, this.#options)
    if ('refused' in target) return { kind: 'refused', reason: target.refused, tokenOrigin: target.tokenOrigin, tokenPath: target.tokenPath }

    let status = 0
    let body: string
    let tooLarge = false
    const call = this.#http(target.url)
    call.on('response', (response) => { status = response.statusCode })
    call.on('downloadProgress', ({ transferred, total }) => {
      if (Math.max(transferred, total ?? 0) > MAX_RESPONSE_BYTES && !tooLarge) {
        tooLarge = true
        call.cancel()
      }
    })
    try {
      body = (await call).body
    } catch (error: any) {
      if (tooLarge && error instanceof CancelError) return { kind: 'unavailable', status, reason: 'EZproxy answered with an unexpectedly large document' }
      const code = error instanceof TimeoutError ? 'TIMEOUT' : String(error?.code ?? error?.name ?? 'ERROR')
      return { kind: 'unavailable', reason: `no answer from EZproxy (${code})` }
    }
    if (status >= 300 && status < 400) return { kind: 'unavailable', status, reason: `EZproxy answered HTTP ${status} (a redirect, not followed): check EZPROXY_URL and that Option UserObject is on` }
    if (status !== 200) return { kind: 'unavailable', status, reason: `EZproxy answered HTTP ${status}: check EZPROXY_URL and that Option UserObject is on` }

    let doc: Record<string, any>
    try {
      doc = parseXml(body)
    } catch (error) {
      return { kind: 'unavailable', status, reason: `EZproxy's answer is not a UserObject document (${(error as Error).message})` }
    }
    const root = doc.userObjectResponse
    if (root === undefined || root === null || typeof root !== 'object') {
      return { kind: 'unavailable', status, reason: 'EZproxy\'s answer has no <userObjectResponse>: check EZPROXY_URL and that Option UserObject is on' }
    }
    const serviceStatus = text(root.serviceStatus).trim()
    if (serviceStatus.toUpperCase() !== 'OK') {
      return { kind: 'rejected', serviceStatus, reason: `serviceStatus ${serviceStatus === '' ? '(missing)' : serviceStatus}: the token expired or was used already, or EZPROXY_WSKEY differs from LocalWSKey` }
    }
    const uid = text(root.userDocument?.uid).trim()
    if (uid === '') return { kind: 'rejected', serviceStatus, reason: 'the UserObject has no <uid>: check what user.txt puts in the session for this login method' }
    return { kind: 'user', uid }
  }
}
