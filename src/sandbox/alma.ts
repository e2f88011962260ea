// The Alma sandbox: the Users and Fees API as Alma speaks it (XML, web_service_result errors, apikey header),
// seeded with awkward patrons. It records every call it serves and can misbehave on request: latency,
// 5xx, 429 PER_SECOND_THRESHOLD, a payment applied whose answer never arrives. Tests assert on what it recorded.

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { XMLParser } from 'fast-xml-parser'
import { Readable } from 'node:stream'
import { isDeepStrictEqual } from 'node:util'
import { type SeedBlock, type SeedFee, type SeedUser, seedUsers } from './seed.ts'
import { element, xmlEscape } from './xml-escape.ts'

export interface AlmaSandboxCall {
  method: string
  path: string
  query: Record<string, string>
  start: number
  end: number
  status: number
}

export interface SandboxTransaction {
  /** Alma's fee transaction types: a PAYMENT reduces the balance; a REFUND (money given back) may carry the same external id */
  type: 'PAYMENT' | 'REFUND'
  amountCents: number
  externalTransactionId: string
  method: string
  comment: string
  time: string
}

export interface SandboxFee extends Omit<SeedFee, 'balance' | 'original'> {
  balanceCents: number
  originalCents: number
  status: 'ACTIVE' | 'CLOSED'
  transactions: SandboxTransaction[]
}

export interface SandboxUser extends Omit<SeedUser, 'fees'> {
  fees: SandboxFee[]
}

export interface AlmaFaults {
  /** added to every answer */
  latencyMs: number
  /** answer the next N calls with this 5xx status (and an Alma error body) */
  failNext: number
  failStatus: number
  /** answer the next N calls with 429 PER_SECOND_THRESHOLD */
  throttleNext: number
  /** Alma's own per-second threshold: a call beyond it in any sliding second gets 429 */
  perSecondThreshold: number
  /** apply the next N payments, then never answer (the caller times out: the answer is lost) */
  loseNextPayAnswers: number
  /** refuse the next N calls by closing the connection without an answer */
  dropNext: number
  /** seconds sent in Retry-After with each 429 (0: no header) */
  retryAfterSeconds: number
  /** answer the next N calls with a 200 XML body of hugeBytes, produced as it is read (never held in memory) */
  hugeNext: number
  hugeBytes: number
  /** announce the huge body's size in Content-Length (true) or send it chunked, size unknown (false) */
  hugeAnnounced: boolean
  /**
   * Searching all unique identifiers (no user_id_type, or all_unique), when the value is one patron's primary id and
   * another patron's other identifier (A's primary id is B's campus id): which of them Alma answers with. Real Alma's
   * choice is not documented; 'primary-id' by default, 'other-identifier' to show what the service does otherwise.
   */
  sharedIdentifierMatch: 'primary-id' | 'other-identifier'
}

const NO_FAULTS: AlmaFaults = { latencyMs: 0, failNext: 0, failStatus: 503, throttleNext: 0, perSecondThreshold: 25, loseNextPayAnswers: 0, dropNext: 0, retryAfterSeconds: 0, hugeNext: 0, hugeBytes: 0, hugeAnnounced: true, sharedIdentifierMatch: 'primary-id' }

/** A huge answer as served: how much of it the sandbox produced before the caller stopped reading. */
export interface HugeAnswer {
  path: string
  bytes: number
  producedBytes: number
  /** the caller closed the connection before the end */
  cut: boolean
}

export interface PaymentEvent {
  userId: string
  feeId: string
  amountCents: number
  externalTransactionId: string
}

export interface ArrivingCall {
  method: string
  path: string
  query: Record<string, string>
}

export interface AlmaSandboxOptions {
  apiKey: string
  users?: SeedUser[]
  faults?: Partial<AlmaFaults>
  /** called after a payment is applied and before it is answered (tests kill the service here) */
  onPayment?: (payment: PaymentEvent) => void | Promise<void>
}

function toCents (decimal: string): number {
  const negative = decimal.startsWith('-')
  const [whole, fraction = ''] = decimal.replace('-', '').split('.')
  const cents = Number(whole) * 100 + Number((fraction + '00').slice(0, 2))
  return negative ? -cents : cents
}

function decimal (cents: number): string {
  const sign = cents < 0 ? '-' : ''
  const abs = Math.abs(cents)
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`
}

const NS = 'http://com/exlibris/urm/general/xmlbeans'
let trackingCounter = 0

/** Alma's error body: web_service_result with one error and a fresh trackingId. */
export function errorXml (code: string, message: string): string {
  trackingCounter++
  return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><web_service_result xmlns="${NS}"><errorsExist>true</errorsExist><errorList><error><errorCode>${xmlEscape(code)}</errorCode><errorMessage>${xmlEscape(message)}</errorMessage><trackingId>E01-SANDBOX-${String(trackingCounter).padStart(6, '0')}</trackingId></error></errorList></web_service_result>`
}

const compareParser = new XMLParser({ ignoreAttributes: false, parseTagValue: false, trimValues: true, isArray: (name) => name === 'user_block' })

/** The most of these times (ms) that fall within any one second: how Alma's per-second limit is judged. */
export function mostWithinOneSecond (times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b)
  let max = 0
  let from = 0
  for (let i = 0; i < sorted.length; i++) {
    while (sorted[i] - sorted[from] >= 1000) from++
    max = Math.max(max, i - from + 1)
  }
  return max
}

export class AlmaSandbox {
  readonly users = new Map<string, SandboxUser>()
  readonly calls: AlmaSandboxCall[] = []
  /** the Authorization header of every API call that arrived, accepted or not (which keys reached this Alma) */
  readonly authorizations: string[] = []
  /** every PUT of a user whose non-block fields differed from what Alma had: must stay empty */
  readonly putViolations: Array<{ userId: string, detail: string }> = []
  /** every huge answer served (faults.hugeNext) */
  readonly hugeAnswers: HugeAnswer[] = []
  faults: AlmaFaults
  onPayment?: (payment: PaymentEvent) => void | Promise<void>
  /** called as each call arrives, before it is served; 'drop' closes the connection without serving it */
  beforeCall?: (call: ArrivingCall) => 'drop' | undefined | Promise<'drop' | undefined>
  readonly #apiKey: string
  readonly #app: FastifyInstance
  #url = ''
  readonly #pending = new Set<() => void>()
  readonly #starts: number[] = []
  #holdingPayments = false
  readonly #heldPayments = new Set<() => void>()

  constructor (options: AlmaSandboxOptions) {
    this.#apiKey = options.apiKey
    this.faults = { ...NO_FAULTS, ...options.faults }
    this.onPayment = options.onPayment
    for (const seed of options.users ?? seedUsers()) this.addUser(seed)
    this.#app = Fastify({ logger: false, forceCloseConnections: true })
    this.#app.addContentTypeParser(['application/xml', 'text/xml'], { parseAs: 'string', bodyLimit: 10 * 1024 * 1024 }, (_req, body, done) => { done(null, body) })
    this.#routes()
  }

  get url (): string { return this.#url }
  get baseUrl (): string { return `${this.#url}/almaws/v1` }

  async start (port = 0, host = '127.0.0.1'): Promise<string> {
    const address = await this.#app.listen({ port, host })
    this.#url = address
    return address
  }

  async close (): Promise<void> {
    for (const release of this.#pending) release()
    await this.#app.close()
  }

  addUser (seed: SeedUser): SandboxUser {
    const user: SandboxUser = {
      ...seed,
      identifiers: seed.identifiers.map(i => ({ ...i })),
      blocks: seed.blocks.map(b => ({ ...b })),
      fees: seed.fees.map(f => ({
        ...f,
        balanceCents: toCents(f.balance),
        originalCents: toCents(f.original ?? f.balance),
        status: 'ACTIVE',
        transactions: []
      }))
    }
    this.users.set(user.primaryId, user)
    return user
  }

  reset (): void {
    this.calls.length = 0
    this.putViolations.length = 0
    this.hugeAnswers.length = 0
    this.faults = { ...NO_FAULTS }
    this.users.clear()
    for (const seed of seedUsers()) this.addUser(seed)
  }

  /**
   * The user an API path names, as Alma finds them. Without `idType` (no user_id_type) Alma's default applies,
   * all_unique: the primary id or any identifier, whatever its type; with another type (UNIV_ID, BARCODE…) an
   * identifier of that type only, never a primary id. A value that is one patron's primary id and another's
   * identifier answers as faults.sharedIdentifierMatch says.
   */
  findUser (id: string, idType?: string): SandboxUser | undefined {
    if (idType !== undefined && idType !== 'all_unique') return this.#withIdentifier(id, idType)
    const byPrimaryId = this.users.get(id)
    // the primary id wins unless told otherwise: then no other user need be looked for (a scan of every user on
    // every call made the sandbox a third of the bench machine's CPU with 10,000 patrons)
    if (byPrimaryId !== undefined && this.faults.sharedIdentifierMatch !== 'other-identifier') return byPrimaryId
    return this.#withIdentifier(id) ?? byPrimaryId
  }

  /** The first user with an identifier of this value (and type, when given). */
  #withIdentifier (value: string, type?: string): SandboxUser | undefined {
    for (const user of this.users.values()) {
      if (user.identifiers.some(i => i.value === value && (type === undefined || i.type === type))) return user
    }
    return undefined
  }

  fee (feeId: string): SandboxFee {
    for (const user of this.users.values()) {
      const found = user.fees.find(f => f.id === feeId)
      if (found !== undefined) return found
    }
    throw new Error(`sandbox: no fee ${feeId}`)
  }

  /** A payment taken at the circulation desk, in cents (the desk's own method, no external id). */
  payAtDesk (feeId: string, cents: number): void {
    const fee = this.fee(feeId)
    this.#apply(fee, cents, '', 'CASH', 'paid at the desk')
  }

  /** Staff closed (waived) the fee meanwhile. */
  closeFee (feeId: string): void {
    const fee = this.fee(feeId)
    fee.balanceCents = 0
    fee.status = 'CLOSED'
  }

  /**
   * From now on every op=pay call waits, unapplied and unanswered, until releasePayments(): Alma slow to record a
   * payment, for exactly as long as a test needs (no timing luck). The caller's ALMA_TIMEOUT_MS still applies.
   */
  holdPayments (): void {
    this.#holdingPayments = true
  }

  /** Lets every held op=pay call go on (applied and answered, unless its caller gave up) and stops holding. */
  releasePayments (): void {
    this.#holdingPayments = false
    for (const release of [...this.#heldPayments]) release()
  }

  /** op=pay calls waiting at the hold right now. */
  get heldPayments (): number {
    return this.#heldPayments.size
  }

  /**
   * A refund recorded on a fee in Alma with an external transaction id (as a library does when CashNet money is
   * given back): a REFUND transaction, not a payment; the balance is unchanged.
   */
  refundOnFee (feeId: string, cents: number, externalTransactionId: string): void {
    const fee = this.fee(feeId)
    fee.transactions.push({ type: 'REFUND', amountCents: cents, externalTransactionId, method: 'ONLINE', comment: 'refund', time: new Date().toISOString() })
  }

  /** Payments Alma recorded with an external transaction id, the thing the tests compare. */
  paymentsFor (externalTransactionId: string): Array<{ feeId: string, amountCents: number }> {
    const found: Array<{ feeId: string, amountCents: number }> = []
    for (const user of this.users.values()) {
      for (const fee of user.fees) {
        for (const t of fee.transactions) {
          if (t.type === 'PAYMENT' && t.externalTransactionId === externalTransactionId) found.push({ feeId: fee.id, amountCents: t.amountCents })
        }
      }
    }
    return found
  }

  allExternalPayments (): Array<{ feeId: string, amountCents: number, externalTransactionId: string }> {
    const found: Array<{ feeId: string, amountCents: number, externalTransactionId: string }> = []
    for (const user of this.users.values()) {
      for (const fee of user.fees) {
        for (const t of fee.transactions) {
          if (t.type === 'PAYMENT' && t.externalTransactionId !== '') found.push({ feeId: fee.id, amountCents: t.amountCents, externalTransactionId: t.externalTransactionId })
        }
      }
    }
    return found
  }

  /** The most calls that started within any one second. */
  maxCallsInAnySecond (): number {
    return mostWithinOneSecond(this.calls.map(c => c.start))
  }

  #apply (fee: SandboxFee, cents: number, externalTransactionId: string, method: string, comment: string): void {
    fee.balanceCents -= cents
    if (fee.balanceCents <= 0) {
      fee.balanceCents = 0
      fee.status = 'CLOSED'
    }
    fee.transactions.push({ type: 'PAYMENT', amountCents: cents, externalTransactionId, method, comment, time: new Date().toISOString() })
  }

  /** The user as Alma's Users API returns it; `brief` is Alma's view=brief: core fields, emails, identifiers, statistics. */
  userXml (user: SandboxUser, expandFees: boolean, brief = false): string {
    const ids = user.identifiers.map(i => `<user_identifier segment_type="External"><id_type desc="${xmlEscape(i.type)}">${xmlEscape(i.type)}</id_type><value>${xmlEscape(i.value)}</value><status>ACTIVE</status></user_identifier>`).join('')
    const blocks = user.blocks.map(blockXml).join('')
    const email = user.email === '' ? '<emails/>' : `<emails><email preferred="true" segment_type="External"><email_address>${xmlEscape(user.email)}</email_address><email_types><email_type desc="Personal">personal</email_type></email_types></email></emails>`
    const balance = user.fees.filter(f => f.status === 'ACTIVE').reduce((s, f) => s + f.balanceCents, 0)
    return '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
      '<user link="' + xmlEscape(`${this.baseUrl}/users/${user.primaryId}`) + '">' +
      '<record_type desc="Public">PUBLIC</record_type>' +
      element('primary_id', user.primaryId) +
      element('first_name', user.firstName) + '<middle_name/>' + element('last_name', user.lastName) +
      element('full_name', `${user.firstName} ${user.lastName}`) +
      `<user_group desc="${xmlEscape(user.userGroup)}">${xmlEscape(user.userGroup)}</user_group>` +
      '<preferred_language desc="English">en</preferred_language><expiry_date>2030-06-30Z</expiry_date>' +
      '<account_type desc="External">EXTERNAL</account_type><external_id>SIS</external_id>' +
      '<status desc="Active">ACTIVE</status>' +
      (brief
        ? `<contact_info>${email}</contact_info><user_identifiers>${ids}</user_identifiers><user_statistics/>`
        : `<contact_info><addresses><address preferred="true" segment_type="External"><line1>1 Campus Drive</line1><city>Springfield</city><address_types><address_type desc="Home">home</address_type></address_types></address></addresses>${email}<phones/></contact_info>` +
          `<user_identifiers>${ids}</user_identifiers>` +
          '<user_roles><user_role><status desc="Active">ACTIVE</status><scope desc="Main Campus">MAIN_CAMPUS</scope><role_type desc="Patron">200</role_type></user_role></user_roles>' +
          `<user_blocks>${blocks}</user_blocks>` +
          '<user_notes/><user_statistics/><proxy_for_users/>') +
      (expandFees ? `<fees currency="USD" link="${xmlEscape(`${this.baseUrl}/users/${user.primaryId}/fees`)}">${decimal(balance)}</fees>` : '') +
      '</user>'
  }

  feeXml (user: SandboxUser, fee: SandboxFee): string {
    const transactions = fee.transactions.map(t =>
      `<transaction><type desc="${t.type === 'PAYMENT' ? 'Payment' : 'Refund'}">${t.type}</type><amount>${decimal(t.amountCents)}</amount><vat_amount>0.0</vat_amount>` +
      `<transaction_time>${t.time}</transaction_time><payment_method desc="${xmlEscape(t.method)}">${xmlEscape(t.method)}</payment_method>` +
      element('external_transaction_id', t.externalTransactionId) + '<created_by>exl_api</created_by>' + element('comment', t.comment) + '</transaction>').join('')
    return `<fee link="${xmlEscape(`${this.baseUrl}/users/${user.primaryId}/fees/${fee.id}`)}">` +
      element('id', fee.id) +
      `<type desc="${xmlEscape(fee.typeDesc)}">${xmlEscape(fee.type)}</type>` +
      `<status desc="${fee.status === 'ACTIVE' ? 'Active' : 'Closed'}">${fee.status}</status>` +
      `<user_primary_id link="${xmlEscape(`${this.baseUrl}/users/${user.primaryId}`)}">${xmlEscape(user.primaryId)}</user_primary_id>` +
      (fee.currency !== undefined ? `<balance currency="${fee.currency}">${decimal(fee.balanceCents)}</balance>` : `<balance>${decimal(fee.balanceCents)}</balance>`) +
      '<remaining_vat_amount>0.0</remaining_vat_amount>' +
      `<original_amount>${decimal(fee.originalCents)}</original_amount><original_vat_amount>0.0</original_vat_amount>` +
      element('creation_time', fee.created) + element('status_time', fee.created) +
      element('comment', fee.comment ?? '') +
      `<owner desc="${xmlEscape(fee.ownerDesc)}">${xmlEscape(fee.owner)}</owner>` +
      element('title', fee.title) +
      (fee.barcode === '' ? '' : `<barcode link="${xmlEscape(`${this.baseUrl}/items?item_barcode=${fee.barcode}`)}">${xmlEscape(fee.barcode)}</barcode>`) +
      (transactions === '' ? '' : `<transactions>${transactions}</transactions>`) +
      '</fee>'
  }

  #fail (reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
    return reply.code(status).type('application/xml;charset=UTF-8').send(errorXml(code, message))
  }

  #routes (): void {
    const app = this.#app
    app.addHook('onRequest', async (request) => {
      const now = Date.now()
      ;(request as any).sandboxStart = now
      if (request.url.startsWith('/almaws/')) {
        this.authorizations.push(String(request.headers.authorization ?? ''))
        while (this.#starts.length > 0 && this.#starts[0] <= now - 1000) this.#starts.shift()
        ;(request as any).sandboxRecent = this.#starts.length
        this.#starts.push(now)
      }
    })
    app.addHook('onResponse', async (request, reply) => {
      this.#record(request, (request as any).sandboxUnanswered === true ? 0 : reply.statusCode)
    })
    app.addHook('preHandler', async (request, reply) => {
      if (!request.url.startsWith('/almaws/')) return
      const recent = (request as any).sandboxRecent as number
      if (this.beforeCall !== undefined) {
        const url = new URL(request.url, 'http://sandbox')
        const verdict = await this.beforeCall({ method: request.method, path: url.pathname, query: Object.fromEntries(url.searchParams) })
        if (verdict === 'drop') {
          this.#unanswered(request)
          request.raw.socket.destroy()
          return await reply
        }
      }
      if (this.faults.latencyMs > 0) await this.#sleep(this.faults.latencyMs)
      if (this.faults.dropNext > 0) {
        this.faults.dropNext--
        this.#unanswered(request)
        request.raw.socket.destroy()
        return await reply
      }
      if (request.headers.authorization !== `apikey ${this.#apiKey}`) {
        return this.#fail(reply, 401, 'UNAUTHORIZED', 'API-key not defined or not configured to allow this API.')
      }
      if (this.faults.throttleNext > 0 || recent >= this.faults.perSecondThreshold) {
        if (this.faults.throttleNext > 0) this.faults.throttleNext--
        if (this.faults.retryAfterSeconds > 0) reply.header('retry-after', String(this.faults.retryAfterSeconds))
        return this.#fail(reply, 429, 'PER_SECOND_THRESHOLD', 'HTTP requests are more than allowed per second')
      }
      if (this.faults.failNext > 0) {
        this.faults.failNext--
        return this.#fail(reply, this.faults.failStatus, '60101', 'General Error: An error has occurred while processing the request.')
      }
      if (this.faults.hugeNext > 0) {
        this.faults.hugeNext--
        return this.#huge(request, reply)
      }
    })

    const userFor = (request: FastifyRequest, reply: FastifyReply): SandboxUser | undefined => {
      const id = (request.params as { userId: string }).userId
      const idType = (request.query as Record<string, string | undefined>).user_id_type
      const user = this.findUser(id, idType === '' ? undefined : idType)
      if (user === undefined) {
        this.#fail(reply, 400, '401861', `User with identifier ${id} was not found.`)
      }
      return user
    }

    app.get('/almaws/v1/users/:userId', async (request, reply) => {
      const user = userFor(request, reply)
      if (user === undefined) return reply
      const query = request.query as Record<string, string>
      const expand = String(query.expand ?? '')
      return reply.type('application/xml;charset=UTF-8').send(this.userXml(user, expand.split(',').includes('fees'), query.view === 'brief'))
    })

    app.put('/almaws/v1/users/:userId', async (request, reply) => {
      const user = userFor(request, reply)
      if (user === undefined) return reply
      const body = String(request.body ?? '')
      let incoming: any
      try {
        incoming = compareParser.parse(body, true)?.user
      } catch {
        return this.#fail(reply, 400, '401666', 'Request body is not valid XML.')
      }
      if (incoming === undefined) return this.#fail(reply, 400, '401666', 'No user in the request body.')
      const current = compareParser.parse(this.userXml(user, false)).user
      const strip = (u: any): any => {
        const copy = { ...u }
        delete copy.user_blocks
        delete copy.fees
        delete copy.loans
        delete copy.requests
        return copy
      }
      if (!isDeepStrictEqual(strip(incoming), strip(current))) {
        this.putViolations.push({ userId: user.primaryId, detail: 'fields other than user_blocks changed' })
        return this.#fail(reply, 400, '401666', 'Only user_blocks were expected to change (sandbox check).')
      }
      const blocks = incoming.user_blocks?.user_block ?? []
      user.blocks = (blocks as any[]).map((b): SeedBlock => ({
        type: String(b.block_type?.['#text'] ?? b.block_type ?? ''),
        typeDesc: String(b.block_type?.['@_desc'] ?? ''),
        code: String(b.block_description?.['#text'] ?? b.block_description ?? ''),
        codeDesc: String(b.block_description?.['@_desc'] ?? ''),
        status: b.block_status === 'INACTIVE' ? 'INACTIVE' : 'ACTIVE',
        note: String(b.block_note ?? '')
      }))
      return reply.type('application/xml;charset=UTF-8').send(this.userXml(user, false))
    })

    app.get('/almaws/v1/users/:userId/fees', async (request, reply) => {
      const user = userFor(request, reply)
      if (user === undefined) return reply
      const status = String((request.query as Record<string, string>).status ?? 'ACTIVE').toUpperCase()
      const fees = user.fees.filter(f => status === 'ALL' || f.status === status)
      const sum = fees.reduce((s, f) => s + f.balanceCents, 0)
      return reply.type('application/xml;charset=UTF-8').send(
        `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><fees total_record_count="${fees.length}" total_sum="${decimal(sum)}" currency="USD">${fees.map(f => this.feeXml(user, f)).join('')}</fees>`)
    })

    app.get('/almaws/v1/users/:userId/fees/:feeId', async (request, reply) => {
      const user = userFor(request, reply)
      if (user === undefined) return reply
      const fee = user.fees.find(f => f.id === (request.params as { feeId: string }).feeId)
      if (fee === undefined) return this.#fail(reply, 400, '401665', 'Fine not found.')
      return reply.type('application/xml;charset=UTF-8').send('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + this.feeXml(user, fee))
    })

    app.post('/almaws/v1/users/:userId/fees/:feeId', async (request, reply) => {
      const user = userFor(request, reply)
      if (user === undefined) return reply
      const fee = user.fees.find(f => f.id === (request.params as { feeId: string }).feeId)
      if (fee === undefined) return this.#fail(reply, 400, '401665', 'Fine not found.')
      const query = request.query as Record<string, string>
      if (query.op !== 'pay') return this.#fail(reply, 400, '401666', `Parameter op is not valid: ${query.op ?? ''}`)
      if (this.#holdingPayments) {
        let gone = false
        reply.raw.once('close', () => { gone = true })
        await new Promise<void>(resolve => {
          const release = (): void => { this.#heldPayments.delete(release); this.#pending.delete(release); resolve() }
          this.#heldPayments.add(release)
          this.#pending.add(release)
        })
        // a caller that gave up while held never reached Alma's processing: nothing applied, nothing answered
        if (gone || request.raw.socket?.destroyed === true) {
          this.#unanswered(request)
          return await reply
        }
      }
      if (!['CREDIT_CARD', 'ONLINE', 'CASH'].includes(query.method)) return this.#fail(reply, 400, '401666', 'Parameter method is not valid.')
      if (!/^\d+(\.\d{1,2})?$/.test(query.amount ?? '')) return this.#fail(reply, 400, '401666', 'Parameter amount is not valid.')
      const cents = toCents(query.amount)
      if (fee.status !== 'ACTIVE') return this.#fail(reply, 400, '401666', 'Fine is not active.')
      if (cents <= 0 || cents > fee.balanceCents) return this.#fail(reply, 400, '401666', 'Parameter amount is not valid: more than the balance.')
      this.#apply(fee, cents, query.external_transaction_id ?? '', query.method, query.comment ?? '')
      await this.onPayment?.({ userId: user.primaryId, feeId: fee.id, amountCents: cents, externalTransactionId: query.external_transaction_id ?? '' })
      if (this.faults.loseNextPayAnswers > 0) {
        this.faults.loseNextPayAnswers--
        // The payment is applied; the answer never comes. The caller's timeout fires; the socket is then dropped.
        await new Promise<void>(resolve => {
          const release = (): void => { this.#pending.delete(release); resolve() }
          this.#pending.add(release)
          request.raw.on('close', release)
        })
        this.#unanswered(request)
        request.raw.socket?.destroy()
        return await reply
      }
      return reply.type('application/xml;charset=UTF-8').send('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + this.feeXml(user, fee))
    })

    app.setNotFoundHandler(async (request, reply) => {
      return this.#fail(reply, 400, '402119', `No API at ${request.method} ${request.url.split('?')[0]}`)
    })
  }

  /** A well-formed user document of faults.hugeBytes, its padding produced chunk by chunk as the caller reads. */
  #huge (request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const head = Buffer.from('<?xml version="1.0" encoding="UTF-8"?><user><primary_id>huge</primary_id><user_note>')
    const tail = Buffer.from('</user_note></user>')
    const padding = Buffer.alloc(64 * 1024, 'x')
    const bytes = Math.max(this.faults.hugeBytes, head.length + tail.length)
    const answer: HugeAnswer = { path: new URL(request.url, 'http://sandbox').pathname, bytes, producedBytes: 0, cut: false }
    this.hugeAnswers.push(answer)
    let left = bytes - head.length - tail.length
    const body = new Readable({
      read () {
        let chunk: Buffer | null
        if (answer.producedBytes === 0) chunk = head
        else if (left > 0) {
          chunk = left >= padding.length ? padding : padding.subarray(0, left)
          left -= chunk.length
        } else chunk = answer.producedBytes < bytes ? tail : null
        if (chunk !== null) answer.producedBytes += chunk.length
        this.push(chunk)
      }
    })
    reply.raw.once('close', () => { answer.cut = answer.producedBytes < bytes || !reply.raw.writableFinished })
    if (this.faults.hugeAnnounced) reply.header('content-length', String(bytes))
    return reply.type('application/xml;charset=UTF-8').send(body)
  }

  #record (request: FastifyRequest, status: number): void {
    if ((request as any).sandboxRecorded === true) return
    const url = new URL(request.url, 'http://sandbox')
    if (!url.pathname.startsWith('/almaws/')) return
    ;(request as any).sandboxRecorded = true
    this.calls.push({ method: request.method, path: url.pathname, query: Object.fromEntries(url.searchParams), start: (request as any).sandboxStart, end: Date.now(), status })
  }

  /** A call served without an answer (dropped, or its answer lost): recorded with status 0. */
  #unanswered (request: FastifyRequest): void {
    ;(request as any).sandboxUnanswered = true
    this.#record(request, 0)
  }

  /** Lets other sandbox modules (Analytics) add routes before start(). */
  get app (): FastifyInstance { return this.#app }

  async #sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { this.#pending.delete(release); resolve() }, ms)
      const release = (): void => { clearTimeout(timer); resolve() }
      this.#pending.add(release)
    })
  }
}

function blockXml (b: SeedBlock): string {
  return '<user_block segment_type="External">' +
    `<block_type desc="${xmlEscape(b.typeDesc)}">${xmlEscape(b.type)}</block_type>` +
    `<block_description desc="${xmlEscape(b.codeDesc)}">${xmlEscape(b.code)}</block_description>` +
    `<block_status>${b.status}</block_status>` + element('block_note', b.note) +
    '<created_by>circ_desk</created_by><created_date>2026-09-01Z</created_date>' +
    '</user_block>'
}
