// The /ezproxy-check page: one table of what arrived on this request, then what to fix. Written for the
// systems librarian, and safe to screenshot: no header or secret values, every value escaped.

import { type Html, html } from '../html.ts'
import { type Branding, page } from './layout.ts'

export interface Finding {
  /** stable identifier, for the JSON variant and the tests */
  code: string
  text: string
}

export interface EzproxyCheck {
  authMode: 'header' | 'userobject' | 'primo'
  peer: { address: string, socketAddress: string, trusted: boolean }
  trustProxy: { configured: boolean, socketPeerIsFrontProxy: boolean, forwardedForArrived: boolean }
  userHeader: { name: string, arrived: boolean, usable: boolean }
  secretHeader: { configured: boolean, name: string | null, arrived: boolean, matches: boolean | null }
  userobject: { ezproxyUrl: string, wskeyConfigured: boolean } | null
  session: { present: boolean, valid: boolean, expired: boolean, idle: boolean, expiresAt: string | null } | null
  /** the username the patron pages would use for this request, or null */
  resolvedUser: string | null
  ok: boolean
  problems: Finding[]
  notes: Finding[]
}

type Status = 'ok' | 'problem' | 'info'

const LABEL: Record<Status, string> = { ok: 'OK', problem: 'Problem', info: 'Note' }

function row (what: Html | string, value: Html | string, status: Status): Html {
  return html`<tr><th scope="row">${what}</th><td>${value}</td><td class="check-${status}"><strong>${LABEL[status]}</strong></td></tr>`
}

export function ezproxyCheckPage (branding: Branding, check: EzproxyCheck): string {
  // primo mode is session-based as userobject mode is: the session rows, not the header rows
  const userobject = check.authMode !== 'header'
  const rows: Html[] = [
    row('Identity mode (AUTH_MODE)', check.authMode === 'primo'
      ? 'primo: Primo VE’s “Pay fine” link with a signed token, then the service’s own session'
      : userobject ? 'userobject: EZproxy’s UserObject service, then the service’s own session' : 'header: EZproxy adds the username header', 'info'),
    row('Peer address the service saw', html`<code>${check.peer.address}</code>${check.peer.socketAddress !== check.peer.address ? html` (connection from <code>${check.peer.socketAddress}</code>)` : ''}`, 'info'),
    row('Peer trusted (in EZPROXY_ALLOW)', check.peer.trusted ? 'Yes' : 'No', check.peer.trusted ? 'ok' : (userobject ? 'info' : 'problem')),
    row('Front proxy (TRUST_PROXY)', !check.trustProxy.configured
      ? 'Not in use: the peer is the address of the connection itself'
      : check.trustProxy.socketPeerIsFrontProxy
        ? (check.trustProxy.forwardedForArrived ? 'In use: this request came through it, and the peer was read from X-Forwarded-For' : 'In use: this request came through it, but without X-Forwarded-For')
        : 'In use, but this request did not come through it', check.trustProxy.socketPeerIsFrontProxy && !check.trustProxy.forwardedForArrived ? 'problem' : 'info')
  ]
  if (!userobject) {
    rows.push(row(html`User header <code>${check.userHeader.name}</code>`,
      !check.userHeader.arrived ? 'Did not arrive' : check.userHeader.usable ? 'Arrived' : 'Arrived, but not a usable username',
      check.userHeader.arrived && check.userHeader.usable && check.peer.trusted ? 'ok' : (check.peer.trusted ? 'problem' : 'info')))
    rows.push(check.secretHeader.configured
      ? row(html`Secret header <code>${check.secretHeader.name ?? ''}</code>`,
        !check.secretHeader.arrived ? 'Did not arrive' : check.secretHeader.matches === null ? 'Arrived; not compared, because the peer is not trusted' : check.secretHeader.matches ? 'Arrived and matches EZPROXY_SECRET' : 'Arrived, but does not match EZPROXY_SECRET',
        check.secretHeader.matches === true ? 'ok' : check.peer.trusted ? 'problem' : 'info')
      : row('Secret header', 'Not configured (optional)', 'info'))
  } else {
    if (check.userobject !== null) {
      rows.push(row('EZproxy (EZPROXY_URL)', html`<code>${check.userobject.ezproxyUrl}</code>`, 'info'))
      rows.push(row('EZPROXY_WSKEY', check.userobject.wskeyConfigured ? 'Configured (value not shown)' : 'Not configured', check.userobject.wskeyConfigured ? 'ok' : 'problem'))
    }
    const session = check.session
    rows.push(row('Your session with the service', session === null || !session.present
      ? 'None yet'
      : !session.valid
          ? 'Not valid (altered, signed with another COOKIE_SECRET, or signed out)'
          : session.idle
            ? 'Ended after SESSION_IDLE_MINUTES without a request'
            : session.expired ? 'Expired' : html`Valid until <time datetime="${session.expiresAt ?? ''}">${session.expiresAt ?? ''}</time> at the latest; ends sooner after SESSION_IDLE_MINUTES without a request`,
    session !== null && session.present && !session.valid ? 'problem' : session !== null && session.valid && !session.expired ? 'ok' : 'info'))
  }
  rows.push(row('Resolved username', check.resolvedUser !== null ? html`<strong>${check.resolvedUser}</strong>` : 'None', check.resolvedUser !== null ? 'ok' : (check.problems.length > 0 ? 'problem' : 'info')))

  const summary = check.ok
    ? html`<div class="notice ok" role="status"><p>The service would know this request as <strong>${check.resolvedUser ?? ''}</strong>. Check that this is <em>your own</em> username.</p></div>`
    : html`<div class="notice ${check.problems.length > 0 ? 'bad' : 'warn'}" role="status"><p>${check.problems.length > 0
      ? `${check.problems.length === 1 ? 'One thing needs' : `${check.problems.length} things need`} fixing before patrons can use the service this way.`
      : 'The service does not know who you are on this request yet.'}</p></div>`

  return page({
    title: 'EZproxy check',
    root: './',
    branding,
    body: html`<h1>EZproxy check</h1>
<p class="lead">What the service received from EZproxy on this request. Header and secret values are never shown, so you can share a screenshot of this page.</p>
${summary}
<div class="table-scroll">
<table class="check">
<caption>What arrived on this request</caption>
<thead><tr><th scope="col">Check</th><th scope="col">Result</th><th scope="col">Status</th></tr></thead>
<tbody>
${rows.map(r => html`${r}\n`)}</tbody>
</table>
</div>
${check.problems.length > 0
? html`<h2>What to fix</h2>
<ul class="fixes">
${check.problems.map(p => html`<li>${p.text}</li>\n`)}</ul>`
: ''}
${check.notes.length > 0
? html`<h2>Notes</h2>
<ul class="notes">
${check.notes.map(n => html`<li>${n.text}</li>\n`)}</ul>`
: ''}
<p>${userobject ? html`<a href="./">Open your fines page</a> (signs you in through EZproxy), then reload this page. ` : ''}The set-up guide is <code>ezproxy-config/README.md</code>, section 5. This page is also available as JSON: <a href="?format=json">ezproxy-check?format=json</a>.</p>`
  })
}
