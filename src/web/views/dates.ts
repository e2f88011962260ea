// Dates and times on the patron's records (the payment history, receipts), in the library's time zone
// (TIMEZONE) and with the zone named, so a printed receipt says when without anyone having to guess where.

import { formatReceiptTime } from '../../payments/receipts.ts'
import { type Html, html } from '../html.ts'

/** "March 8, 2026 at 9:30 PM CDT": the instant `iso` in `timeZone`, the zone named, as the e-mailed receipt writes it. */
export function formatDateTime (iso: string, timeZone: string): string {
  const date = new Date(iso)
  return Number.isNaN(date.getTime()) ? '' : formatReceiptTime(date, timeZone)
}

/** A <time> with the full instant in `datetime` (left alone by dates.js, which localises calendar days only). */
export function dateTimeCell (iso: string, timeZone: string): Html {
  const text = formatDateTime(iso, timeZone)
  return text === '' ? html`` : html`<time datetime="${new Date(iso).toISOString()}">${text}</time>`
}
