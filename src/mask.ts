// Card-number masking, one rule for every path into a log line or the ledger (SECURITY.md).
//
// What is masked: any run of 13 to 19 digits, maybe grouped by single spaces or dashes, standing on its own
// (not inside a longer run of letters and digits), Luhn-valid or not. Everything but the last four digits
// becomes '*'. Luhn is deliberately not checked: a mistyped or truncated card number (which fails Luhn) is
// still most of a real card number, one in ten random digit runs passes Luhn anyway, and the cost of masking
// a digit run that was not a card (a long tx, a 14-digit library barcode used as a username) is only that the
// log shows its last four digits. A run inside a longer token (a hex checkout id, a UUID) is not a card
// number, and masking it would break the correlation logs and the ledger are for.

import { createHmac } from 'node:crypto'

const CARD_LIKE = /(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])/g

/** Masks every card-like digit run in a text, keeping its last four digits. */
export function maskCardLike (text: string): string {
  return text.replace(CARD_LIKE, run => run.replace(/\d(?=(?:[ -]?\d){4})/g, '*'))
}

/**
 * Masks an identifier that the ledger compares (a provider's tx, a checkout reference). Masked alone, two
 * different card-like values with the same last four digits would look equal, and a second charge would pass
 * for a duplicate of the first. So a masked identifier keeps a short keyed digest of the value it hid:
 * `************1111~3f9a0c2e`. The digest (HMAC-SHA256 under the service's secret, 32 bits shown) tells two
 * values apart without letting anyone who reads the ledger try card numbers against it offline.
 */
export function maskIdentifier (value: string, key: string): string {
  const masked = maskCardLike(value)
  if (masked === value) return value
  return `${masked}~${createHmac('sha256', key).update(value).digest('hex').slice(0, 8)}`
}

/**
 * Masks a form body as received (application/x-www-form-urlencoded, or anything parsed as one): each name and
 * value is decoded ('+' and %XX), masked, and re-encoded only when something was masked, so the rest of the
 * body stays byte for byte as CashNet sent it. A part that does not decode is masked as raw text, with '+',
 * %20 and %2D read as separators.
 */
export function maskFormBody (body: string): string {
  return body.split('&').map(part => {
    const eq = part.indexOf('=')
    const pieces = eq < 0 ? [part] : [part.slice(0, eq), part.slice(eq + 1)]
    return pieces.map(maskFormPiece).join('=')
  }).join('&')
}

function maskFormPiece (piece: string): string {
  let decoded: string
  try {
    decoded = decodeURIComponent(piece.replace(/\+/g, ' '))
  } catch {
    return piece.replace(/\d(?:(?:[ +-]|%20|%2D)?\d){12,18}/gi, run => run.replace(/\d(?=(?:(?:[ +-]|%20|%2D)?\d){4})/gi, '*'))
  }
  const masked = maskCardLike(decoded)
  return masked === decoded ? piece : encodeURIComponent(masked).replace(/%20/g, '+')
}
