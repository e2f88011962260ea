// The fines page: every ACTIVE fee with type, title or barcode, owning library, date and balance; a checkbox
// per payable fee (all ticked), the total, and the pay button.

import type { AlmaUser, Fee } from '../../alma/types.ts'
import type { Checkout } from '../../ledger/types.ts'
import { type Cents, formatDecimal, formatMoney } from '../../money.ts'
import { NOT_PAYABLE_TEXT, type NotPayableReason } from '../../payments/payable.ts'
import { type Html, html } from '../html.ts'
import { type Branding, page } from './layout.ts'

export interface FinesView {
  branding: Branding
  user: AlmaUser
  fees: Array<{ fee: Fee, notPayable: NotPayableReason | null }>
  currency: string
  csrfToken: string
  minPayment: Cents
  notice?: string
  /** the patron's payments taken but not yet all recorded in Alma (PAID, or waiting for staff), or held for review by the provider */
  inProgress?: Array<{ checkout: Checkout, receipt: boolean }>
  /** PARTIAL_PAYMENTS: an amount field per payable fee, filled in with the balance */
  partialPayments?: boolean
}

/** Positive balances added up per currency, never across: the online currency first, then the others by code. */
export function totalsByCurrency (fees: readonly Fee[], onlineCurrency: string): Array<{ currency: string, cents: Cents }> {
  const totals = new Map<string, number>()
  for (const fee of fees) {
    if (fee.balance <= 0) continue
    const currency = fee.currency === '' ? onlineCurrency : fee.currency.toUpperCase()
    totals.set(currency, (totals.get(currency) ?? 0) + fee.balance)
  }
  return [...totals]
    .sort(([a], [b]) => a === onlineCurrency ? -1 : b === onlineCurrency ? 1 : a.localeCompare(b))
    .map(([currency, cents]) => ({ currency, cents: cents as Cents }))
}

function joinAnd (parts: Html[]): Html {
  if (parts.length <= 1) return html`${parts}`
  return html`${parts.slice(0, -1).map((p, i) => html`${i > 0 ? ', ' : ''}${p}`)} and ${parts[parts.length - 1]}`
}

/** What the patron hears about money already taken: being recorded, waiting for library staff, or under the provider's review. */
function inProgressNotices (payments: NonNullable<FinesView['inProgress']>, root: string): Html {
  return html`${payments.map(({ checkout, receipt }) => {
    const amount = formatMoney(checkout.total, checkout.currency)
    const day = (checkout.paidAt ?? checkout.createdAt).slice(0, 10)
    const link = receipt ? html` <a href="${root}cashnet/return?ref=${encodeURIComponent(checkout.id)}">See the receipt</a>` : ''
    if (checkout.state === 'CREATED' || checkout.state === 'EXPIRED') {
      // listed only while the provider holds its money for review (Checkout.reviewTx): so far only PayPal does
      const reviewer = checkout.provider === 'paypal' ? 'PayPal' : 'CashNet'
      return html`<div class="notice ok in-progress" role="status"><p><strong>${reviewer} is reviewing a payment.</strong> Your payment of ${amount} (${dateCell(day)}) is being reviewed by ${reviewer} before it is completed; this can take a few days. The fees it covers are marked below and cannot be paid online meanwhile. You do not need to pay them again: if ${reviewer} accepts the payment, it is recorded on your library account; if not, nothing is taken and the fees can be paid here again.${link}</p></div>`
    }
    return checkout.state === 'PAID'
      ? html`<div class="notice ok in-progress" role="status"><p><strong>Payment received, being recorded.</strong> We have your payment of ${amount} (${dateCell(day)}) and are recording it in the library system. This can take a few minutes; the fees it covers are marked below. You do not need to pay them again.${link}</p></div>`
      : html`<div class="notice warn in-progress" role="status"><p><strong>Library staff are checking a payment.</strong> Your payment of ${amount} (${dateCell(day)}) needs a person to finish recording it in the library system. Until they have, the fees it covers cannot be paid online. You do not need to pay again; please contact the library if you have questions.${link}</p></div>`
  })}`
}

export function dateCell (iso: string): Html {
  const day = iso.slice(0, 10)
  return /^\d{4}-\d{2}-\d{2}$/.test(day) ? html`<time datetime="${day}">${day}</time>` : html``
}

function patronName (user: AlmaUser): string {
  return (user.fullName || `${user.firstName} ${user.lastName}`).trim() || user.primaryId
}

export function finesPage (view: FinesView): string {
  const money = (c: Cents, currency = view.currency): string => formatMoney(c, currency)
  const payable = view.fees.filter(f => f.notPayable === null)
  const owed = view.fees.filter(f => f.fee.balance > 0)
  const payableTotal = payable.reduce((s, f) => s + f.fee.balance, 0) as Cents
  const name = patronName(view.user)
  const progress = inProgressNotices(view.inProgress ?? [], './')
  // what is still to pay: money already taken for a fee (being recorded, or with staff) is not owed again
  const held = new Set<NotPayableReason | null>(['being-recorded', 'staff-checking', 'provider-reviewing'])
  const due = totalsByCurrency(owed.filter(f => !held.has(f.notPayable)).map(f => f.fee), view.currency)
  const elsewhere = due.filter(d => d.currency !== view.currency)

  if (owed.length === 0) {
    const credits = view.fees.filter(f => f.fee.balance < 0)
    return page({
      title: 'Your library fines: nothing to pay',
      root: './',
      branding: view.branding,
      signOut: true,
      body: html`<h1>Nothing to pay, ${name}</h1>
<div class="notice ok"><p class="lead">You have no outstanding library fines or fees. Thank you!</p></div>
${view.notice !== undefined ? html`<div class="notice" role="status">${view.notice}</div>` : ''}
${progress}
<p class="history-link"><a href="history">Your payment history and receipts</a></p>
${credits.length > 0 ? html`<p>You have a credit of ${joinAnd(totalsByCurrency(credits.map(f => ({ ...f.fee, balance: -f.fee.balance as Cents })), view.currency).map(d => html`${money(d.cents, d.currency)}`))} on your library account.</p>` : ''}`
    })
  }

  const rows = view.fees.map(({ fee, notPayable }) => {
    const id = `fee-${fee.id}`
    const kind = fee.type.desc || fee.type.code
    const what = fee.title !== '' ? fee.title : (fee.barcode !== '' ? `Item ${fee.barcode}` : '')
    const amount = money(fee.balance, fee.currency || view.currency)
    const library = fee.owner.desc || fee.owner.code
    // A screen reader hears the checkbox as "Overdue fine, The Name of the Rose, $5.00": the visible label's words
    // in the same order (so voice control finds it too), with the amount and the pauses the eye gets from the layout.
    const spoken = [kind, what, amount].filter(part => part !== '').join(', ')
    const name = html`<span class="fee-title">${kind}</span>${what !== '' ? html`<span class="fee-what">${what}</span>` : ''}`
    return html`<tr>
<td class="select">${notPayable === null
      ? html`<input type="checkbox" name="fee" value="${fee.id}" id="${id}" data-cents="${fee.balance}" aria-label="${spoken}" checked>`
      : html`<span class="visually-hidden">${notPayable === 'provider-reviewing' ? 'Payment under review, not to be paid again' : held.has(notPayable) ? 'Already paid, not to be paid again' : 'Cannot be paid online'}</span>`}</td>
<td class="detail">${notPayable === null ? html`<label for="${id}">${name}</label>` : html`<span class="fee-name">${name}</span>`}
${fee.barcode !== '' && fee.title !== '' ? html`<span class="fee-meta">Barcode ${fee.barcode}</span>` : ''}
<span class="fee-meta narrow-only">${library}${fee.creationTime !== '' ? html` · ${dateCell(fee.creationTime)}` : ''}</span>
${notPayable !== null ? html`<span class="badge">${NOT_PAYABLE_TEXT[notPayable]}</span>` : ''}</td>
<td class="library">${library}</td>
<td class="date">${dateCell(fee.creationTime)}</td>
<td class="amount${fee.balance < 0 ? ' credit' : ''}">${amount}${view.partialPayments === true && notPayable === null
      ? html`<label class="part" for="amount-${fee.id}">Pay now</label><input class="part" type="text" inputmode="decimal" autocomplete="off" name="amount_${fee.id}" id="amount-${fee.id}" value="${formatDecimal(fee.balance)}" size="9" maxlength="12" pattern="[0-9]+([.][0-9]{1,2})?" data-balance-cents="${fee.balance}" aria-describedby="part-hint" aria-label="Amount to pay now for ${spoken}">`
      : ''}</td>
</tr>`
  })

  return page({
    title: 'Your library fines',
    root: './',
    branding: view.branding,
    signOut: true,
    scripts: ['fines.js', 'dates.js'],
    body: html`<h1>Library fines and fees for ${name}</h1>
${view.notice !== undefined ? html`<div class="notice warn" role="alert">${view.notice}</div>` : ''}
${progress}
<p class="history-link"><a href="history">Your payment history and receipts</a></p>
${due.length === 0
      ? html`<p class="lead">Nothing else to pay for now.</p>`
      : html`<p class="lead">You owe ${joinAnd(due.map(d => html`<strong>${money(d.cents, d.currency)}</strong>`))}.${payable.length > 0 ? ` Untick anything you do not want to pay now, then pay on ${view.branding.paymentProvider === 'paypal' ? 'PayPal, the university’s secure payment service' : 'CashNet, the university’s secure payment page'}.` : ''}</p>`}
${elsewhere.length > 0
      ? html`<p class="notice other-currency">Fees in ${joinAnd(elsewhere.map(d => html`${d.currency} (${money(d.cents, d.currency)})`))} cannot be paid online: online payments are taken in ${view.currency} only. Please contact the library to pay them.</p>`
      : ''}
<form id="pay-form" method="post" action="checkout" data-currency="${view.currency}" data-min-cents="${view.minPayment}">
<input type="hidden" name="_csrf" value="${view.csrfToken}">
<div class="table-scroll">
<table class="fees">
<caption>Outstanding fines and fees</caption>
<thead><tr><th scope="col" class="select">Pay</th><th scope="col">Fee</th><th scope="col" class="library">Library</th><th scope="col" class="date">Date</th><th scope="col" class="amount">Amount</th></tr></thead>
<tbody>
${rows}
</tbody>
<tfoot><tr><td class="select"></td><th scope="row">Selected to pay</th><td class="library"></td><td class="date"></td><td class="amount"><output id="selected-total" for="${payable.map(f => `fee-${f.fee.id}`).join(' ')}" aria-live="polite">${money(payableTotal)}</output></td></tr></tfoot>
</table>
</div>
${payable.length === 0
      ? (owed.some(f => !held.has(f.notPayable)) ? html`<p class="notice">None of these fees can be paid online. Please pay at the library.</p>` : '')
      : html`<div class="actions"><button class="button" id="pay-button" type="submit" aria-describedby="pay-hint">Pay selected fees</button>
<span class="muted" id="pay-hint">${view.minPayment > 1 ? `The smallest online payment is ${money(view.minPayment)}.` : ''}</span></div>
${view.partialPayments === true ? html`<p class="muted small" id="part-hint">You may pay part of a fee: change its amount (at least ${money(view.minPayment)}, at most its balance). The rest stays on your account.</p>` : ''}
<p class="muted small">Card details are entered on ${view.branding.paymentProvider === 'paypal' ? 'PayPal' : 'CashNet'}, never on this site.</p>`}
</form>`
  })
}
