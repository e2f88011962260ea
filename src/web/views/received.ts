// A payment's amount in a list (the patron's history, the staff list): what the provider reported collecting, and
// what was due when the two differ (src/payments/receipts.ts differencesOf), never the intended total alone.

import type { ReceivedMoney } from '../../payments/receipts.ts'
import { type Cents, formatMoney } from '../../money.ts'
import { type Html, html } from '../html.ts'

/** The amount cell's content: the total, or "received … / … due" (or "not confirmed / … due"). */
export function amountCell (total: Cents, currency: string, differs: ReceivedMoney | undefined): Html {
  if (differs === undefined) return html`${formatMoney(total, currency)}`
  const due = formatMoney(differs.due, currency)
  if (differs.difference === 'unconfirmed') return html`<span class="received">not confirmed</span><span class="fee-meta due">${due} due</span>`
  return html`<span class="received">${formatMoney(differs.received as Cents, currency)} received</span><span class="fee-meta due">${due} due</span>`
}

/** The amount in words, for a link's accessible name. */
export function amountWords (total: Cents, currency: string, differs: ReceivedMoney | undefined): string {
  if (differs === undefined) return formatMoney(total, currency)
  const due = formatMoney(differs.due, currency)
  return differs.difference === 'unconfirmed' ? `${due} due, amount received not confirmed` : `${formatMoney(differs.received as Cents, currency)} received of ${due} due`
}
