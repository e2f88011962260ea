// The patron's side of a PayPal payment against the PayPal stand-in, as the PayPal test files drive it: ticking fees
// and being sent to PayPal, then deciding on the stand-in's approval page.

import { type Browser, readForm } from '../helper.ts'

/** The patron ticks fees (all when none are named) and pays: POST /checkout answers a redirect to the stand-in's approval page. */
export async function startPaying (browser: Browser, feeIds?: string[]): Promise<{ approveUrl: string, orderId: string }> {
  const fines = await browser.get('/')
  const pay = readForm(fines.body, 'pay-form')
  const answer = await browser.post('/checkout', [...pay.fields, ...(feeIds ?? pay.checkboxes).map((id): [string, string] => ['fee', id])])
  if (answer.status !== 303) throw new Error(`checkout answered ${answer.status}: ${answer.body.slice(0, 300)}`)
  const approveUrl = String(answer.headers.location)
  return { approveUrl, orderId: new URL(approveUrl).searchParams.get('token') ?? '' }
}

/** On the stand-in's approval page: approve, decline or cancel; answers where PayPal sends the browser. */
export async function decide (browser: Browser, approveUrl: string, action: 'approve' | 'decline' | 'cancel'): Promise<string> {
  const page = await browser.request(approveUrl)
  if (page.status !== 200) throw new Error(`approval page answered ${page.status}`)
  const form = readForm(page.body)
  const decided = await browser.request(new URL(form.action, approveUrl).toString(), { method: 'POST', body: new URLSearchParams([...form.fields, ['action', action]]).toString() })
  if (decided.status !== 303) throw new Error(`decide answered ${decided.status}`)
  return String(decided.headers.location)
}

/** Approves on the stand-in's approval page: answers the return URL PayPal sends the browser to. */
export async function approve (browser: Browser, approveUrl: string): Promise<string> {
  return await decide(browser, approveUrl, 'approve')
}
