// Reading CashNet's server-to-server result (SPEC section 6): field names compared case-insensitively, our
// checkout reference found in whichever refXvalN carries our reference type, every number validated, amounts
// parsed once into cents. Anything unreadable is a PostbackRejected with the reason.

import { maskFormBody } from '../../mask.ts'
import { type Cents, InvalidAmount, parseCents } from '../../money.ts'

export class PostbackRejected extends Error {
  readonly kind = 'PostbackRejected'
  constructor (readonly reason: string, readonly checkoutId: string | null = null) {
    super(`postback rejected: ${reason}`)
  }
}

export interface PostbackItem {
  itemCode: string
  amount: Cents
  qty: number
}

export interface Postback {
  result: number
  /** CashNet's card error code, '' when absent; 902 is "customer cancelled before processing payment" */
  ccerrorcode: string
  respmessage: string
  /** the CashNet transaction number; on a failure, failedtx when tx is absent */
  tx: string
  batchno: string
  effdate: string
  pmtcode: string
  custcode: string
  checkoutId: string
  items: PostbackItem[]
  total: Cents
}

/** No library fine payment comes near these; anything larger is a malformed or hostile field. */
const MAX_LINE_CENTS = 10_000_000
const MAX_TOTAL_CENTS = 10_000_000
const MAX_ITEMS = 200
const TOKEN = /^[A-Za-z0-9._-]{1,64}$/
/** What CashNet sends: plain digits, at most two decimals; no sign, exponent, grouping or "12.500". */
const AMOUNT = /^\d{1,9}(?:\.\d{1,2})?$/

export type FormBody = Record<string, unknown>

/** The fields this service reads (lower-case); anything else CashNet or a store's custom fields add is ignored. */
const KNOWN_FIELD = /^(?:result|respmessage|ccerrormessage|ccerrorcode|tx|failedtx|batchno|effdate|pmtcode|custcode|itemcnt|ref|(?:itemcode|amount|qty)\d{1,3}|ref\d{1,3}(?:type|val)\d{1,3})$/

/**
 * Lower-cases the field names. A field this service reads that is not text, or is sent twice with different
 * values, is refused; an unknown field is ignored whatever it holds.
 */
export function normaliseFields (body: FormBody): Map<string, string> {
  const fields = new Map<string, string>()
  for (const [name, raw] of Object.entries(body)) {
    const key = name.toLowerCase()
    const known = KNOWN_FIELD.test(key)
    const values = Array.isArray(raw) ? raw : [raw]
    if (values.some(v => typeof v !== 'string')) {
      if (!known) continue
      throw new PostbackRejected(`field ${key.slice(0, 40)} is not text`)
    }
    const unique = new Set((values as string[]).map(v => v.trim()))
    const value = (values[0] as string | undefined ?? '').trim()
    const existing = fields.get(key)
    if (unique.size > 1 || (existing !== undefined && existing !== value)) {
      if (!known) continue
      throw new PostbackRejected(`field ${key.slice(0, 40)} sent more than once with different values`)
    }
    fields.set(key, value)
  }
  return fields
}

/** Our checkout id: the value of any refXvalN whose refXtypeN is our reference type (not always item 1). */
export function findReference (fields: Map<string, string>, refType: string): string | null {
  const wanted = refType.toLowerCase()
  const found = new Set<string>()
  for (const [key, value] of fields) {
    const match = /^ref(\d{1,3})type(\d{1,3})$/.exec(key)
    if (match === null || value.toLowerCase() !== wanted) continue
    const reference = fields.get(`ref${match[1]}val${match[2]}`)
    if (reference !== undefined && reference !== '') found.add(reference)
  }
  if (found.size > 1) throw new PostbackRejected('the checkout reference differs between items')
  const [reference] = found
  return reference ?? null
}

function integer (fields: Map<string, string>, name: string, min: number, max: number): number | undefined {
  const value = fields.get(name)
  if (value === undefined || value === '') return undefined
  if (!/^-?\d{1,9}$/.test(value)) throw new PostbackRejected(`${name} is not a whole number`)
  const n = Number(value)
  if (n < min || n > max) throw new PostbackRejected(`${name} is out of range`)
  return n
}

function token (fields: Map<string, string>, name: string): string {
  const value = fields.get(name) ?? ''
  if (value !== '' && !TOKEN.test(value)) throw new PostbackRejected(`${name} has unexpected characters`)
  return value
}

/**
 * The checkout reference of a form body, or null when there is none or the fields are unreadable; never throws.
 * Used to key the postback's rate limit before the full parse.
 */
export function referenceOf (body: FormBody, refType: string): string | null {
  try {
    const reference = findReference(normaliseFields(body), refType)
    return reference !== null && TOKEN.test(reference) ? reference : null
  } catch {
    return null
  }
}

export function parsePostback (body: FormBody, refType: string): Postback {
  const fields = normaliseFields(body)
  const result = integer(fields, 'result', 0, 99999)
  if (result === undefined) throw new PostbackRejected('no result field')
  const checkoutId = findReference(fields, refType)
  if (checkoutId === null) throw new PostbackRejected(`no ${refType} reference in any refXtypeN/refXvalN`)
  if (!TOKEN.test(checkoutId)) throw new PostbackRejected('the checkout reference has unexpected characters')
  try {
    const itemCount = integer(fields, 'itemcnt', 0, MAX_ITEMS)
    let count = itemCount
    if (count === undefined) {
      count = 0
      while (fields.has(`amount${count + 1}`) || fields.has(`itemcode${count + 1}`)) count++
    }
    const items: PostbackItem[] = []
    let total = 0
    for (let n = 1; n <= count; n++) {
      const amountText = fields.get(`amount${n}`)
      if (amountText === undefined || amountText === '') throw new PostbackRejected(`amount${n} is missing`, checkoutId)
      if (!AMOUNT.test(amountText)) throw new PostbackRejected(`amount${n} is not an amount with at most two decimals`, checkoutId)
      const amount = parseCents(amountText)
      if (amount > MAX_LINE_CENTS) throw new PostbackRejected(`amount${n} is absurdly large`, checkoutId)
      const qty = integer(fields, `qty${n}`, 0, 1000) ?? 1
      items.push({ itemCode: fields.get(`itemcode${n}`) ?? '', amount, qty })
      total += amount
    }
    if (total > MAX_TOTAL_CENTS) throw new PostbackRejected('the total is absurdly large', checkoutId)
    const tx = token(fields, 'tx') || (result !== 0 ? token(fields, 'failedtx') : '')
    return {
      result,
      ccerrorcode: token(fields, 'ccerrorcode'),
      respmessage: (fields.get('respmessage') ?? fields.get('ccerrormessage') ?? '').slice(0, 500),
      tx: tx === '0' && result !== 0 ? '' : tx,
      batchno: token(fields, 'batchno'),
      effdate: (fields.get('effdate') ?? '').slice(0, 40),
      pmtcode: token(fields, 'pmtcode'),
      custcode: (fields.get('custcode') ?? '').slice(0, 100),
      checkoutId,
      items,
      total: total as Cents
    }
  } catch (error) {
    if (error instanceof InvalidAmount) throw new PostbackRejected(error.message, checkoutId)
    if (error instanceof PostbackRejected && error.checkoutId === null) throw new PostbackRejected(error.reason, checkoutId)
    throw error
  }
}

/**
 * Card-like digit runs never reach the ledger or a log, whatever CashNet or an attacker puts in a field: the
 * raw form body masked field by field (src/mask.ts), where a space is "+" or "%20" and a dash may be "%2D".
 */
export function maskCardNumbers (rawBody: string): string {
  return maskFormBody(rawBody)
}
