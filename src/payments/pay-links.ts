// Pay links: staff send a patron a link that opens that patron's fines page without EZproxy, until it expires.
// The token is self-contained and signed (HMAC-SHA256), so a link can be checked without the ledger; whether it
// was revoked, and every use, are the ledger's business, keyed by the unguessable link id the check returns.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { NewPayLink } from '../ledger/types.ts'

const PREFIX = 'pl1'
/** 128 random bits, base64url without padding. */
const LINK_ID = /^[A-Za-z0-9_-]{22}$/
const TOKEN = /^pl1\.([A-Za-z0-9_-]{1,1024})\.([A-Za-z0-9_-]{43})$/
export const MAX_PAY_LINK_TTL_HOURS = 24 * 90

export interface PayLinkRequest {
  /** who the link signs in: the username the fines page is shown for */
  patronId: string
  /** the patron's Alma primary identifier, for the audit trail and the staff page */
  primaryId: string
  /** the staff username sending it; kept in the record, not in the link */
  issuedBy: string
  ttlHours: number
  /** COOKIE_SECRET; a key for pay links alone is derived from it */
  secret: string
  now?: Date
}

/** What the ledger keeps about a link it issued (revocation and the audit trail hang off `linkId`). */
export type PayLinkRecord = NewPayLink

export interface IssuedPayLink extends PayLinkRecord {
  /** the `<token>` in `/pay/<token>` */
  token: string
}

export type PayLinkRefusalReason = 'malformed' | 'tampered' | 'expired'

export type PayLinkVerification =
  | { ok: true, linkId: string, patronId: string, primaryId: string, issuedAt: Date, expiresAt: Date }
  /** linkId and expiresAt are there when the link was genuine but expired, so the page can say when */
  | { ok: false, reason: PayLinkRefusalReason, linkId?: string, expiresAt?: Date }

interface Payload { l: string, p: string, a: string, i: number, e: number }

/** Domain separation: a signature made with COOKIE_SECRET for any other purpose never passes for a pay link. */
function payLinkKey (secret: string): Buffer {
  if (secret.length < 32) throw new RangeError('the pay-link secret must be at least 32 characters')
  return createHmac('sha256', secret).update('alma-cashnet pay-link key v1').digest()
}

function sign (key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(`${PREFIX}.${payload}`).digest('base64url')
}

export function issuePayLink (request: PayLinkRequest): IssuedPayLink {
  const { patronId, primaryId, issuedBy, ttlHours } = request
  if (!Number.isInteger(ttlHours) || ttlHours < 1 || ttlHours > MAX_PAY_LINK_TTL_HOURS) {
    throw new RangeError(`ttlHours must be a whole number of hours from 1 to ${MAX_PAY_LINK_TTL_HOURS}`)
  }
  for (const [name, value] of [['patronId', patronId], ['primaryId', primaryId], ['issuedBy', issuedBy]]) {
    if (value.length === 0 || value.length > 255) throw new RangeError(`${name} must be 1 to 255 characters`)
  }
  const issuedAt = new Date(Math.floor((request.now ?? new Date()).getTime() / 1000) * 1000)
  const expiresAt = new Date(issuedAt.getTime() + ttlHours * 3600_000)
  const linkId = randomBytes(16).toString('base64url')
  const body: Payload = { l: linkId, p: patronId, a: primaryId, i: issuedAt.getTime() / 1000, e: expiresAt.getTime() / 1000 }
  const payload = Buffer.from(JSON.stringify(body)).toString('base64url')
  const token = `${PREFIX}.${payload}.${sign(payLinkKey(request.secret), payload)}`
  return { token, linkId, patronId, primaryId, issuedBy, issuedAt, expiresAt }
}

function parsePayload (payload: string): Payload | null {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
  } catch {
    return null
  }
  const v = value as Partial<Payload> | null
  if (typeof v !== 'object' || v === null) return null
  if (typeof v.l !== 'string' || !LINK_ID.test(v.l)) return null
  if (typeof v.p !== 'string' || v.p === '' || typeof v.a !== 'string' || v.a === '') return null
  if (!Number.isSafeInteger(v.i) || !Number.isSafeInteger(v.e) || (v.e as number) <= (v.i as number)) return null
  return v as Payload
}

/** Checks a `/pay/<token>` token: signed with this secret, well formed, not expired at `now`. Revocation is the caller's next check. */
export function verifyPayLink (token: unknown, secret: string, now: Date = new Date()): PayLinkVerification {
  if (typeof token !== 'string') return { ok: false, reason: 'malformed' }
  const match = TOKEN.exec(token)
  if (match === null) return { ok: false, reason: 'malformed' }
  const [, payload, mac] = match
  const expected = Buffer.from(sign(payLinkKey(secret), payload))
  const given = Buffer.from(mac)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'tampered' }
  // Signed by us, so a payload that does not parse is our own bug or an old format: call it malformed.
  const body = parsePayload(payload)
  if (body === null) return { ok: false, reason: 'malformed' }
  const expiresAt = new Date(body.e * 1000)
  if (now.getTime() >= expiresAt.getTime()) return { ok: false, reason: 'expired', linkId: body.l, expiresAt }
  return { ok: true, linkId: body.l, patronId: body.p, primaryId: body.a, issuedAt: new Date(body.i * 1000), expiresAt }
}
