// The EZproxy stand-in: a login page listing the seeded patrons (and a staff sign-in for the admin pages), and a reverse proxy in front of the service
// that strips any user header the browser sent and adds its own, as the real EZproxy does with
// `AddUserHeader [-base64] NAME` (plain or base64, as configured). The demo and the tests reach the service
// only through it, so they use the same trusted-header code as production.
//
// One difference from a real EZproxy: the stand-in serves its own pages and the proxied service on one host,
// so its sign-out is /ezproxy/logout (a real EZproxy's is /logout on its own host), and /logout reaches the
// service like any other path.

import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { xmlEscape as escape } from './xml-escape.ts'
import type { SeedUser } from './seed.ts'

export interface EzproxyStandInOptions {
  /** the service's real address, e.g. http://127.0.0.1:3000 */
  target: string
  users: SeedUser[]
  userHeader?: string
  /** `base64` plays `AddUserHeader -base64`: the username is sent base64-encoded (UTF-8) */
  userHeaderEncoding?: 'plain' | 'base64'
  secretHeader?: string
  secret?: string
  /** for UserObject mode: the LocalWSKey the service must present */
  wskey?: string
  /** local address the proxy connects from (must be in EZPROXY_ALLOW) */
  localAddress?: string
  /** usernames offered as "library staff" on the sign-in page, landing on /admin (the service's ADMIN_USERS) */
  staffUsers?: string[]
  /** a campus of a system deployment: its path (/springfield), where sign-in lands and staff go (/springfield/admin) */
  home?: string
}

const COOKIE = 'ezproxy_standin'
/** the stand-in's own sign-out (EZPROXY_LOGOUT_URL in the demo and the tests) */
export const STANDIN_LOGOUT_PATH = '/ezproxy/logout'

function parseCookies (header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>()
  for (const part of (header ?? '').split(';')) {
    const index = part.indexOf('=')
    if (index > 0) cookies.set(part.slice(0, index).trim(), decodeURIComponent(part.slice(index + 1).trim()))
  }
  return cookies
}

/**
 * The target of /login, as EZproxy reads it: `url=` takes the rest of the query string literally (so a target
 * with its own `?a=b&c=d` needs no encoding), `qurl=` is the percent-encoded form.
 */
function loginTarget (url: URL): string | null {
  const qurl = url.searchParams.get('qurl')
  if (qurl !== null) return qurl
  const raw = url.search.slice(1)
  const at = raw.startsWith('url=') ? 0 : raw.indexOf('&url=') + 1
  if (at === 0 && !raw.startsWith('url=')) return null
  const value = raw.slice(at + 'url='.length)
  // lenient, as links in the wild often percent-encode url= anyway
  if (/^(%2F|https?%3A)/i.test(value)) {
    try { return decodeURIComponent(value) } catch { return value }
  }
  return value
}

async function readBody (request: IncomingMessage, limit = 64 * 1024): Promise<string> {
  let body = ''
  for await (const chunk of request) {
    body += String(chunk)
    if (body.length > limit) throw new Error('body too large')
  }
  return body
}

export class EzproxyStandIn {
  readonly #options: EzproxyStandInOptions
  readonly #sessions = new Map<string, string>()
  /** UserObject tokens handed out and not yet redeemed */
  readonly tokens = new Map<string, { username: string, expires: number }>()
  readonly #server: Server
  #url = ''
  /** set to make getUserObject fail (tests of "EZproxy unreachable") */
  userObjectDown = false

  constructor (options: EzproxyStandInOptions) {
    this.#options = options
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch(error => {
        response.statusCode = 502
        response.end(`EZproxy stand-in error: ${(error as Error).message}\n`)
      })
    })
  }

  get url (): string { return this.#url }

  async start (port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>(resolve => this.#server.listen(port, host, resolve))
    const address = this.#server.address() as AddressInfo
    this.#url = `http://${host}:${address.port}`
    return this.#url
  }

  async close (): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise<void>(resolve => this.#server.close(() => { resolve() }))
  }

  setTarget (target: string): void {
    this.#options.target = target
  }

  /** Logs a username in (tests): returns the Cookie header value to send. */
  login (username: string): string {
    const session = randomBytes(12).toString('hex')
    this.#sessions.set(session, username)
    return `${COOKIE}=${session}`
  }

  async #handle (request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.#url)
    const username = this.#sessions.get(parseCookies(request.headers.cookie).get(COOKIE) ?? '')
    if (url.pathname === '/login') return await this.#login(request, response, url, username)
    if (url.pathname === STANDIN_LOGOUT_PATH) {
      const session = parseCookies(request.headers.cookie).get(COOKIE)
      if (session !== undefined) this.#sessions.delete(session)
      response.writeHead(303, { location: '/login', 'set-cookie': `${COOKIE}=; Path=/; Max-Age=0` })
      response.end()
      return
    }
    if (url.pathname === '/userObject') return await this.#userObject(request, response, url, username)
    if (username === undefined) {
      response.writeHead(302, { location: `/login?qurl=${encodeURIComponent(url.pathname + url.search)}` })
      response.end()
      return
    }
    this.#proxy(request, response, username)
  }

  async #login (request: IncomingMessage, response: ServerResponse, url: URL, current: string | undefined): Promise<void> {
    const home = `${this.#options.home ?? ''}/`
    const next = loginTarget(url) ?? home
    const safeNext = next.startsWith('/') && !next.startsWith('//') ? next : (next.startsWith(this.#url) || next.startsWith('http://127.0.0.1') ? next : home)
    if (request.method === 'POST') {
      const form = new URLSearchParams(await readBody(request))
      const username = (form.get('user') ?? '').trim()
      if (username === '') {
        response.writeHead(303, { location: url.pathname + url.search })
        response.end()
        return
      }
      // switching user: whoever was signed in is signed out of the service first
      const cookies = current !== undefined && current !== username ? await this.#serviceLogout(request, current) : []
      const session = randomBytes(12).toString('hex')
      this.#sessions.set(session, username)
      response.writeHead(303, { location: safeNext, 'set-cookie': [...cookies, `${COOKIE}=${session}; Path=/; HttpOnly; SameSite=Lax`] })
      response.end()
      return
    }
    if (current !== undefined && loginTarget(url) !== null) {
      response.writeHead(302, { location: safeNext })
      response.end()
      return
    }
    const buttons = this.#options.users.map(u =>
      `<li><button type="submit" name="user" value="${escape(u.primaryId)}">${escape(`${u.firstName} ${u.lastName}`)}</button> <span>${escape(u.primaryId)}: ${escape(u.story)}</span></li>`).join('\n')
    const staff = (this.#options.staffUsers ?? []).map(u =>
      `<li><button type="submit" name="user" value="${escape(u)}">Library staff${(this.#options.staffUsers ?? []).length > 1 ? ` (${escape(u)})` : ''}</button> <span>${escape(u)}: the admin pages (payments, what needs attention)</span></li>`).join('\n')
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    response.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in – EZproxy stand-in</title>
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.5}li{margin:.5rem 0}button{font:inherit;padding:.4rem .9rem;min-height:44px}.note{background:#fff4ce;padding:.5rem 1rem;border-left:4px solid #b58100}</style></head>
<body><main><h1>Library sign-in (EZproxy stand-in)</h1>
<p class="note">This is the demo's stand-in for EZproxy. Choose a seeded patron (or library staff, below, for the admin pages); the stand-in then proxies the fines service and adds the <code>${escape(this.#options.userHeader ?? 'X-EZproxy-User')}</code> header, as EZproxy does in production.</p>
${current !== undefined ? `<p>Signed in as <strong>${escape(current)}</strong>. <a href="/">Go to the fines page</a> · <a href="${STANDIN_LOGOUT_PATH}">Sign out</a>. Choose someone below to switch user.</p>` : ''}
<h2>Patrons</h2>
<form method="post" action="/login?qurl=${encodeURIComponent(safeNext)}"><ul>${buttons}</ul>
<p><label>Or any username: <input name="user" autocomplete="off"></label> <button type="submit">Sign in</button></p></form>
${staff !== '' ? `<h2>Library staff</h2>\n<form method="post" action="/login?qurl=${encodeURIComponent(`${this.#options.home ?? ''}/admin`)}" id="staff-sign-in"><ul>${staff}</ul></form>` : ''}</main></body></html>`)
  }

  async #userObject (_request: IncomingMessage, response: ServerResponse, url: URL, username: string | undefined): Promise<void> {
    const service = url.searchParams.get('service')
    if (service === 'getToken') {
      const returnUrl = url.searchParams.get('returnURL') ?? ''
      if (username === undefined) {
        response.writeHead(302, { location: `/login?qurl=${encodeURIComponent(url.pathname + url.search)}` })
        response.end()
        return
      }
      // EZproxy redirects only to RedirectSafe hosts: here, itself and the service behind it
      if (!this.#redirectSafe(returnUrl)) {
        response.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' })
        response.end('returnURL is missing or its host is not RedirectSafe\n')
        return
      }
      const token = randomBytes(16).toString('hex')
      this.tokens.set(token, { username, expires: Date.now() + 60_000 })
      const tokenUrl = `${this.#url}/userObject?token=${token}`
      const separator = returnUrl.includes('?') ? '&' : '?'
      response.writeHead(302, { location: `${returnUrl}${separator}token=${encodeURIComponent(tokenUrl)}` })
      response.end()
      return
    }
    if (service === 'getUserObject') {
      if (this.userObjectDown) {
        response.destroy()
        return
      }
      const token = url.searchParams.get('token') ?? ''
      const entry = this.tokens.get(token)
      const wskeyOk = this.#options.wskey !== undefined && url.searchParams.get('wskey') === this.#options.wskey
      response.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' })
      if (!wskeyOk || entry === undefined || entry.expires < Date.now()) {
        response.end('<?xml version="1.0"?><userObjectResponse><serviceStatus>INVALID</serviceStatus></userObjectResponse>')
        return
      }
      this.tokens.delete(token)
      const user = this.#options.users.find(u => u.primaryId === entry.username)
      response.end(`<?xml version="1.0"?><userObjectResponse><serviceStatus>OK</serviceStatus><userDocument><uid>${escape(entry.username)}</uid><forename>${escape(user?.firstName ?? '')}</forename><surname>${escape(user?.lastName ?? '')}</surname><email>${escape(user?.email ?? '')}</email></userDocument></userObjectResponse>`)
      return
    }
    response.writeHead(400, { 'content-type': 'text/plain' })
    response.end('unknown service\n')
  }

  #redirectSafe (target: string): boolean {
    try {
      const origin = new URL(target).origin
      return origin === new URL(this.#url).origin || origin === new URL(this.#options.target).origin
    } catch {
      return false
    }
  }

  /**
   * Asks the service to end its own session for this browser (GET logout, as the patron's "Sign out" link does) and
   * returns the cookies it set, to pass on. Nothing when the service has no such page or cannot be reached.
   */
  async #serviceLogout (request: IncomingMessage, username: string): Promise<string[]> {
    const target = new URL(this.#options.target)
    const headers = this.#upstreamHeaders(request, username)
    delete headers['content-length']
    delete headers['content-type']
    delete headers['transfer-encoding']
    return await new Promise<string[]>(resolve => {
      const upstream = httpRequest({ host: target.hostname, port: target.port, method: 'GET', path: '/logout', headers, localAddress: this.#options.localAddress }, (answer) => {
        answer.resume()
        answer.on('end', () => { resolve(answer.statusCode !== undefined && answer.statusCode < 400 ? answer.headers['set-cookie'] ?? [] : []) })
      })
      upstream.setTimeout(5000, () => { upstream.destroy() })
      upstream.on('error', () => { resolve([]) })
      upstream.end()
    })
  }

  /** The request's headers as the service receives them: the browser's user header and secret replaced by ours. */
  #upstreamHeaders (request: IncomingMessage, username: string): Record<string, string | string[] | undefined> {
    const target = new URL(this.#options.target)
    const headers: Record<string, string | string[] | undefined> = { ...request.headers }
    const userHeader = (this.#options.userHeader ?? 'X-EZproxy-User').toLowerCase()
    delete headers[userHeader]
    if (this.#options.secretHeader !== undefined) delete headers[this.#options.secretHeader.toLowerCase()]
    delete headers['x-forwarded-for']
    headers.host = target.host
    const cookies = [...parseCookies(request.headers.cookie)].filter(([name]) => name !== COOKIE).map(([n, v]) => `${n}=${encodeURIComponent(v)}`)
    if (cookies.length > 0) headers.cookie = cookies.join('; ')
    else delete headers.cookie
    headers[userHeader] = this.#options.userHeaderEncoding === 'base64' ? Buffer.from(username, 'utf8').toString('base64') : username
    if (this.#options.secretHeader !== undefined && this.#options.secret !== undefined) headers[this.#options.secretHeader.toLowerCase()] = this.#options.secret
    return headers
  }

  #proxy (request: IncomingMessage, response: ServerResponse, username: string): void {
    const target = new URL(this.#options.target)
    const headers = this.#upstreamHeaders(request, username)
    const upstream = httpRequest({
      host: target.hostname,
      port: target.port,
      method: request.method,
      path: request.url,
      headers,
      localAddress: this.#options.localAddress
    }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(response)
    })
    upstream.on('error', (error) => {
      if (!response.headersSent) response.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' })
      response.end(`EZproxy stand-in could not reach the service: ${error.message}\n`)
    })
    request.pipe(upstream)
  }
}
