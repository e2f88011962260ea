// The staff pages (SPEC 3, `/admin`): the payments list with state filters and search, one payment's full history
// with the staff actions the payment rule allows (src/payments/staff-actions.ts decides; this only renders), the
// postbacks that matched no checkout, and the CSV of a filtered list, streamed.

import { stringify } from 'csv-stringify'
import { Readable } from 'node:stream'
import type { AuditEvent, CheckoutHistory, CheckoutState, CheckoutSummary, PostbackRecord } from '../../ledger/types.ts'
import { CHECKOUT_STATES } from '../../ledger/types.ts'
import { PROVIDER_LABEL } from '../../providers/provider.ts'
import { attentionKindLabel, providerOf, type StaffAction, type StaffView } from '../../payments/staff-actions.ts'
import { type Cents, formatDecimal, formatMoney } from '../../money.ts'
import { amountReceived, type ReceivedMoney } from '../../payments/receipts.ts'
import { eventInWords, localTime } from '../../payments/story.ts'
import { type Html, html } from '../html.ts'
import { type Branding, page } from './layout.ts'
import { amountCell } from './received.ts'

/** What each state means to the bursar's office; shown as text, never as colour alone. */
export const STATE_LABEL: Record<CheckoutState, string> = {
  CREATED: 'Started, not paid',
  PAID: 'Paid, not yet in Alma',
  POSTED: 'Posted to Alma',
  DECLINED: 'Declined by CashNet',
  CANCELLED: 'Cancelled by patron',
  EXPIRED: 'Expired unpaid',
  NEEDS_ATTENTION: 'Needs attention'
}

const STATE_TONE: Record<CheckoutState, 'ok' | 'warn' | 'bad' | 'none'> = {
  CREATED: 'none', PAID: 'warn', POSTED: 'ok', DECLINED: 'none', CANCELLED: 'none', EXPIRED: 'none', NEEDS_ATTENTION: 'bad'
}

export interface ListQuery {
  states: CheckoutState[]
  search: string
  page: number
}

export interface PaymentsListView {
  branding: Branding
  query: ListQuery
  checkouts: CheckoutSummary[]
  total: number
  pageSize: number
  /** how many checkouts in each state match the search (whatever states are ticked) */
  counts: Record<CheckoutState, number>
  /** payments needing attention that staff have not settled yet */
  openAttention: number
  unmatchedPostbacks: number
  /** TIMEZONE: times are shown in it */
  timeZone?: string
  /** payments whose received amount is not what was due (differencesOf): both are shown */
  differences?: ReadonlyMap<string, ReceivedMoney>
}

/** The query string of a list, CSV or page link: only what is set, in a stable order. */
export function listSearch (query: ListQuery, page = query.page): string {
  const params = new URLSearchParams()
  for (const state of query.states) params.append('state', state)
  if (query.search !== '') params.set('q', query.search)
  if (page > 1) params.set('page', String(page))
  const text = params.toString()
  return text === '' ? '' : `?${text}`
}

/** A time in the library's zone (TIMEZONE), the zone's abbreviation shown and its name in the title. */
function timeCell (iso: string | null, zone = 'UTC'): Html {
  if (iso === null || iso === '') return html`<span class="muted">–</span>`
  const readable = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.test(iso) ? localTime(iso, zone) : iso
  return html`<time datetime="${iso}" title="${zone}">${readable}</time>`
}

/**
 * The patron in Alma's staff interface (ALMA_UI_URL): Alma's persistent search for users, by primary id. The
 * URL shape is not documented by Ex Libris (low confidence): the primary id is shown beside the link so that
 * staff can paste it into Alma's user search if the link does not open the record.
 */
export function almaUserLink (almaUiUrl: string, primaryId: string): string {
  return `${almaUiUrl}/ng/search?searchType=USERS&query=${encodeURIComponent(primaryId)}`
}

/** One payment's state in words: a declined payment names the provider that declined it. */
function stateLabel (checkout: Pick<CheckoutSummary, 'state' | 'provider'>): string {
  return checkout.state === 'DECLINED' ? `Declined by ${providerOf(checkout)}` : STATE_LABEL[checkout.state]
}

function stateBadge (checkout: Pick<CheckoutSummary, 'state' | 'provider' | 'resolvedAt'>): Html {
  const { state } = checkout
  if (checkout.resolvedAt !== null) return html`<span class="state state-${STATE_TONE.POSTED}" data-state="${state}">${stateLabel(checkout)}, settled by staff</span>`
  return html`<span class="state state-${STATE_TONE[state]}" data-state="${state}">${stateLabel(checkout)}</span>`
}

/** Why a payment is in the list of things to look at: the attention reason, or the last failed attempt. */
export function attentionText (checkout: CheckoutSummary): string {
  if (checkout.state === 'NEEDS_ATTENTION' && checkout.resolvedAt !== null) return `settled by ${checkout.resolvedBy ?? 'staff'}: ${checkout.resolution ?? ''} (was: ${checkout.attentionReason ?? 'handed to staff'})`
  if (checkout.state === 'NEEDS_ATTENTION') return checkout.attentionReason ?? checkout.lastError ?? 'handed to staff'
  if (checkout.state === 'PAID') {
    return checkout.attempts > 0 && checkout.lastError !== null
      ? `${checkout.attempts} attempt(s) failed; last: ${checkout.lastError}`
      : 'waiting for the posting worker'
  }
  return ''
}

export function paymentsListPage (view: PaymentsListView): string {
  const { query, counts } = view
  const pages = Math.max(1, Math.ceil(view.total / view.pageSize))
  const rows = view.checkouts.map(c => html`<tr>
<th scope="row"><a href="admin/payments/${encodeURIComponent(c.id)}"><span class="visually-hidden">Payment </span><code>${c.id}</code></a></th>
<td>${timeCell(c.createdAt, view.timeZone)}</td>
<td>${c.patronName}<span class="fee-meta">${c.userId}${c.primaryId !== c.userId ? html` · ${c.primaryId}` : ''}</span></td>
<td class="amount">${amountCell(c.total, c.currency, view.differences?.get(c.id))}</td>
<td>${stateBadge(c)}</td>
<td>${c.tx ?? ''}</td>
<td class="reason">${attentionText(c)}</td>
</tr>`)
  // the campus's provider (a checkout's own is in its badge): whose tx, who declined
  const provider = PROVIDER_LABEL[view.branding.paymentProvider ?? 'cashnet']
  const stateName = (state: CheckoutState): string => state === 'DECLINED' ? `Declined by ${provider}` : STATE_LABEL[state]
  const stateBoxes = CHECKOUT_STATES.map(state => html`<label class="check"><input type="checkbox" name="state" value="${state}"${query.states.includes(state) ? html` checked` : ''}> ${stateName(state)} (${counts[state]})</label>`)
  const attention = view.openAttention
  return page({
    title: 'Payments (staff)',
    root: './',
    branding: view.branding,
    body: html`<h1>Payments</h1>
${attention > 0 && !(query.states.length === 1 && query.states[0] === 'NEEDS_ATTENTION')
    ? html`<div class="notice bad" role="status"><p><strong>${attention}</strong> payment(s) need attention. <a href="admin?state=NEEDS_ATTENTION${query.search !== '' ? html`&amp;q=${encodeURIComponent(query.search)}` : ''}">Show them</a>.</p></div>`
    : ''}
${view.unmatchedPostbacks > 0
    ? html`<div class="notice warn" role="status"><p><strong>${view.unmatchedPostbacks}</strong> CashNet postback(s) matched no checkout or could not be read: money may have been taken for no known checkout. <a href="admin/postbacks">Review unmatched postbacks</a>.</p></div>`
    : html`<p><a href="admin/postbacks">Unmatched postbacks</a> (none)</p>`}
<p><a href="admin/reports">Reports: totals by day, fee type and owning library</a></p>
<form class="filters" method="get" action="admin" role="search">
<label for="q">Search: patron username, name or Alma id, ${provider} tx, checkout id
<input type="search" id="q" name="q" value="${query.search}" maxlength="200"></label>
<fieldset class="states"><legend>State</legend>
${stateBoxes}
</fieldset>
<div class="actions"><button class="button" type="submit">Show payments</button> <a href="admin">Clear filters</a>
<a href="admin/payments.csv${listSearch(query, 1)}" download>Download CSV of these payments</a></div>
</form>
<div class="table-scroll" tabindex="0" role="region" aria-label="Payments">
<table class="admin">
<caption>${view.total} payment(s)${query.search !== '' ? html` matching “${query.search}”` : ''}${query.states.length > 0 ? html` in state ${query.states.map(stateName).join(', ')}` : ''}, newest first${pages > 1 ? html` (page ${query.page} of ${pages})` : ''}</caption>
<thead><tr><th scope="col">Checkout</th><th scope="col">Created</th><th scope="col">Patron</th><th scope="col" class="amount">Total</th><th scope="col">State</th><th scope="col">${provider} tx</th><th scope="col">Needs attention because</th></tr></thead>
<tbody>
${rows.length > 0 ? rows : html`<tr><td colspan="7">No payments match.</td></tr>`}
</tbody>
</table>
</div>
${pages > 1
    ? html`<nav class="pagination" aria-label="Pages of payments">
${query.page > 1 ? html`<a rel="prev" href="admin${listSearch(query, query.page - 1)}">Previous page</a>` : ''}
<span>Page ${query.page} of ${pages}</span>
${query.page < pages ? html`<a rel="next" href="admin${listSearch(query, query.page + 1)}">Next page</a>` : ''}
</nav>`
    : ''}`
  })
}

export interface PaymentView {
  branding: Branding
  history: CheckoutHistory
  /** what the staff-action rule allows, and why not the rest */
  staff: StaffView
  csrfToken: string
  notice?: string
  /** TIMEZONE: times are shown in it */
  timeZone?: string
  /** ALMA_UI_URL: a link to the patron in Alma's staff interface when set */
  almaUiUrl?: string
}

function actionLabel (action: StaffAction, provider: string): string {
  switch (action) {
    case 'retry': return 'Retry posting'
    case 'post-confirmed': return `Post what ${provider} confirmed`
    case 'refund': return 'Record a refund'
    case 'settle': return 'Mark as settled'
  }
}

/** The actions the rule allowed, as forms, and the ones it refused, with its reasons. */
function actionsSection (view: PaymentView): Html | string {
  const { checkout } = view.history
  const { verdicts, refundable, confirmed } = view.staff
  const id = encodeURIComponent(checkout.id)
  const csrf = html`<input type="hidden" name="_csrf" value="${view.csrfToken}">`
  const money = (c: Cents): string => formatMoney(c, checkout.currency)
  const provider = providerOf(checkout)
  const forms: Html[] = []
  if (verdicts.retry.allowed) {
    forms.push(html`<form class="retry" method="post" action="${id}/retry">
${csrf}
<p>Fix the cause first (in Alma, or wait for Alma to be available again), then retry. The posting checks Alma for this tx before paying, so a retry never pays a fee twice, and never sends more than ${provider} reported. Lines already marked posted are not sent again: money that could not be applied needs a refund or a manual credit.</p>
<button class="button" type="submit">Retry posting</button>
</form>`)
  }
  if (verdicts['post-confirmed'].allowed && confirmed !== null) {
    const left = checkout.lines.filter(l => l.postedAt === null)
    const items = left.map(l => html`<li>line ${l.lineNo} (fee <code>${l.feeId}</code>): ${money(confirmed.get(l.lineNo) ?? 0 as Cents)} of ${money(l.amount)}</li>`)
    forms.push(html`<form class="post-confirmed" method="post" action="${id}/post-confirmed">
${csrf}
<p>${provider} reported other amounts than the checkout. This posts to Alma, line by line, at most what ${provider} confirmed for each line; what it did not collect stays owed in Alma:</p>
<ul>${items}</ul>
<button class="button" type="submit">${actionLabel('post-confirmed', provider)}</button>
</form>`)
  }
  if (verdicts.refund.allowed && refundable.length > 0) {
    const first = refundable[0]
    const choice = refundable.length === 1
      ? html`<input type="hidden" name="tx" value="${first.tx}"><p>${provider} tx <code>${first.tx}</code>${first.role === 'double-charge' ? ' (the second charge)' : ''}: ${provider} reported ${money(first.collected)}, ${money(first.refunded)} refunded so far.</p>`
      : html`<p><label for="refund-tx">${provider} tx</label><br><select id="refund-tx" name="tx">${refundable.map(r => html`<option value="${r.tx}">${r.tx}: up to ${formatDecimal(r.max)}</option>`)}</select></p>`
    forms.push(html`<form class="refund" method="post" action="${id}/refund">
${csrf}
<p>${first.role === 'double-charge' ? `Refund the second charge in ${provider}, then record it here; the payment goes back to the state its first charge had.` : `After refunding in ${provider}, record the refund here. Refunded money is never posted to Alma.`}</p>
${choice}
<p><label for="refund-amount">Amount refunded (at most ${formatDecimal(first.max)})</label><br><input id="refund-amount" name="amount" inputmode="decimal" value="${formatDecimal(first.max)}" required></p>
<p><label for="refund-reference">${provider} refund reference (required)</label><br><input id="refund-reference" name="reference" maxlength="100" required></p>
<p><label for="refund-note">Note (required)</label><br><textarea id="refund-note" name="note" rows="2" cols="60" maxlength="500" required></textarea></p>
<button class="button" type="submit">Record the refund</button>
</form>`)
  }
  if (verdicts.settle.allowed) {
    forms.push(html`<form class="resolve" method="post" action="${id}/resolve">
${csrf}
<p>When the money is dealt with outside this service (refunded in ${provider}, credited or paid by hand in Alma), record what was done. The payment then leaves the list of things to look at and reconciliation stops reporting it; the note stays in its history. Nothing is posted to Alma after this.</p>
<p><label for="resolution">What was done (required)</label><br><textarea id="resolution" name="resolution" rows="3" cols="60" maxlength="500" required></textarea></p>
<button class="button secondary" type="submit">Mark as settled</button>
</form>`)
  }
  if (checkout.state !== 'NEEDS_ATTENTION' && checkout.state !== 'PAID') return html`${forms}`
  const refused = (Object.entries(verdicts) as Array<[StaffAction, StaffView['verdicts'][StaffAction]]>)
    .flatMap(([action, v]) => v.allowed ? [] : [html`<li data-action="${action}"><strong>${actionLabel(action, provider)}</strong>: <span class="why-not">${v.reason}</span></li>`])
  return html`${forms}
${refused.length > 0 ? html`<div class="no-retry"><p>Not offered for this payment:</p><ul class="refused-actions">${refused}</ul></div>` : ''}`
}

function outcomeText (postback: PostbackRecord): string {
  return postback.reason !== '' ? `${postback.outcome}: ${postback.reason}` : postback.outcome
}

function eventRow (event: AuditEvent, checkout: CheckoutHistory['checkout'], zone?: string): Html {
  const change = event.fromState !== null || event.toState !== null
    ? (event.fromState === event.toState ? event.toState ?? '' : `${event.fromState ?? '–'} → ${event.toState ?? '–'}`)
    : ''
  return html`<tr><td>${timeCell(event.at, zone)}</td><td class="event-words">${eventInWords(event, checkout)}</td><td>${change}</td><td><details><summary>Raw event</summary><code>${event.event}</code> <code class="detail">${event.detail}</code></details></td></tr>`
}

export function paymentPage (view: PaymentView): string {
  const { checkout, postbacks, almaCalls, events } = view.history
  const zone = view.timeZone
  const money = (c: Cents): string => formatMoney(c, checkout.currency)
  const provider = providerOf(checkout)
  const confirmed = view.staff.confirmed
  /** money the provider collected for a line that Alma did not take */
  const unappliedOf = (lineNo: number, amount: Cents, posted: Cents): Cents => Math.max(0, (confirmed?.get(lineNo) ?? amount) - posted) as Cents
  const lines = checkout.lines.map(line => html`<tr>
<td>${line.lineNo}</td>
<td><code>${line.feeId}</code></td>
<td>${line.feeTypeDesc || line.feeType}${line.title !== '' ? html`<span class="fee-meta">${line.title}</span>` : ''}</td>
<td>${line.ownerDesc || line.owner}</td>
<td class="amount">${money(line.amount)}</td>
<td class="amount">${confirmed === null ? html`<span class="muted">unknown</span>` : (confirmed.get(line.lineNo) ?? 0) < line.amount ? html`<strong>${money(confirmed.get(line.lineNo) ?? 0 as Cents)}</strong>` : money(confirmed.get(line.lineNo) ?? 0 as Cents)}</td>
<td class="amount">${line.postedAmount === null ? html`<span class="muted">not posted</span>` : money(line.postedAmount)}</td>
<td>${timeCell(line.postedAt, zone)}</td>
<td class="amount">${line.postedAmount === null ? '' : unappliedOf(line.lineNo, line.amount, line.postedAmount) > 0 ? html`<strong>${money(unappliedOf(line.lineNo, line.amount, line.postedAmount))}</strong>` : money(0 as Cents)}</td>
</tr>`)
  const postbackSections = postbacks.map(p => html`<section class="postback" aria-labelledby="postback-${p.id}">
<h3 id="postback-${p.id}">Postback ${p.id}: ${p.outcome}</h3>
<dl class="facts">
<dt>Received</dt><dd>${timeCell(p.receivedAt, zone)}</dd>
<dt>From</dt><dd>${p.peer}</dd>
<dt>${provider} result</dt><dd>${p.result === '' ? '–' : p.result}</dd>
<dt>tx</dt><dd>${p.tx === '' ? '–' : p.tx}</dd>
<dt>Outcome</dt><dd>${outcomeText(p)}</dd>
</dl>
<pre aria-label="Raw body of postback ${p.id}">${p.rawBody}</pre>
</section>`)
  const calls = almaCalls.map(c => html`<tr>
<td>${timeCell(c.at, zone)}</td><td>${c.method}</td><td><code>${c.path}</code></td>
<td>${c.status === 0 ? 'no answer' : c.status}</td><td>${c.errorCode}</td><td>${c.errorMessage}</td><td>${c.trackingId}</td><td class="amount">${c.durationMs} ms</td>
</tr>`)
  const reason = attentionText(checkout)
  // money the provider took back by itself is listed with the refunds (it is booked as one) and says what it was
  const refunds = view.history.refunds.map(r => html`<tr><td>${timeCell(r.at, zone)}</td><td>${r.kind === 'reversal' ? `Reversal (chargeback) by ${r.by === 'paypal' ? 'PayPal' : 'the payment provider'}` : 'Refund'}</td><td>${r.tx}</td><td class="amount">${money(r.amount)}</td><td>${r.reference}</td><td>${r.by}</td><td>${r.note}</td></tr>`)
  return page({
    title: `Payment ${checkout.id} (staff)`,
    root: '../../',
    branding: view.branding,
    body: html`<p><a href="../../admin">← All payments</a></p>
<h1>Payment <code>${checkout.id}</code></h1>
${view.notice !== undefined ? html`<div class="notice ok" role="status"><p>${view.notice}</p></div>` : ''}
<p class="lead">State: ${stateBadge(checkout)}</p>
${reason !== ''
    ? html`<div class="notice ${checkout.state === 'NEEDS_ATTENTION' ? 'bad' : 'warn'}" role="status"><p><strong>${checkout.state === 'NEEDS_ATTENTION' ? 'Needs attention because: ' : 'Not yet posted: '}</strong><span class="attention-reason">${reason}</span></p></div>`
    : ''}
${checkout.state === 'NEEDS_ATTENTION' && checkout.attentionKind !== null ? html`<p class="attention-kind" data-kind="${checkout.attentionKind}">Kind of problem: ${attentionKindLabel(checkout.attentionKind, checkout)}</p>` : ''}
${checkout.state === 'NEEDS_ATTENTION' && checkout.resolvedAt !== null
    ? html`<div class="notice ok" role="status"><p><strong>Settled</strong> by ${checkout.resolvedBy ?? 'staff'} on ${timeCell(checkout.resolvedAt, zone)}: <span class="resolution">${checkout.resolution ?? ''}</span></p></div>`
    : ''}
${actionsSection(view)}
<h2>Checkout</h2>
<dl class="facts">
<dt>Patron</dt><dd>${checkout.patronName}</dd>
${checkout.userIdKind === 'primary-id' ? html`<dt>Paid from</dt><dd>a pay link (signed in by Alma primary id)</dd>` : html`<dt>Username</dt><dd>${checkout.userId}</dd>`}
<dt>Alma primary id</dt><dd>${checkout.primaryId}${view.almaUiUrl !== undefined && view.almaUiUrl !== '' ? html` · <a class="alma-user" href="${almaUserLink(view.almaUiUrl, checkout.primaryId)}" rel="noopener noreferrer" target="_blank">Open the patron in Alma</a>` : ''}</dd>
<dt>Email</dt><dd>${checkout.email}</dd>
<dt>Total</dt><dd>${money(checkout.total)}</dd>
<dt>Unapplied</dt><dd>${checkout.unapplied > 0 ? html`<strong>${money(checkout.unapplied)}</strong> (refund or credit it)` : money(0 as Cents)}</dd>
<dt>Created</dt><dd>${timeCell(checkout.createdAt, zone)}</dd>
<dt>Paid</dt><dd>${timeCell(checkout.paidAt, zone)}</dd>
<dt>Posted</dt><dd>${timeCell(checkout.postedAt, zone)}</dd>
<dt>Last change</dt><dd>${timeCell(checkout.updatedAt, zone)}</dd>
<dt>${provider} tx</dt><dd>${checkout.tx ?? '–'}</dd>
<dt>Batch / effective date / payment code</dt><dd>${checkout.batchno ?? '–'} / ${checkout.effdate ?? '–'} / ${checkout.pmtcode ?? '–'}</dd>
<dt>Posting attempts</dt><dd>${checkout.attempts}${checkout.nextAttemptAt !== null && checkout.state === 'PAID' ? html` (next ${timeCell(checkout.nextAttemptAt, zone)})` : ''}</dd>
<dt>Last error</dt><dd>${checkout.lastError ?? '–'}</dd>
${checkout.state !== 'NEEDS_ATTENTION' && checkout.attentionReason !== null ? html`<dt>Earlier attention reason</dt><dd>${checkout.attentionReason}</dd>` : ''}
</dl>
<div class="table-scroll" tabindex="0" role="region" aria-label="Fee lines">
<table class="admin">
<caption>Fee lines</caption>
<thead><tr><th scope="col">Line</th><th scope="col">Alma fee id</th><th scope="col">Fee</th><th scope="col">Library</th><th scope="col" class="amount">Amount</th><th scope="col" class="amount">${provider} confirmed</th><th scope="col" class="amount">Posted amount</th><th scope="col">Posted at</th><th scope="col" class="amount">Unapplied</th></tr></thead>
<tbody>${lines}</tbody>
</table>
</div>
<h2>Refunds recorded (${refunds.length})</h2>
${refunds.length > 0
    ? html`<div class="table-scroll" tabindex="0" role="region" aria-label="Refunds"><table class="admin">
<caption>Refunds staff made in ${provider} and recorded here</caption>
<thead><tr><th scope="col">At</th><th scope="col">What</th><th scope="col">${provider} tx</th><th scope="col" class="amount">Amount</th><th scope="col">${provider} refund reference</th><th scope="col">By</th><th scope="col">Note</th></tr></thead>
<tbody>${refunds}</tbody>
</table></div>`
    : html`<p>No refund has been recorded for this payment.</p>`}
<h2>${provider} postbacks (${postbacks.length})</h2>
${postbacks.length > 0 ? postbackSections : html`<p>No postback has arrived for this checkout.</p>`}
<h2>Alma calls (${almaCalls.length})</h2>
${almaCalls.length > 0
    ? html`<div class="table-scroll" tabindex="0" role="region" aria-label="Alma calls"><table class="admin">
<caption>Every call made to Alma while posting, with its answer</caption>
<thead><tr><th scope="col">At</th><th scope="col">Method</th><th scope="col">Path</th><th scope="col">Status</th><th scope="col">errorCode</th><th scope="col">errorMessage</th><th scope="col">trackingId</th><th scope="col" class="amount">Took</th></tr></thead>
<tbody>${calls}</tbody>
</table></div>`
    : html`<p>No call to Alma has been made for this checkout.</p>`}
<h2>Audit events (${events.length})</h2>
<div class="table-scroll" tabindex="0" role="region" aria-label="Audit events"><table class="admin">
<caption>Every state change and step, oldest first; times in ${zone ?? 'UTC'}</caption>
<thead><tr><th scope="col">At</th><th scope="col">What happened</th><th scope="col">State</th><th scope="col">Detail</th></tr></thead>
<tbody>${events.map(e => eventRow(e, checkout, zone))}</tbody>
</table></div>`
  })
}

export function unmatchedPostbacksPage (branding: Branding, postbacks: PostbackRecord[], total: number): string {
  const shown = postbacks.length
  const sections = postbacks.map(p => html`<section class="postback" aria-labelledby="postback-${p.id}">
<h2 id="postback-${p.id}">Postback ${p.id}: ${p.outcome}</h2>
<dl class="facts">
<dt>Received</dt><dd>${timeCell(p.receivedAt)}</dd>
<dt>From</dt><dd>${p.peer}</dd>
<dt>Checkout reference</dt><dd>${p.checkoutId !== null ? html`<a href="payments/${encodeURIComponent(p.checkoutId)}"><code>${p.checkoutId}</code></a>` : '– (none readable)'}</dd>
<dt>CashNet result</dt><dd>${p.result === '' ? '–' : p.result}</dd>
<dt>tx</dt><dd>${p.tx === '' ? '–' : p.tx}</dd>
<dt>Why</dt><dd>${outcomeText(p)}</dd>
</dl>
<pre aria-label="Raw body of postback ${p.id}">${p.rawBody}</pre>
</section>`)
  return page({
    title: 'Unmatched postbacks (staff)',
    root: '../',
    branding,
    body: html`<p><a href="../admin">← All payments</a></p>
<h1>Unmatched postbacks</h1>
<p class="lead">CashNet postbacks that named no checkout we know (orphans), could not be read (rejected), or carried a tx already recorded for another checkout (TX_REUSED: not accepted, nothing posted), newest first. An orphan with a successful result means money was taken for no known checkout: find the payment in CashNet by its tx and refund it or apply it by hand.</p>
${total === 0 ? html`<p>None.</p>` : ''}
${total > shown ? html`<p>Showing the newest ${shown} of ${total}.</p>` : ''}
${sections}`
  })
}

const FORMULA_START = /^[=+\-@\t\r]/
const PLAIN_NUMBER = /^-?\d+(\.\d+)?$/

/** A spreadsheet must not run a cell as a formula: text starting with = + - @ (or tab, CR) gets a leading quote. */
export function neutraliseCell (value: string): string {
  return FORMULA_START.test(value) && !PLAIN_NUMBER.test(value) ? `'${value}` : value
}

// New columns go at the end: spreadsheets and scripts read these by position.
export const CSV_COLUMNS = [
  'checkout_id', 'created_at', 'state', 'username', 'primary_id', 'patron_name', 'currency', 'total', 'unapplied',
  'tx', 'batchno', 'paid_at', 'posted_at', 'attempts', 'attention', 'received'
] as const

/** One page of the CSV: its checkouts, and what the provider reported receiving for those whose money was taken. */
export interface CsvPage {
  checkouts: CheckoutSummary[]
  received: ReadonlyMap<string, ReceivedMoney>
}

function csvRow (c: CheckoutSummary, received: Cents | null): string[] {
  return [
    c.id, c.createdAt, c.state, c.userId, c.primaryId, c.patronName, c.currency, formatDecimal(c.total), formatDecimal(c.unapplied),
    c.tx ?? '', c.batchno ?? '', c.paidAt ?? '', c.postedAt ?? '', String(c.attempts), attentionText(c),
    received === null ? '' : formatDecimal(received)
  ].map(neutraliseCell)
}

/** The CSV of a list as a stream, page by page: only one page of checkouts is in memory at a time. */
export function paymentsCsv (pages: AsyncIterable<CsvPage>): Readable {
  const rows = Readable.from((async function * () {
    for await (const page of pages) for (const c of page.checkouts) yield csvRow(c, amountReceived(page.received.get(c.id)))
  })(), { objectMode: true })
  const csv = stringify({ header: true, columns: [...CSV_COLUMNS], record_delimiter: 'windows' })
  rows.on('error', (error) => csv.destroy(error))
  return rows.pipe(csv)
}
