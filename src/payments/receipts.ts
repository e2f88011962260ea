// The receipt e-mail: what a patron gets when a payment is recorded in Alma (or, honestly, when it needs staff
// first), and the copy for the library mailbox. Plain text and HTML, every outside value escaped, amounts from
// integer cents, the date and time in the library's time zone with the zone named. A receipt states the money the
// provider reported collecting, never the checkout's intended total: where the two differ it says both, calmly.
// Pure: rendering only.

import escapeHtml from 'escape-html'
import { createHash } from 'node:crypto'
import { type Cents, formatMoney, sumCents } from '../money.ts'
import type { Ledger } from '../ledger/ledger.ts'
import type { CashnetReport, Checkout, CheckoutState, ComposeMessages, NewOutboxMessage } from '../ledger/types.ts'
import { madeWithPayLink } from './checkout.ts'
import { paymentReport } from './staff-actions.ts'

export interface ReceiptLine {
  /** the fee type as the patron knows it ("Overdue fine", "Lost item replacement") */
  description: string
  /** the item's title, or '' */
  title: string
  /** what this payment put on the fee */
  amount: Cents
  /** the fee's balance just before this payment; when more than `amount`, the line was a part payment */
  balanceBefore: Cents
}

export type ReceiptOutcome =
  /** Alma has the payment: the fees are paid (or paid down) */
  | 'recorded'
  /** the money was taken but a person must finish recording it (NEEDS_ATTENTION) */
  | 'needs_staff'

export interface ReceiptPayment {
  /** our reference for the payment (the checkout id) */
  reference: string
  outcome: ReceiptOutcome
  patronName: string
  /** the username, for the library copy */
  patronId: string
  /** Alma's primary id, for the library copy */
  primaryId: string
  paidAt: Date
  currency: string
  /** the payment service's transaction number (CashNet's tx, PayPal's capture id), when there is one */
  providerTransaction: string | null
  /** the payment service's name, as patrons know it (default CashNet) */
  providerName?: string
  lines: ReceiptLine[]
  /** a page where the patron can see and print this receipt, if the service has one */
  receiptUrl?: string
  /**
   * The base of the e-mail's links to the service, where this patron's browser reaches it (PAY_LINK_URL for a
   * payment made with a pay link); a relative logo resolves against it too. Default: branding.publicUrl.
   */
  baseUrl?: string
  /**
   * What the payment service reported collecting for the payment (its money record), when the caller knows:
   * null when it reported no amount for it. Left out, the lines' total is taken as received. Read when the
   * payment needs staff; a recorded receipt tells what Alma took, line by line.
   */
  received?: Cents | null
}

/**
 * The money a receipt may speak of: what was due (the checkout's total) and what the provider reported collecting
 * for the checkout's own tx (null when it reported no amount for it), and how they compare. A capture in another
 * currency confirms nothing in the checkout's (its report's total is 0): unconfirmed, never "received $0.00".
 */
export interface ReceivedMoney {
  due: Cents
  received: Cents | null
  difference: 'none' | 'short' | 'over' | 'unconfirmed'
}

export function receivedMoney (due: Cents, received: Cents | null): ReceivedMoney {
  const difference = received === null || received <= 0 ? 'unconfirmed' : received < due ? 'short' : received > due ? 'over' : 'none'
  return { due, received, difference }
}

/** What a checkout's money record (its provider's reports are enough) says was received, against its total. */
export function receivedFor (record: { checkout: Pick<Checkout, 'tx' | 'total'>, reports: readonly CashnetReport[] }): ReceivedMoney {
  return receivedMoney(record.checkout.total, paymentReport(record)?.total ?? null)
}

/** The amount the provider confirmed receiving, or null when it confirmed none (or the money was never taken). */
export function amountReceived (money: ReceivedMoney | undefined): Cents | null {
  return money === undefined || money.difference === 'unconfirmed' ? null : money.received
}

/** States in which the provider's money was taken, so that what it reported collecting is the amount to state. */
export const MONEY_TAKEN_STATES: ReadonlySet<CheckoutState> = new Set(['PAID', 'POSTED', 'NEEDS_ATTENTION'])

type Listed = Pick<Checkout, 'id' | 'state' | 'tx' | 'total'>

/**
 * For a page of payments (a list, a page of the staff CSV): what was received against what was due, for each
 * checkout whose money was taken; the others are absent. The provider's reports of the whole page in one read.
 */
export async function receivedOf (ledger: Pick<Ledger, 'reportsOf'>, checkouts: readonly Listed[]): Promise<Map<string, ReceivedMoney>> {
  const taken = checkouts.filter(c => MONEY_TAKEN_STATES.has(c.state))
  if (taken.length === 0) return new Map()
  const reports = await ledger.reportsOf(taken.map(c => c.id))
  return new Map(taken.map(c => [c.id, receivedFor({ checkout: c, reports: reports.get(c.id) ?? [] })]))
}

/**
 * For lists of payments (the patron's /history, the staff list): what was received against what was due, for each
 * checkout whose money was taken and whose received amount is not what was due. Checkouts absent from the map are
 * stated by their total.
 */
export async function differencesOf (ledger: Pick<Ledger, 'reportsOf'>, checkouts: readonly Listed[]): Promise<Map<string, ReceivedMoney>> {
  return new Map([...await receivedOf(ledger, checkouts)].filter(([, money]) => money.difference !== 'none'))
}

/**
 * The patron's words for a payment whose received amount is not what was due (both the page and the e-mail say
 * these): what was received, what was due, that staff will look at the difference and contact them. "You do not
 * need to pay again" only for money actually received.
 */
export function differenceWording (money: ReceivedMoney, format: (amount: Cents) => string): { headline: string, message: string[] } {
  const due = format(money.due)
  const received = format((money.received ?? 0) as Cents)
  const gap = format(Math.abs((money.received ?? 0) - money.due) as Cents)
  switch (money.difference) {
    case 'short':
      return {
        headline: `We received ${received} of the ${due} due`,
        message: [
          `The payment service reported taking ${received} for this payment, but the fees it was for came to ${due}: ${gap} of it was not received.`,
          `Library staff will look at the ${gap} difference and contact you. You do not need to pay the ${received} again; until staff contact you, the fees below stay on your library account as they were.`
        ]
      }
    case 'over':
      return {
        headline: `We received ${received}, more than the ${due} due`,
        message: [
          `The payment service reported taking ${received} for this payment, but the fees it was for came to ${due}.`,
          `Library staff will look at the ${gap} difference and contact you. You do not need to pay again.`
        ]
      }
    default:
      return {
        headline: 'We could not confirm the amount of your payment',
        message: [
          `The payment service did not report an amount we could match to the ${due} due for these fees.`,
          'Library staff will look at it and contact you. If you contact the library first, quote the reference below.'
        ]
      }
  }
}

export interface ReceiptBranding {
  libraryName: string
  /** #rrggbb */
  accentColor: string
  /** absolute, or a path on the service (resolved against the e-mail's base URL); '' for none */
  logoUrl: string
  publicUrl: string
  /** IANA zone, e.g. America/New_York (TIMEZONE) */
  timeZone: string
  locale?: string
}

export interface RenderedEmail {
  subject: string
  text: string
  html: string
}

const DEFAULT_ACCENT = '#1d4f91'

/** "March 2, 2026 at 10:04 AM EST": the library's wall clock, with its zone so nobody has to guess. */
export function formatReceiptTime (at: Date, timeZone: string, locale = 'en-US'): string {
  return new Intl.DateTimeFormat(locale, {
    timeZone, year: 'numeric', month: 'long', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZoneName: 'short'
  }).format(at)
}

/** Values from Alma and configuration go into one-line places (the subject, a table cell): no line breaks there. */
function oneLine (value: string): string {
  return value.replace(/[\p{Cc}\u2028\u2029]+/gu, ' ').trim()
}

function isPart (line: ReceiptLine): boolean {
  return line.balanceBefore > line.amount
}

interface Money { (amount: Cents): string }

function lineText (line: ReceiptLine, money: Money): string {
  const what = oneLine(line.title === '' ? line.description : `${line.description}: ${line.title}`)
  if (!isPart(line)) return `${what}\n    ${money(line.amount)}`
  return `${what}\n    paid ${money(line.amount)} of ${money(line.balanceBefore)}, ${money((line.balanceBefore - line.amount) as Cents)} left`
}

function referenceText (payment: ReceiptPayment): string {
  const cashnet = payment.providerTransaction !== null && payment.providerTransaction !== ''
    ? ` ${payment.providerName ?? 'CashNet'}, the payment service, numbers the same payment ${oneLine(payment.providerTransaction)}.`
    : ''
  return `Your reference is ${oneLine(payment.reference)}. Quote it if you contact the library about this payment: it is how staff find it.${cashnet}`
}

interface Wording { subject: string, heading: string, message: string[], linesCaption: string }

const DUE_CAPTION = 'The fees this payment was for, and what was due on each'

/** The payment's money when it needs staff and what was received is not what was due; null otherwise. */
function differing (payment: ReceiptPayment): ReceivedMoney | null {
  if (payment.outcome !== 'needs_staff' || payment.received === undefined) return null
  const money = receivedMoney(sumCents(payment.lines.map(l => l.amount)), payment.received)
  return money.difference === 'none' ? null : money
}

function patronWording (payment: ReceiptPayment, libraryName: string, total: string, money: Money): Wording {
  const differs = differing(payment)
  if (differs !== null) {
    const { headline, message } = differenceWording(differs, money)
    return { subject: `${libraryName}: ${headline.charAt(0).toLowerCase()}${headline.slice(1)}`, heading: headline, message, linesCaption: DUE_CAPTION }
  }
  if (payment.outcome === 'needs_staff') {
    return {
      subject: `${libraryName}: we received your payment of ${total}`,
      heading: `We received your payment of ${total}`,
      message: [
        'Library staff are checking it before it shows on your library account. There is nothing more you need to do, and you do not need to pay again.',
        'If anything about it needs your attention, the library will contact you.'
      ],
      linesCaption: 'The fees this payment is for'
    }
  }
  return {
    subject: `${libraryName}: receipt for your payment of ${total}`,
    heading: `Thank you: your payment of ${total} is recorded`,
    message: ['Your library account has been updated. Keep this e-mail as your receipt.'],
    linesCaption: 'Fees paid'
  }
}

function libraryWording (payment: ReceiptPayment, libraryName: string, total: string, admin: string, money: Money): Wording {
  const who = `${oneLine(payment.patronName)} (${oneLine(payment.patronId)}, Alma ${oneLine(payment.primaryId)})`
  const differs = differing(payment)
  if (differs !== null) {
    const amounts = differs.difference === 'unconfirmed'
      ? `amount not confirmed, ${money(differs.due)} due`
      : `${money(differs.received as Cents)} received of ${money(differs.due)} due`
    return {
      subject: `${libraryName}: payment needs staff: ${oneLine(payment.patronName)} ${amounts} (${oneLine(payment.reference)})`,
      heading: `Copy: payment from ${who} needs staff: ${amounts}`,
      message: [
        'The payment service reported another amount than the checkout. The patron was told what was received, what was due, and that staff will look at the difference and contact them. It is not recorded in Alma.',
        `Details and the actions to finish it: ${admin}`
      ],
      linesCaption: DUE_CAPTION
    }
  }
  if (payment.outcome === 'needs_staff') {
    return {
      subject: `${libraryName}: payment needs staff: ${oneLine(payment.patronName)} ${total} (${oneLine(payment.reference)})`,
      heading: `Copy: payment of ${total} from ${who} needs staff`,
      message: [
        'The patron was told that the payment was received and that staff are checking it. It is not yet fully recorded in Alma.',
        `Details and the actions to finish it: ${admin}`
      ],
      linesCaption: 'The fees this payment is for'
    }
  }
  return {
    subject: `${libraryName}: copy of receipt: ${oneLine(payment.patronName)} ${total} (${oneLine(payment.reference)})`,
    heading: `Copy: payment of ${total} from ${who}, recorded in Alma`,
    message: [`This is the library's copy of the receipt the patron was sent. Details: ${admin}`],
    linesCaption: 'Fees paid'
  }
}

/** The logo as a mail client needs it: absolute, a path on the service put on the base of the e-mail's own links. */
function resolveLogo (branding: ReceiptBranding, baseUrl: string): string {
  const logo = branding.logoUrl
  if (/^https?:\/\//.test(logo)) return logo
  if (logo.startsWith('/')) return `${baseUrl.replace(/\/+$/, '')}${logo}`
  return ''
}

function render (payment: ReceiptPayment, branding: ReceiptBranding, wording: Wording): RenderedEmail {
  const money: Money = amount => formatMoney(amount, payment.currency, branding.locale)
  const total = money(sumCents(payment.lines.map(l => l.amount)))
  const when = formatReceiptTime(payment.paidAt, branding.timeZone, branding.locale)
  const libraryName = oneLine(branding.libraryName)
  const accent = /^#[0-9A-Fa-f]{6}$/.test(branding.accentColor) ? branding.accentColor : DEFAULT_ACCENT
  const reference = referenceText(payment)
  const receiptUrl = payment.receiptUrl ?? ''
  const differs = differing(payment)
  // where what was received is not what was due, both are stated, and the lines are what was due, not paid
  const amountFacts: Array<[string, string]> = differs === null
    ? [['Amount', total]]
    : [['Received', differs.difference === 'unconfirmed' ? 'not confirmed' : money(differs.received as Cents)], ['Due', total]]
  const totalLabel = differs === null ? 'Total' : 'Total due'
  const line = (l: ReceiptLine): ReceiptLine => differs === null ? l : { ...l, balanceBefore: l.amount }

  const text = [
    libraryName,
    '',
    wording.heading,
    '',
    ...wording.message.flatMap(m => [m, '']),
    `Date: ${when}`,
    ...amountFacts.map(([k, v]) => `${k}: ${v}`),
    `Reference: ${oneLine(payment.reference)}`,
    ...(payment.providerTransaction !== null && payment.providerTransaction !== '' ? [`${payment.providerName ?? 'CashNet'} transaction: ${oneLine(payment.providerTransaction)}`] : []),
    '',
    `${wording.linesCaption}:`,
    ...payment.lines.map(l => `- ${lineText(line(l), money)}`),
    `${totalLabel}: ${total}`,
    '',
    reference,
    ...(receiptUrl !== '' ? ['', `See or print this receipt: ${receiptUrl}`] : []),
    ''
  ].join('\n')

  const e = (value: string): string => escapeHtml(value)
  const cell = 'padding:6px 8px;border-bottom:1px solid #ddd;vertical-align:top'
  const rows = payment.lines.map(line).map(line => {
    const what = line.title === '' ? e(oneLine(line.description)) : `${e(oneLine(line.description))}<br><span style="color:#555">${e(oneLine(line.title))}</span>`
    const amount = isPart(line)
      ? `paid ${e(money(line.amount))} of ${e(money(line.balanceBefore))},<br>${e(money((line.balanceBefore - line.amount) as Cents))} left`
      : e(money(line.amount))
    return `<tr><td style="${cell}">${what}</td><td style="${cell};text-align:right;white-space:nowrap">${amount}</td></tr>`
  }).join('\n')
  const logo = resolveLogo(branding, payment.baseUrl ?? branding.publicUrl)
  const facts: Array<[string, string]> = [['Date', when], ...amountFacts, ['Reference', oneLine(payment.reference)]]
  if (payment.providerTransaction !== null && payment.providerTransaction !== '') facts.push([`${payment.providerName ?? 'CashNet'} transaction`, oneLine(payment.providerTransaction)])

  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${e(wording.subject)}</title></head>
<body style="margin:0;padding:0;background:#f4f4f4;font-family:Arial,Helvetica,sans-serif;color:#1a1a1a">
<div style="max-width:600px;margin:0 auto;background:#ffffff">
<div style="background:${accent};color:#ffffff;padding:16px 20px;font-size:20px;font-weight:bold">${logo !== '' ? `<img src="${e(logo)}" alt="" height="40" style="vertical-align:middle;margin-right:10px">` : ''}${e(libraryName)}</div>
<div style="padding:20px">
<h1 style="font-size:22px;margin:0 0 12px">${e(wording.heading)}</h1>
${wording.message.map(m => `<p style="margin:0 0 12px;line-height:1.4">${e(m)}</p>`).join('\n')}
<table role="presentation" style="border-collapse:collapse;margin:12px 0">
${facts.map(([k, v]) => `<tr><th scope="row" style="text-align:left;padding:2px 16px 2px 0;font-weight:normal;color:#555">${e(k)}</th><td style="padding:2px 0"><strong>${e(v)}</strong></td></tr>`).join('\n')}
</table>
<table style="border-collapse:collapse;width:100%;margin:16px 0">
<caption style="text-align:left;font-weight:bold;padding:0 0 6px">${e(wording.linesCaption)}</caption>
<thead><tr><th scope="col" style="${cell};text-align:left">Fee</th><th scope="col" style="${cell};text-align:right">Amount</th></tr></thead>
<tbody>
${rows}
</tbody>
<tfoot><tr><th scope="row" style="padding:8px;text-align:left">${totalLabel}</th><td style="padding:8px;text-align:right;font-weight:bold">${e(total)}</td></tr></tfoot>
</table>
<p style="margin:0 0 12px;line-height:1.4;color:#333">${e(reference)}</p>
${receiptUrl !== '' ? `<p style="margin:0 0 12px"><a href="${e(receiptUrl)}" style="color:${accent}">See or print this receipt</a></p>` : ''}
</div></div>
</body></html>
`
  return { subject: wording.subject, text, html }
}

export function renderPatronReceipt (payment: ReceiptPayment, branding: ReceiptBranding): RenderedEmail {
  const money: Money = amount => formatMoney(amount, payment.currency, branding.locale)
  const total = money(sumCents(payment.lines.map(l => l.amount)))
  return render(payment, branding, patronWording(payment, oneLine(branding.libraryName), total, money))
}

export function renderLibraryCopy (payment: ReceiptPayment, branding: ReceiptBranding): RenderedEmail {
  const money: Money = amount => formatMoney(amount, payment.currency, branding.locale)
  const total = money(sumCents(payment.lines.map(l => l.amount)))
  const admin = `${branding.publicUrl.replace(/\/+$/, '')}/admin/payments/${encodeURIComponent(payment.reference)}`
  return render(payment, branding, libraryWording(payment, oneLine(branding.libraryName), total, admin, money))
}

export interface ReceiptAddresses {
  /** the patron's address from Alma; '' when Alma has none */
  patronEmail: string
  /** LIBRARY_RECEIPT_COPY_TO; '' for no copy */
  libraryCopyTo: string
  /** the sender address */
  from: string
}

/** A plausible single mailbox: enough to keep a typo in Alma from becoming a bounce loop, not RFC 5322. */
const MAILBOX = /^[^\s@<>()",;:\\]+@[^\s@<>()",;:\\]+\.[^\s@<>()",;:\\]+$/

export function isPlausibleEmail (address: string): boolean {
  return address.length <= 254 && MAILBOX.test(address)
}

/**
 * The outbox rows for one payment's receipt: the patron's (when Alma has a usable address) and the library's
 * copy (when configured). Each id is derived from the reference and the outcome, so enqueueing them again in a
 * retried transaction names the same rows, and a receipt for the same payment is never queued twice.
 */
export function receiptMessages (payment: ReceiptPayment, branding: ReceiptBranding, addresses: ReceiptAddresses): NewOutboxMessage[] {
  const messages: NewOutboxMessage[] = []
  const ref = /^[A-Za-z0-9_-]{1,128}$/.test(payment.reference) ? payment.reference : createHash('sha256').update(payment.reference).digest('hex').slice(0, 32)
  const id = (who: string): string => `receipt-${ref}-${payment.outcome === 'recorded' ? 'recorded' : 'staff'}-${who}`
  const patronEmail = addresses.patronEmail.trim()
  if (isPlausibleEmail(patronEmail)) {
    messages.push({ id: id('patron'), from: addresses.from, to: patronEmail, ...renderPatronReceipt(payment, branding) })
  }
  const copyTo = addresses.libraryCopyTo.trim()
  if (copyTo !== '') {
    messages.push({ id: id('library'), from: addresses.from, to: copyTo, ...renderLibraryCopy(payment, branding) })
  }
  return messages
}

export interface ReceiptSettings {
  branding: ReceiptBranding
  /** RECEIPT_EMAIL_FROM (else ALERT_EMAIL_FROM) */
  from: string
  /** LIBRARY_RECEIPT_COPY_TO; '' for no copy */
  libraryCopyTo: string
  /** PAYMENT_PROVIDER: whose transaction number the receipt quotes and whose return page shows it (default cashnet) */
  provider?: 'cashnet' | 'paypal'
  /**
   * PAY_LINK_URL: where the receipt of a payment made in a pay-link session is shown (its patron has no EZproxy,
   * and owns that checkout only in a pay-link session); the others' are on branding.publicUrl
   */
  payLinkUrl?: string
}

/** What a checkout's lines put on its fees, as the receipt tells it. */
function receiptLines (checkout: Checkout, outcome: ReceiptOutcome): ReceiptLine[] {
  const lines: ReceiptLine[] = []
  for (const line of checkout.lines) {
    // recorded: what Alma took (a line CashNet collected nothing for is left out); for staff: what was paid
    const amount = outcome === 'recorded' ? line.postedAmount ?? line.amount : line.amount
    if (amount <= 0) continue
    const balance = line.balance ?? amount
    lines.push({ description: line.feeTypeDesc || line.feeType, title: line.title, amount, balanceBefore: (balance > amount ? balance : amount) as Cents })
  }
  return lines
}

/**
 * The receipt e-mails a checkout's new state calls for, as the ledger writes them to the outbox in the same
 * transaction as the state change: "recorded" when it becomes POSTED, the honest "received, staff are checking"
 * when it needs staff; nothing for any other state. Pure and synchronous (it runs inside the transaction).
 */
export function receiptComposer (settings: ReceiptSettings): ComposeMessages {
  return (checkout, record) => {
    const outcome: ReceiptOutcome | null = checkout.state === 'POSTED' ? 'recorded' : checkout.state === 'NEEDS_ATTENTION' ? 'needs_staff' : null
    if (outcome === null) return []
    const lines = receiptLines(checkout, outcome)
    if (lines.length === 0) return []
    const base = (madeWithPayLink(checkout) && settings.payLinkUrl !== undefined ? settings.payLinkUrl : settings.branding.publicUrl).replace(/\/+$/, '')
    const paypal = settings.provider === 'paypal'
    const payment: ReceiptPayment = {
      reference: checkout.id,
      outcome,
      patronName: checkout.patronName,
      patronId: checkout.userId,
      primaryId: checkout.primaryId,
      paidAt: new Date(checkout.paidAt ?? checkout.updatedAt),
      currency: checkout.currency,
      providerTransaction: checkout.tx,
      providerName: paypal ? 'PayPal' : 'CashNet',
      lines,
      receiptUrl: `${base}/${paypal ? 'paypal' : 'cashnet'}/return?ref=${encodeURIComponent(checkout.id)}`,
      baseUrl: base,
      received: receivedFor(record).received
    }
    return receiptMessages(payment, settings.branding, { patronEmail: checkout.email, libraryCopyTo: settings.libraryCopyTo, from: settings.from })
  }
}
