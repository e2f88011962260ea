// GET /history: the signed-in patron's own payments, newest first, each with its receipt.

import type { Checkout, CheckoutState } from '../../ledger/types.ts'
import type { ReceivedMoney } from '../../payments/receipts.ts'
import { providerOf } from '../../payments/staff-actions.ts'
import { html } from '../html.ts'
import { dateTimeCell } from './dates.ts'
import { type Branding, page } from './layout.ts'
import { amountCell, amountWords } from './received.ts'

/** A payment's state as the patron reads it. */
export const STATE_IN_WORDS: Record<CheckoutState, string> = {
  POSTED: 'Paid and recorded',
  PAID: 'Paid; being recorded',
  NEEDS_ATTENTION: 'Paid; library staff are finishing it',
  DECLINED: 'Declined; nothing charged',
  CANCELLED: 'Cancelled; nothing charged',
  EXPIRED: 'Not completed',
  CREATED: 'Waiting for CashNet'
}

/** This payment's state as the patron reads it: one still open waits for the provider it was started with. */
function stateInWords (checkout: Checkout): string {
  return checkout.state === 'CREATED' ? `Waiting for ${providerOf(checkout)}` : STATE_IN_WORDS[checkout.state]
}

/**
 * `differences`: for payments whose received amount is not what was due (differencesOf), what was received and
 * what was due; the others are stated by their total.
 */
export function historyPage (branding: Branding, payments: Checkout[], timeZone: string, differences: ReadonlyMap<string, ReceivedMoney> = new Map()): string {
  const rows = payments.map(checkout => html`<tr>
<td class="when">${dateTimeCell(checkout.paidAt ?? checkout.createdAt, timeZone)}</td>
<td class="detail"><ul class="history-fees">${checkout.lines.map(line => html`<li>${line.feeTypeDesc || line.feeType}${line.title !== '' ? html`<span class="fee-meta">${line.title}</span>` : ''}</li>`)}</ul></td>
<td class="state"><span class="state-words state-${checkout.state.toLowerCase()}">${stateInWords(checkout)}</span></td>
<td class="amount">${amountCell(checkout.total, checkout.currency, differences.get(checkout.id))}</td>
<td class="receipt"><a href="cashnet/return?ref=${encodeURIComponent(checkout.id)}">Receipt<span class="visually-hidden"> for the payment of ${amountWords(checkout.total, checkout.currency, differences.get(checkout.id))}</span></a></td>
</tr>`)
  return page({
    title: 'Your payment history',
    root: './',
    branding,
    signOut: true,
    body: html`<h1>Your payment history</h1>
${payments.length === 0
      ? html`<div class="notice" role="status"><p>You have not paid any library fines online yet.</p></div>`
      : html`<p class="lead">Your online payments of library fines, newest first. Times are ${timeZone} time.</p>
<div class="table-scroll">
<table class="history">
<caption>Payments</caption>
<thead><tr><th scope="col">Date</th><th scope="col">Fees</th><th scope="col">State</th><th scope="col" class="amount">Amount</th><th scope="col">Receipt</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
</div>`}
<div class="actions"><a class="button secondary" href="./">Back to your fines</a></div>`
  })
}
