// Test helpers: start the whole stack (Alma sandbox, CashNet sandbox, service, EZproxy stand-in) on ephemeral
// ports with captured logs, and a small browser that keeps cookies and goes through the stand-in like a patron.

import { readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { Writable } from 'node:stream'
import type { Test } from 'tap'
import { type SeedUser, seedUsers } from '../src/sandbox/seed.ts'
import { type CampusStack, type CampusStackOptions, type Stack, type StackOptions, startCampusStack, startStack } from '../src/sandbox/stack.ts'

/** CashNet's postbacks come from here in tests; EZproxy from 127.0.0.1. Anything else is an untrusted peer. */
export const CASHNET_PEER = '127.0.0.4'
export const UNTRUSTED_PEER = '127.0.0.3'

export interface TestStack extends Stack {
  logs: string[]
  logLines: () => Array<Record<string, any>>
}

export async function build (t: Test, options: StackOptions = {}): Promise<TestStack> {
  const logs: string[] = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') logs.push(line)
      done()
    }
  })
  const stack = await startStack({
    cashnetFrom: CASHNET_PEER,
    ...options,
    env: { LOG_LEVEL: 'debug', ...options.env },
    app: { workerPollMs: 50, ...options.app, logStream: stream }
  })
  t.teardown(async () => { await stack.close() })
  return { ...stack, logs, logLines: () => logs.map(l => JSON.parse(l)) }
}

export interface TestCampusStack extends CampusStack {
  logs: string[]
  logLines: () => Array<Record<string, any>>
}

/** A system deployment (SPEC 12) in the sandbox, two campuses by default, with captured logs. */
export async function buildCampuses (t: Test, options: CampusStackOptions = {}): Promise<TestCampusStack> {
  const logs: string[] = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') logs.push(line)
      done()
    }
  })
  const stack = await startCampusStack({ ...options, env: { LOG_LEVEL: 'debug', ...options.env }, app: { workerPollMs: 50, ...options.app, logStream: stream } })
  t.teardown(async () => { await stack.close() })
  return { ...stack, logs, logLines: () => logs.map(l => JSON.parse(l)) }
}

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One HTTP request from a chosen local address (to play a trusted or untrusted peer). */
export async function send (url: string, options: { method?: string, headers?: Record<string, string>, body?: string, from?: string } = {}): Promise<Answer> {
  const target = new URL(url)
  return await new Promise<Answer>((resolve, reject) => {
    const req = httpRequest({
      host: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      method: options.method ?? 'GET',
      localAddress: options.from,
      headers: {
        ...(options.body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(options.body)) } : {}),
        ...options.headers
      }
    }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

export function form (fields: Array<[string, string]> | Record<string, string>): string {
  return new URLSearchParams(Array.isArray(fields) ? fields : Object.entries(fields)).toString()
}

/** Hidden and checkbox inputs of the first form on a page, and its action. */
export function readForm (page: string, id?: string): { action: string, fields: Array<[string, string]>, checkboxes: string[] } {
  const start = id === undefined ? page.indexOf('<form') : page.indexOf(`<form id="${id}"`)
  if (start < 0) throw new Error(`no form${id !== undefined ? ' ' + id : ''} on the page`)
  const html = page.slice(start, page.indexOf('</form>', start))
  const action = decode(/action="([^"]*)"/.exec(html)?.[1] ?? '')
  const fields: Array<[string, string]> = []
  const checkboxes: string[] = []
  for (const match of html.matchAll(/<input ([^>]*)>/g)) {
    const attrs = match[1]
    const name = decode(/name="([^"]*)"/.exec(attrs)?.[1] ?? '')
    const value = decode(/value="([^"]*)"/.exec(attrs)?.[1] ?? '')
    if (/type="hidden"/.test(attrs)) fields.push([name, value])
    if (/type="checkbox"/.test(attrs)) checkboxes.push(value)
  }
  return { action, fields, checkboxes }
}

function decode (text: string): string {
  return text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')
}

/** A patron's browser: keeps cookies per host, goes through the EZproxy stand-in, follows no redirects by itself. */
export class Browser {
  readonly #cookies = new Map<string, Map<string, string>>()
  readonly #prefix: string
  /** prefix: a campus's path (/springfield) put before every absolute path of the service (not the stand-in's /login) */
  constructor (readonly stack: Pick<Stack, 'publicUrl' | 'ezproxy'>, options: { prefix?: string } = {}) {
    this.#prefix = options.prefix ?? ''
  }

  /** Signs in on the EZproxy stand-in's login page, as a patron would. */
  async signIn (username: string): Promise<Answer> {
    return await this.request('/login?url=/', { method: 'POST', body: form({ user: username }) })
  }

  login (username: string): this {
    const [name, value] = this.stack.ezproxy.login(username).split('=')
    this.#jar(new URL(this.stack.publicUrl).host).set(name, value)
    return this
  }

  #jar (host: string): Map<string, string> {
    let jar = this.#cookies.get(host)
    if (jar === undefined) {
      jar = new Map()
      this.#cookies.set(host, jar)
    }
    return jar
  }

  async request (url: string, options: { method?: string, body?: string } = {}): Promise<Answer> {
    const path = this.#prefix !== '' && url.startsWith('/') && !url.startsWith('//') && !url.startsWith('/login') ? `${this.#prefix}${url}` : url
    const absolute = new URL(path, this.stack.publicUrl)
    const jar = this.#jar(absolute.host)
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const answer = await send(absolute.toString(), { ...options, headers: cookie !== '' ? { cookie } : {} })
    const setCookie = answer.headers['set-cookie']
    for (const line of Array.isArray(setCookie) ? setCookie : setCookie === undefined ? [] : [setCookie]) {
      const [pair] = line.split(';')
      const index = pair.indexOf('=')
      jar.set(pair.slice(0, index).trim(), pair.slice(index + 1).trim())
    }
    return answer
  }

  async get (path: string): Promise<Answer> { return await this.request(path) }
  /** GETs `path` until its page contains `text` (a posting finishing in another process), for up to 10 s: the last answer. */
  async getUntil (path: string, text: string): Promise<Answer> {
    let answer = await this.get(path)
    for (let i = 0; i < 100 && !answer.body.includes(text); i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      answer = await this.get(path)
    }
    return answer
  }

  async post (path: string, fields: Array<[string, string]> | Record<string, string>): Promise<Answer> {
    return await this.request(path, { method: 'POST', body: form(fields) })
  }

  /** Follows redirects like a browser (303/302 become GET). */
  async follow (answer: Answer, base: string, limit = 5): Promise<Answer> {
    let current = answer
    let at = base
    for (let i = 0; i < limit && current.status >= 300 && current.status < 400; i++) {
      at = new URL(String(current.headers.location), at).toString()
      current = await this.request(at)
    }
    return current
  }

  /** The fines page, the checkout with the chosen fees (all ticked ones by default), and the hand-off page. */
  async checkout (feeIds?: string[]): Promise<{ handoff: Answer, fields: Array<[string, string]>, action: string }> {
    const fines = await this.get('/')
    if (fines.status !== 200) throw new Error(`fines page answered ${fines.status}`)
    const pay = readForm(fines.body, 'pay-form')
    const chosen = feeIds ?? pay.checkboxes
    const handoff = await this.post('/checkout', [...pay.fields, ...chosen.map((id): [string, string] => ['fee', id])])
    if (handoff.status !== 200) return { handoff, fields: [], action: '' }
    const cashnetForm = readForm(handoff.body, 'cashnet-form')
    return { handoff, fields: cashnetForm.fields, action: cashnetForm.action }
  }

  /** On the CashNet sandbox page: Pay, Decline or Cancel, then back to the receipt as CashNet sends the browser. */
  async payOnCashnet (action: string, fields: Array<[string, string]>, choice: 'pay' | 'decline' | 'cancel' = 'pay'): Promise<Answer> {
    const page = await this.request(action, { method: 'POST', body: form(fields) })
    if (page.status !== 200) throw new Error(`CashNet sandbox answered ${page.status}: ${page.body.slice(0, 200)}`)
    const sessionAction = new URL(readForm(page.body).action, action).toString()
    const done = await this.request(sessionAction, { method: 'POST', body: form({ action: choice }) })
    if (done.status >= 300 && done.status < 400) return await this.follow(done, sessionAction)
    const back = readForm(done.body, 'back')
    return await this.request(back.action, { method: 'POST', body: form(back.fields) })
  }
}

/** Waits until a condition holds, checking every few milliseconds (structure, not timing: no deadline asserted). */
export async function until (condition: () => boolean | Promise<boolean>, what: string, limitMs = 15000): Promise<void> {
  const started = Date.now()
  while (!(await condition())) {
    if (Date.now() - started > limitMs) throw new Error(`gave up waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

export function checkoutIdFrom (fields: Array<[string, string]>): string {
  return fields.find(([k]) => k === 'ref1val1')?.[1] ?? ''
}

/** A port nobody listens on right now, for a service started as a child process. */
export async function freePort (): Promise<number> {
  // Below the kernel's ephemeral range: every server started on port 0 (the sandboxes, the in-process services,
  // other test files running beside this one) takes its port from that range, so one of them could take the
  // port handed out here in the second before the child process listens on it (a start that never comes).
  const low = ephemeralLow()
  for (;;) {
    const port = PORTS_FROM + Math.floor(Math.random() * (low - PORTS_FROM))
    if (handedOut.has(port)) continue
    const free = await new Promise<boolean>(resolve => {
      const server = createServer()
      server.once('error', () => { resolve(false) })
      server.listen(port, '127.0.0.1', () => { server.close(() => { resolve(true) }) })
    })
    if (!free) continue
    handedOut.add(port)
    return port
  }
}

const PORTS_FROM = 20000
const handedOut = new Set<number>()

/** The first port of the kernel's ephemeral range (Linux's default where it cannot be read). */
function ephemeralLow (): number {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (low > PORTS_FROM + 1000 && high > low) return low
  } catch {}
  return 32768
}

/**
 * A browser on the open internet (not EZproxy) that keeps its cookies, whichever host it talks to. A request made
 * `crossSite` (a page on another site sent the browser here, as CashNet's return does) carries the cookies a browser
 * would: SameSite=None ones always, Lax ones (the default when a cookie names none) on a top-level GET only, Strict
 * ones never.
 */
export class Stranger {
  cookies = new Map<string, string>()
  /** each cookie's SameSite, as its Set-Cookie line said */
  readonly sameSite = new Map<string, 'strict' | 'lax' | 'none'>()
  constructor (readonly base: string) {}
  async request (path: string, options: { method?: string, body?: string, crossSite?: boolean } = {}): Promise<Answer> {
    const { crossSite = false, ...rest } = options
    const safe = (options.method ?? 'GET') === 'GET' || options.method === 'HEAD'
    const sent = [...this.cookies].filter(([name]) => {
      if (!crossSite) return true
      const sameSite = this.sameSite.get(name) ?? 'lax'
      return sameSite === 'none' || (sameSite === 'lax' && safe)
    })
    const cookie = sent.map(([k, v]) => `${k}=${v}`).join('; ')
    const answer = await send(new URL(path, this.base).toString(), { ...rest, from: UNTRUSTED_PEER, headers: cookie === '' ? {} : { cookie } })
    const lines = answer.headers['set-cookie']
    for (const line of Array.isArray(lines) ? lines : lines === undefined ? [] : [lines]) {
      const [pair, ...attributes] = line.split(';')
      const index = pair.indexOf('=')
      const name = pair.slice(0, index)
      this.cookies.set(name, pair.slice(index + 1))
      const sameSite = attributes.map(a => a.trim().toLowerCase()).find(a => a.startsWith('samesite='))?.slice('samesite='.length)
      this.sameSite.set(name, sameSite === 'strict' || sameSite === 'none' ? sameSite : 'lax')
    }
    return answer
  }

  async get (path: string): Promise<Answer> { return await this.request(path) }
  async post (path: string, fields: Array<[string, string]>): Promise<Answer> { return await this.request(path, { method: 'POST', body: form(fields) }) }
}

/**
 * zed: a patron whose campus id (UNIV_ID, the EZproxy username with ALMA_USER_ID_TYPE=UNIV_ID) is the text of
 * alice's primary id, with one fee of their own (990001): the pay-link identity tests' two patrons behind one text.
 */
export function zedWhoseCampusIdIsAlice (): SeedUser {
  const [alice] = seedUsers()
  return {
    ...alice,
    primaryId: 'zed',
    firstName: 'Zed',
    lastName: 'Zimmermann',
    email: 'zed@example.edu',
    identifiers: [{ type: 'UNIV_ID', value: 'alice' }],
    fees: [{ ...alice.fees[0], id: '990001', title: 'Zed\'s private reading' }]
  }
}
