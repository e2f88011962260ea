// The receipt after CashNet: what the ledger says about this patron's checkout, never what the redirect's
// fields claim. "Received and recorded" only once Alma has the payment; the amount received is what the provider
// reported collecting (payments/receipts.ts: receivedFor), and where that is not what was due the page says both.

import type { Checkout, CheckoutLine } from '../../ledger/types.ts'
import { type Cents, formatMoney } from '../../money.ts'
import { differenceWording, MONEY_TAKEN_STATES, type ReceivedMoney } from '../../payments/receipts.ts'
import type { ReceiptStory } from '../../payments/receipt-story.ts'
import { type Html, html } from '../html.ts'
import { dateTimeCell } from './dates.ts'
import { type Branding, page } from './layout.ts'

interface Wording { title: string, heading: string, tone: 'ok' | 'warn' | 'bad', message: string, pending: boolean, refresh?: number }

/** `provider`: who took the money, as patrons know it (CashNet, PayPal). */
export function receiptWording (checkout: Checkout, provider = 'CashNet'): Wording {
  if ((checkout.state === 'CREATED' || checkout.state === 'EXPIRED') && checkout.reviewTx !== null) {
    // the provider holds the money for review (a PayPal capture PENDING): its decision can take days, so no polling
    return { title: `Payment being reviewed by ${provider}`, heading: `${provider} is reviewing this payment`, tone: 'warn', message: `${provider} has your payment but is reviewing it before completing it; this can take a few days. Do not pay these fees again. If ${provider} accepts the payment, it is recorded on your library account and this receipt says so; if not, nothing is taken and you can pay the fees again from your fines page.`, pending: false }
  }
  switch (checkout.state) {
    case 'POSTED':
      return { title: 'Payment received: receipt', heading: 'Payment received and recorded in the library system', tone: 'ok', message: 'Thank you. Your library account has been updated.', pending: false }
    case 'PAID':
      return { title: 'Payment received: receipt', heading: 'Payment received; the library system is being updated', tone: 'ok', message: 'Thank you. Your payment went through. It can take a few minutes to show on your library account. You do not need to pay again.', pending: true, refresh: 10 }
    case 'NEEDS_ATTENTION':
      return { title: 'Payment received: receipt', heading: 'Payment received; library staff will finish recording it', tone: 'warn', message: 'Your payment went through, but it needs a person to finish recording it in the library system. You do not need to pay again; staff have been told. If you were charged more than your fines, the difference will be refunded.', pending: false }
    case 'DECLINED':
      return { title: 'Payment declined', heading: 'Your payment was declined', tone: 'bad', message: `${provider} did not accept the payment, so nothing was charged. You can try again with another card.`, pending: false }
    case 'CANCELLED':
      return { title: 'Payment cancelled', heading: 'Payment cancelled', tone: 'warn', message: `You cancelled the payment on ${provider}. Nothing was charged.`, pending: false }
    case 'EXPIRED':
      return { title: 'Payment not completed', heading: 'This payment was not completed', tone: 'warn', message: `We never heard from ${provider} about this payment, so it was closed after 24 hours. If you were charged, contact the library with the reference below.`, pending: false }
    case 'CREATED':
      return { title: `Waiting for ${provider}`, heading: `Waiting for confirmation from ${provider}`, tone: 'warn', message: `We have not yet heard from ${provider} about this payment. If you completed it, this usually takes a few seconds. If you left ${provider} without paying, nothing was charged.`, pending: true, refresh: 5 }
  }
}

/** A part payment (PARTIAL_PAYMENTS): "paid $10.00 of $65.00, $55.00 left", under the line's amount. */
function partOf (line: CheckoutLine, currency: string): Html | string {
  if (line.balance == null || line.balance <= line.amount) return ''
  const money = (c: number): string => formatMoney(c as Cents, currency)
  return html`<span class="fee-meta part-of">paid ${money(line.amount)} of ${money(line.balance)}, ${money(line.balance - line.amount)} left</span>`
}

/** A receipt's branding, and the library's time zone (TIMEZONE) for its date and time; the process's zone if not given. */
export type ReceiptBranding = Branding & { timeZone?: string }

/**
 * The wording when what the provider reported collecting is not what was due: what was received, what was due,
 * that staff will look at the difference. Once recorded in Alma (staff posted what was received), it says so.
 */
function differenceNotice (checkout: Checkout, differs: ReceivedMoney): Wording {
  const format = (c: number): string => formatMoney(c as Cents, checkout.currency)
  const { headline, message } = differenceWording(differs, format)
  if (checkout.state === 'POSTED' && differs.difference === 'short') {
    // staff recorded in Alma what was received: the fees are no longer "as they were", and nobody is still to call
    const received = differs.received as number
    return {
      title: 'Payment: receipt',
      heading: headline,
      tone: 'warn',
      message: `The payment service reported taking ${format(received)} for this payment, but the fees it was for came to ${format(differs.due)}. ` +
        `The ${format(received)} received is recorded on your library account; the other ${format(differs.due - received)} of these fees is still owed.`,
      pending: false
    }
  }
  const recorded = checkout.state === 'POSTED' ? ' What was received is recorded on your library account.' : ''
  return { title: 'Payment: receipt', heading: headline, tone: 'warn', message: `${message.join(' ')}${recorded}`, pending: false }
}

/**
 * `story.money`: what the provider reported collecting for this checkout against what was due (receivedFor); where
 * they differ the page states both and the lines as due, not paid. Left out, the checkout's total is the amount.
 * `story.superseded`: the checkout was replaced by a newer one before it was captured; the page says by which.
 */
export function receiptPage (branding: ReceiptBranding, checkout: Checkout, root = '../', provider = 'CashNet', story: ReceiptStory = {}): string {
  const timeZone = branding.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone
  const { money, superseded } = story
  const differs = money !== undefined && money.difference !== 'none' && MONEY_TAKEN_STATES.has(checkout.state) ? money : null
  // a checkout replaced by a newer one: what the use case decided (receipt-story.ts), never "you cancelled"
  const wording: Wording = superseded !== undefined
    ? { title: superseded.heading, heading: superseded.heading, tone: 'warn', message: superseded.message, pending: false }
    : differs === null ? receiptWording(checkout, provider) : differenceNotice(checkout, differs)
  const retry = (checkout.state === 'DECLINED' || checkout.state === 'CANCELLED' || checkout.state === 'EXPIRED') && superseded?.feesPaid !== true
  // the receipt of this very checkout, relative to /cashnet/return, for "Check again" and the script's polling
  const self = `return?ref=${encodeURIComponent(checkout.id)}`
  const lines: Html[] = checkout.lines.map(line => html`<tr>
<td>${line.feeTypeDesc || line.feeType}${line.title !== '' ? html`<span class="fee-meta">${line.title}</span>` : ''}</td>
<td class="amount">${formatMoney(line.amount, checkout.currency)}${differs === null ? partOf(line, checkout.currency) : ''}</td></tr>`)
  const total = formatMoney(checkout.total, checkout.currency)
  const amountFacts = differs === null
    ? html`<dt>Amount</dt><dd class="amount-fact">${total}</dd>`
    : html`<dt>Amount received</dt><dd class="amount-fact">${differs.difference === 'unconfirmed' ? 'not confirmed' : formatMoney(differs.received as Cents, checkout.currency)}</dd>
<dt>Amount due</dt><dd>${total}</dd>`
  return page({
    title: wording.title,
    root,
    branding,
    signOut: true,
    scripts: ['dates.js', 'receipt.js', 'print.js'],
    noscriptRefreshSeconds: wording.refresh,
    body: html`<div id="receipt" data-state="${checkout.state}" data-pending="${wording.pending ? 'true' : 'false'}" data-check="${self}">
<h1>${wording.heading}</h1>
<div class="notice ${wording.tone}"><p>${wording.message}</p>
${wording.pending ? html`<p class="check-again"><span class="auto-note"></span> <a href="${self}">Check again now</a></p>` : ''}</div>
<dl class="facts">
${amountFacts}
<dt>Date and time</dt><dd>${dateTimeCell(checkout.paidAt ?? checkout.createdAt, timeZone)}</dd>
${checkout.tx !== null && checkout.tx !== '' ? html`<dt>${provider} transaction</dt><dd>${checkout.tx}</dd>` : ''}
<dt>Reference</dt><dd class="reference">${checkout.id}</dd>
</dl>
<p class="reference-note">The reference is this payment’s number in the library’s payment records${checkout.tx !== null && checkout.tx !== '' ? `, and the ${provider} transaction is the payment processor’s number for it. Quote them` : '. Quote it'} if you contact the library about this payment.</p>
<table class="lines"><caption>${retry ? 'Fees in this attempt' : differs !== null ? 'The fees this payment was for, and what was due on each' : 'Fees paid'}</caption>
<thead><tr><th scope="col">Fee</th><th scope="col" class="amount">${differs !== null ? 'Due' : 'Amount'}</th></tr></thead>
<tbody>${lines}</tbody>
<tfoot><tr><th scope="row">${differs !== null ? 'Total due' : 'Total'}</th><td class="amount">${total}</td></tr></tfoot></table>
<div class="actions"><a class="button${retry ? '' : ' secondary'}" href="${root}">${retry ? 'Back to your fines to try again' : 'Back to your fines'}</a>
<button type="button" class="button secondary print-button" hidden>Print this receipt</button>
<a class="button secondary" href="${root}history">Your payment history</a></div>
<p class="print-hint">To keep a copy, use your browser’s Print command.</p>
</div>
<p id="receipt-live" class="visually-hidden" role="status" aria-live="polite"></p>`
  })
}

export function noReceiptPage (branding: Branding, root = '../'): string {
  return page({
    title: 'No payment found',
    root,
    branding,
    signOut: true,
    body: html`<h1>We could not find that payment</h1>
<div class="notice" role="status"><p>There is no payment with that reference on your account. If you paid and this looks wrong, contact the library; nothing is lost, staff can find every payment CashNet reports.</p></div>
<div class="actions"><a class="button" href="${root}">Back to your fines</a></div>`
  })
}
