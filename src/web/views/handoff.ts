// The page between our checkout and CashNet: a form of hidden fields that submits itself, and a visible
// button that does the same when JavaScript is off.

import type { Checkout } from '../../ledger/types.ts'
import { formatMoney } from '../../money.ts'
import { html } from '../html.ts'
import { type Branding, page } from './layout.ts'

export function handoffPage (branding: Branding, checkout: Checkout, action: string, fields: Array<[string, string]>): string {
  const count = checkout.lines.length
  return page({
    title: 'Continue to payment on CashNet',
    root: './',
    branding,
    scripts: ['handoff.js'],
    body: html`<h1>Continue to secure payment</h1>
<p class="lead">You are paying <strong>${formatMoney(checkout.total, checkout.currency)}</strong> for ${count} ${count === 1 ? 'fee' : 'fees'}.</p>
<p id="handoff-status" class="notice" role="status">Select “Continue to CashNet” to enter your card details on CashNet, the university’s secure payment page. You will come back here afterwards.</p>
<form id="cashnet-form" method="post" action="${action}">
${fields.map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
<div class="actions"><button class="button" id="continue-button" type="submit">Continue to CashNet</button>
<a class="button secondary" href="./">Back to your fines</a></div>
</form>
<p class="muted small">Reference: <span class="reference">${checkout.id}</span></p>`
  })
}
