// The staff page for pay links (/admin/pay-links): look a patron up by an Alma identifier, send them a link, see
// the links sent and revoke one. Every value is escaped by html``.

import type { AlmaUser } from '../../alma/types.ts'
import type { AuditEvent, PayLinkEntry } from '../../ledger/types.ts'
import { type Html, html } from '../html.ts'
import { dateTimeCell } from './dates.ts'
import { type Branding, page } from './layout.ts'

export interface PayLinksView {
  branding: Branding
  timeZone: string
  ttlHours: number
  csrfToken: string
  /** what was looked up, as typed */
  identifier: string
  user: AlmaUser | null
  /** a message after a look-up or an action */
  notice?: { tone: 'ok' | 'warn' | 'bad', text: string }
  links: Array<{ link: PayLinkEntry, events: AuditEvent[] }>
  now: Date
}

function linkState (link: PayLinkEntry, now: Date): string {
  if (link.revokedAt !== null) return `Revoked by ${link.revokedBy ?? '?'}`
  return Date.parse(link.expiresAt) <= now.getTime() ? 'Expired' : 'Active'
}

export function payLinksPage (view: PayLinksView): string {
  const { user } = view
  const name = user === null ? '' : (user.fullName || `${user.firstName} ${user.lastName}`).trim() || user.primaryId
  const rows: Html[] = view.links.map(({ link, events }) => {
    const uses = events.filter(e => e.event === 'paylink.used').length
    const refused = events.filter(e => e.event === 'paylink.refused').length
    const active = link.revokedAt === null && Date.parse(link.expiresAt) > view.now.getTime()
    return html`<tr>
<td>${dateTimeCell(link.issuedAt, view.timeZone)}</td>
<td>${link.issuedBy}</td>
<td>${dateTimeCell(link.expiresAt, view.timeZone)}</td>
<td>${linkState(link, view.now)}</td>
<td>${String(uses)}${refused > 0 ? html` (${String(refused)} refused)` : ''}</td>
<td>${active
      ? html`<form method="post" action="pay-links/${link.linkId}/revoke"><input type="hidden" name="_csrf" value="${view.csrfToken}"><input type="hidden" name="id" value="${view.identifier}"><button type="submit" class="button secondary">Revoke<span class="visually-hidden"> the link sent ${link.issuedAt}</span></button></form>`
      : ''}</td>
</tr>`
  })
  return page({
    title: 'Pay links',
    root: '../',
    branding: view.branding,
    body: html`<p><a href="../admin">Payments</a></p>
<h1>Pay links</h1>
<p class="lead">Send a patron a link by e-mail that opens their fines page without a campus sign-in, for ${String(view.ttlHours)} hours. It works for that patron only, and you can revoke it.</p>
${view.notice !== undefined ? html`<div class="notice ${view.notice.tone}" role="status"><p>${view.notice.text}</p></div>` : ''}
<form method="get" action="pay-links" class="lookup">
<label for="identifier">Alma identifier (primary id, barcode or other id)</label>
<input id="identifier" name="id" value="${view.identifier}" required maxlength="255" autocomplete="off">
<button type="submit" class="button">Look up</button>
</form>
${user === null
      ? ''
      : html`<h2>${name}</h2>
<dl class="facts">
<dt>Primary id</dt><dd>${user.primaryId}</dd>
<dt>Preferred e-mail</dt><dd>${user.preferredEmail !== '' ? user.preferredEmail : 'None in Alma'}</dd>
</dl>
${user.preferredEmail !== ''
        ? html`<form id="send-pay-link" method="post" action="pay-links">
<input type="hidden" name="_csrf" value="${view.csrfToken}">
<input type="hidden" name="id" value="${user.primaryId}">
<button type="submit" class="button">Send a pay link to ${user.preferredEmail}</button>
</form>`
        : html`<p>A pay link goes to the patron's preferred e-mail address in Alma; add one there first.</p>`}
<div class="table-scroll" tabindex="0" role="region" aria-label="Pay links sent to this patron">
<table class="admin">
<caption>Pay links sent to this patron</caption>
<thead><tr><th scope="col">Sent</th><th scope="col">By</th><th scope="col">Expires</th><th scope="col">State</th><th scope="col">Used</th><th scope="col">Action</th></tr></thead>
<tbody>${rows.length > 0 ? rows : html`<tr><td colspan="6">None yet.</td></tr>`}</tbody>
</table>
</div>`}`
  })
}
