// Helpers for the security tests: talk to the service directly as a chosen peer (EZproxy, CashNet, a stranger),
// keep its cookies, and read the Set-Cookie attributes the service sent.

import { type Answer, form, readForm, send } from '../helper.ts'
import type { TestStack } from '../helper.ts'

export const EZPROXY_PEER = '127.0.0.1'

/** A client that reaches the service directly from `from`, sending the EZproxy user header for `username`. */
export class DirectClient {
  readonly cookies = new Map<string, string>()
  readonly setCookies: string[] = []
  constructor (readonly stack: TestStack, readonly username: string | null, readonly from = EZPROXY_PEER, readonly extraHeaders: Record<string, string> = {}) {}

  async request (path: string, options: { method?: string, body?: string, headers?: Record<string, string> } = {}): Promise<Answer> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    const answer = await send(new URL(path, this.stack.serviceUrl + '/').toString(), {
      method: options.method,
      body: options.body,
      from: this.from,
      headers: {
        ...(this.username !== null ? { 'x-ezproxy-user': this.username } : {}),
        ...(cookie !== '' ? { cookie } : {}),
        ...this.extraHeaders,
        ...options.headers
      }
    })
    const raw = answer.headers['set-cookie']
    for (const line of Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]) {
      this.setCookies.push(line)
      const [pair] = line.split(';')
      const index = pair.indexOf('=')
      this.cookies.set(pair.slice(0, index).trim(), pair.slice(index + 1).trim())
    }
    return answer
  }

  async get (path: string, headers: Record<string, string> = {}): Promise<Answer> { return await this.request(path, { headers }) }
  async post (path: string, fields: Array<[string, string]> | Record<string, string> | string): Promise<Answer> {
    return await this.request(path, { method: 'POST', body: typeof fields === 'string' ? fields : form(fields) })
  }

  /** The fines page's CSRF token and fee checkboxes. */
  async finesForm (): Promise<{ csrf: string, fees: string[], page: Answer }> {
    const page = await this.get('/')
    const pay = readForm(page.body, 'pay-form')
    return { csrf: pay.fields.find(([k]) => k === '_csrf')?.[1] ?? '', fees: pay.checkboxes, page }
  }
}

/** The attributes of one Set-Cookie line, lower-cased names: { name, value, httponly: '', samesite: 'Lax', ... }. */
export function cookieAttributes (line: string): Record<string, string> {
  const [pair, ...rest] = line.split(';').map(s => s.trim())
  const index = pair.indexOf('=')
  const out: Record<string, string> = { name: pair.slice(0, index), value: pair.slice(index + 1) }
  for (const attribute of rest) {
    const eq = attribute.indexOf('=')
    if (eq < 0) out[attribute.toLowerCase()] = ''
    else out[attribute.slice(0, eq).toLowerCase()] = attribute.slice(eq + 1)
  }
  return out
}
