// The CashNet sandbox: a hosted checkout page at a store URL that shows the lines and total with Pay, Decline and
// Cancel; on each it sends the server-to-server postback like CashNet (form-encoded, references echoed) and then
// sends the browser to signouturl. It misbehaves on request: postback twice, late, not at all, with the
// reference on item 2 only, with upper-case field names, with an amount changed on the way.

import Fastify, { type FastifyInstance } from 'fastify'
import formbody from '@fastify/formbody'
import { request as httpRequest } from 'node:http'
import { randomBytes } from 'node:crypto'
import { xmlEscape as escape } from './xml-escape.ts'

export interface CashnetBehaviour {
  /** how the browser goes back: 303 GET with the fields appended, an auto-submitted POST, or no fields at all */
  returnMode: 'get' | 'post' | 'bare'
  duplicatePostback: boolean
  /** send the postback only after the browser was sent back, this many ms later */
  latePostbackMs: number
  noPostback: boolean
  /** put the checkout reference on item 2 only (PSU saw this) */
  referenceOnItem2: boolean
  upperCaseFields: boolean
  /** change amount1 by this many cents in the postback (tampering on the way) */
  tamperAmount1Cents: number
  /** result code for Decline */
  declineCode: number
}

const DEFAULT_BEHAVIOUR: CashnetBehaviour = {
  returnMode: 'get', duplicatePostback: false, latePostbackMs: 0, noPostback: false, referenceOnItem2: false, upperCaseFields: false, tamperAmount1Cents: 0, declineCode: 209
}

export interface CashnetSandboxOptions {
  store: string
  /** where the server-to-server postback goes */
  postbackUrl: string
  /** local address the postback is sent from (must be in CASHNET_POSTBACK_ALLOW) */
  postbackFrom?: string
  behaviour?: Partial<CashnetBehaviour>
}

interface Session {
  id: string
  fields: Map<string, string>
  finished: boolean
}

export interface SentPostback {
  fields: Record<string, string>
  status: number
  body: string
}

let txCounter = 810000

function decimal (cents: number): string {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`
}

export class CashnetSandbox {
  behaviour: CashnetBehaviour
  readonly sent: SentPostback[] = []
  /** checkout pages CashNet was asked for (POST or GET of the store), valid or not: tests assert none was */
  requested = 0
  readonly #options: CashnetSandboxOptions
  readonly #sessions = new Map<string, Session>()
  readonly #app: FastifyInstance
  readonly #late = new Set<NodeJS.Timeout>()
  #url = ''

  constructor (options: CashnetSandboxOptions) {
    this.#options = options
    this.behaviour = { ...DEFAULT_BEHAVIOUR, ...options.behaviour }
    this.#app = Fastify({ logger: false, forceCloseConnections: true })
    this.#app.register(formbody)
    this.#routes()
  }

  get url (): string { return this.#url }
  /** what CASHNET_CHECKOUT_URL points at */
  get checkoutUrl (): string { return `${this.#url}/${this.#options.store}` }

  setPostbackUrl (url: string): void { this.#options.postbackUrl = url }

  async start (port = 0, host = '127.0.0.1'): Promise<string> {
    this.#url = await this.#app.listen({ port, host })
    return this.#url
  }

  async close (): Promise<void> {
    for (const timer of this.#late) clearTimeout(timer)
    await this.#app.close()
  }

  /** Sends a postback with exactly these fields, as CashNet would (tests of hostile or odd postbacks). */
  async sendPostback (fields: Record<string, string>): Promise<SentPostback> {
    const body = new URLSearchParams(fields).toString()
    const target = new URL(this.#options.postbackUrl)
    const answer = await new Promise<{ status: number, body: string }>((resolve, reject) => {
      const req = httpRequest({
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method: 'POST',
        localAddress: this.#options.postbackFrom,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) }
      }, (res) => {
        let text = ''
        res.on('data', (c) => { text += String(c) })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: text }) })
      })
      req.setTimeout(10000, () => { req.destroy(new Error('postback timed out')) })
      req.on('error', reject)
      req.end(body)
    }).catch((error: Error) => ({ status: 0, body: error.message }))
    const sent = { fields, ...answer }
    this.sent.push(sent)
    return sent
  }

  /** The result fields CashNet would send for this session and outcome. */
  resultFields (session: Session, action: 'pay' | 'decline' | 'cancel'): Record<string, string> {
    const b = this.behaviour
    const out: Record<string, string> = {}
    const count = Number(session.fields.get('itemcnt') ?? '0')
    const result = action === 'pay' ? '0' : action === 'cancel' ? '902' : String(b.declineCode)
    out.result = result
    out.respmessage = action === 'pay' ? 'SUCCESS' : action === 'cancel' ? 'Customer Cancelled before processing payment' : 'Credit card error: the card was declined'
    out.merchant = this.#options.store
    out.custcode = session.fields.get('custcode') ?? ''
    out.lname = 'LIBRARY'
    out.itemcnt = String(count)
    txCounter++
    if (action === 'pay') {
      out.tx = String(txCounter)
      out.batchno = '4242'
      out.effdate = new Date().toISOString().slice(0, 10)
      out.pmtcode = 'CC'
      out.pmttype = 'VI'
    } else {
      out.failedtx = action === 'cancel' ? '0' : String(txCounter)
      if (action === 'cancel') out.ccerrorcode = '902'
    }
    for (let n = 1; n <= count; n++) {
      out[`itemcode${n}`] = session.fields.get(`itemcode${n}`) ?? ''
      let cents = Math.round(Number(session.fields.get(`amount${n}`) ?? '0') * 100)
      if (n === 1) cents += b.tamperAmount1Cents
      out[`amount${n}`] = decimal(cents)
      out[`qty${n}`] = session.fields.get(`qty${n}`) ?? '1'
      out[`gl${n}`] = '000000'
    }
    for (const [key, value] of session.fields) {
      if (/^ref\d+(type|val)\d+$/.test(key) && !(b.referenceOnItem2 && count >= 2)) out[key] = value
      if (key.endsWith('_g')) out[key.toUpperCase()] = value
    }
    if (b.referenceOnItem2 && count >= 2) {
      out.ref1type2 = session.fields.get('ref1type1') ?? ''
      out.ref1val2 = session.fields.get('ref1val1') ?? ''
    }
    if (!b.upperCaseFields) return out
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k.toUpperCase(), v]))
  }

  #routes (): void {
    const app = this.#app
    const open = async (request: any, reply: any): Promise<unknown> => {
      this.requested++
      if (request.params.store !== this.#options.store) return reply.code(404).type('text/html').send('<h1>Error 702: improper merchant code</h1>')
      const source = { ...(request.query ?? {}), ...(request.body ?? {}) } as Record<string, string>
      const fields = new Map(Object.entries(source).map(([k, v]) => [k.toLowerCase(), String(v)]))
      const count = Number(fields.get('itemcnt') ?? '1')
      const problems: string[] = []
      let total = 0
      for (let n = 1; n <= count; n++) {
        const amount = fields.get(`amount${n}`) ?? ''
        if (!/^\d+\.\d{2}$/.test(amount)) problems.push(`amount${n} is not an amount with two decimals`)
        else if (Number(amount) <= 0) problems.push(`amount${n}: error 5, negative or zero amount`)
        else total += Math.round(Number(amount) * 100)
        if ((fields.get(`itemcode${n}`) ?? '') === '') problems.push(`itemcode${n} is missing`)
      }
      if (problems.length > 0) return reply.code(400).type('text/html; charset=utf-8').send(`<!doctype html><title>CashNet error</title><h1>CashNet sandbox: checkout refused</h1><ul>${problems.map(p => `<li>${escape(p)}</li>`).join('')}</ul>`)
      const session: Session = { id: randomBytes(8).toString('hex'), fields, finished: false }
      this.#sessions.set(session.id, session)
      const rows: string[] = []
      for (let n = 1; n <= count; n++) rows.push(`<tr><td>${escape(fields.get(`desc${n}`) ?? fields.get(`itemcode${n}`) ?? '')}</td><td style="text-align:right">$${escape(fields.get(`amount${n}`) ?? '')}</td></tr>`)
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>CashNet sandbox checkout</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}table{width:100%;border-collapse:collapse}td,th{padding:.4rem;border-bottom:1px solid #ccc;text-align:left}.note{background:#e8f0fe;padding:.5rem 1rem;border-left:4px solid #1a56db}button{font:inherit;padding:.6rem 1.2rem;margin-right:.5rem;min-height:44px}</style></head>
<body><main><h1>CashNet sandbox checkout: ${escape(this.#options.store)}</h1>
<p class="note">The demo's stand-in for CashNet's hosted page. No card is needed: choose what the payment should do.</p>
<p>Paying as ${escape(fields.get('name_g') ?? '')} (${escape(fields.get('custcode') ?? '')})</p>
<table><thead><tr><th scope="col">Item</th><th scope="col" style="text-align:right">Amount</th></tr></thead><tbody>${rows.join('')}</tbody>
<tfoot><tr><th scope="row">Total</th><td style="text-align:right"><strong>$${decimal(total)}</strong></td></tr></tfoot></table>
<form method="post" action="${escape(this.#options.store)}/session/${session.id}">
<p><button type="submit" name="action" value="pay">Pay $${decimal(total)}</button><button type="submit" name="action" value="decline">Decline</button><button type="submit" name="action" value="cancel">Cancel</button></p>
</form></main></body></html>`)
    }
    app.get('/:store', open)
    app.post('/:store', open)

    app.post('/:store/session/:id', async (request: any, reply) => {
      const session = this.#sessions.get(request.params.id)
      const action = String(request.body?.action ?? '')
      if (session === undefined || session.finished || !['pay', 'decline', 'cancel'].includes(action)) {
        return reply.code(400).type('text/html').send('<h1>CashNet sandbox: this checkout session is over</h1>')
      }
      session.finished = true
      const fields = this.resultFields(session, action as 'pay' | 'decline' | 'cancel')
      const b = this.behaviour
      if (!b.noPostback) {
        if (b.latePostbackMs > 0) {
          const timer = setTimeout(() => {
            this.#late.delete(timer)
            void this.sendPostback(fields).then(async () => { if (b.duplicatePostback) await this.sendPostback(fields) })
          }, b.latePostbackMs)
          this.#late.add(timer)
        } else {
          await this.sendPostback(fields)
          if (b.duplicatePostback) await this.sendPostback(fields)
        }
      }
      const signout = session.fields.get('signouturl') ?? ''
      if (b.returnMode === 'bare') return reply.redirect(signout, 303)
      if (b.returnMode === 'get') {
        const url = new URL(signout)
        for (const [k, v] of Object.entries(fields)) url.searchParams.set(k, v)
        return reply.redirect(url.toString(), 303)
      }
      return reply.type('text/html; charset=utf-8').send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Returning to the library</title></head><body>
<form id="back" method="post" action="${escape(signout)}">${Object.entries(fields).map(([k, v]) => `<input type="hidden" name="${escape(k)}" value="${escape(v)}">`).join('')}
<p>Payment complete. <button type="submit">Return to the library</button></p></form>
<script>document.getElementById('back').submit()</script></body></html>`)
    })
  }
}
