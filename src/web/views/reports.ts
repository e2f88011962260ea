// The bursar's report page (GET /admin/reports): a date range in the library's time zone, totals per day, per fee
// type and per owning library for money posted to Alma, with money refunded of it, money refunded that was never
// posted and money taken but not posted shown apart, and a link to the same range as CSV. The numbers come from src/jobs/reports.ts; this only renders.

import type { Report, Totals } from '../../jobs/reports.ts'
import { PROVIDER_LABEL } from '../../providers/provider.ts'
import { formatMoney } from '../../money.ts'
import { type Html, html } from '../html.ts'
import { type Branding, page } from './layout.ts'

function money (t: Totals & { currency: string }): { posted: string, refunded: string, refundedUnposted: string, reversed: string, unposted: string } {
  return { posted: formatMoney(t.posted, t.currency), refunded: formatMoney(t.refunded, t.currency), refundedUnposted: formatMoney(t.refundedUnposted, t.currency), reversed: formatMoney(t.reversed, t.currency), unposted: formatMoney(t.unposted, t.currency) }
}

function table (caption: string, heading: string, rows: Array<{ key: string, currency: string } & Totals>): Html {
  const body = rows.map(r => {
    const m = money(r)
    return html`<tr><th scope="row">${r.key}</th><td>${r.currency}</td><td class="amount">${m.posted}</td><td class="amount">${r.lines}</td><td class="amount">${m.refunded}</td><td class="amount">${m.unposted}</td><td class="amount">${m.refundedUnposted}</td><td class="amount">${m.reversed}</td></tr>`
  })
  return html`<div class="table-scroll" tabindex="0" role="region" aria-label="${caption}">
<table class="admin report">
<caption>${caption}</caption>
<thead><tr><th scope="col">${heading}</th><th scope="col">Currency</th><th scope="col" class="amount">Posted to Alma</th><th scope="col" class="amount">Fee lines</th><th scope="col" class="amount">Refunded</th><th scope="col" class="amount">Taken, not posted</th><th scope="col" class="amount">Refunded, never posted</th><th scope="col" class="amount">Of the refunded, taken back by PayPal</th></tr></thead>
<tbody>
${body.length > 0 ? body : html`<tr><td colspan="8">Nothing in this range.</td></tr>`}
</tbody>
</table>
</div>`
}

export function reportPage (branding: Branding, report: Report): string {
  const csv = `reports?from=${encodeURIComponent(report.from)}&to=${encodeURIComponent(report.to)}&format=csv`
  const provider = PROVIDER_LABEL[branding.paymentProvider ?? 'cashnet']
  const totals = report.total.map(t => {
    const m = money(t)
    return html`<li><strong>${t.currency}</strong>: ${m.posted} posted to Alma (${t.lines} fee line(s)); ${m.refunded} refunded; ${m.unposted} taken by ${provider}, not posted; ${m.refundedUnposted} refunded that was never posted${t.reversed > 0 ? html`; of the refunded, <strong>${m.reversed} taken back by PayPal</strong> (reversals and chargebacks: see the payments that need attention)` : ''}</li>`
  })
  return page({
    title: 'Reports (staff)',
    root: '../',
    branding,
    body: html`<p><a href="../admin">All payments</a></p>
<h1>Payments by day</h1>
<form class="filters" method="get" action="reports">
<label for="from">From (day) <input type="date" id="from" name="from" value="${report.from}" required></label>
<label for="to">To (day, included) <input type="date" id="to" name="to" value="${report.to}" required></label>
<div class="actions"><button class="button" type="submit">Show totals</button>
<a href="${csv}" download>Download CSV (one row per day, fee type, owning library and currency)</a></div>
</form>
<p>Days run from midnight to midnight in <strong>${report.timeZone}</strong>, as in the GL journal (<code>export:gl</code>): each day's
“Posted to Alma” is that day's journal's credit lines. “Refunded” is refunds recorded that day of money posted to Alma: the
journal's refund lines. “Taken, not posted” is money ${provider} took that day that Alma has not (or not all) accepted so far.
“Refunded, never posted” is refunds recorded that day of money Alma never accepted (a double charge, an amount Alma could not
apply): it was never revenue, so the journal has no line for it. Money PayPal took back by itself (a reversal or chargeback,
recorded when PayPal reports it) counts as refunded, as the journal books it; “Of the refunded, taken back by PayPal” says how
much of the refunded money that was. Nothing is changed in Alma for it: staff decide whether the fees are owed again.</p>
<ul class="totals">${totals.length > 0 ? totals : html`<li>Nothing posted, refunded or taken in this range.</li>`}</ul>
${table('By day', 'Day', report.byDay)}
${table('By fee type', 'Fee type', report.byFeeType)}
${table('By owning library', 'Owning library', report.byOwner)}`
  })
}
