// A pay-link patron over real HTTP, for the pay-link test files: a stack whose PAY_LINK_URL is the service's own
// address (PUBLIC_URL stays the EZproxy stand-in), a link opened in a fresh browser from the open internet, a
// checkout from the fines page, and CashNet's way back as a browser takes it.

import type { Test } from 'tap'
import { issuePayLink } from '../../src/payments/pay-links.ts'
import { SANDBOX_COOKIE_SECRET, type StackOptions } from '../../src/sandbox/stack.ts'
import { type Answer, build, form, freePort, readForm, Stranger, type TestStack } from '../helper.ts'
import { type MailServer, runningMailServer } from './mail-server.ts'

/** A stack whose PAY_LINK_URL is the service's own address (not the EZproxy stand-in's PUBLIC_URL). */
export async function directStack (t: Test, env: Record<string, string> = {}, app: StackOptions['app'] = {}): Promise<TestStack & { payLinkUrl: string, smtp: MailServer }> {
  const smtp = await runningMailServer(t)
  const port = await freePort()
  const payLinkUrl = `http://127.0.0.1:${port}`
  const stack = await build(t, { ports: { service: port }, env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, PAY_LINK_URL: payLinkUrl, ...env }, app })
  t.equal(stack.serviceUrl, payLinkUrl, 'the pay link reaches the service directly')
  // (AUTH_MODE=primo has no EZproxy: PUBLIC_URL is the service's own address as well)
  if (env.AUTH_MODE !== 'primo') t.not(stack.config.publicUrl, payLinkUrl, 'PUBLIC_URL is the EZproxy stand-in')
  return { ...stack, payLinkUrl, smtp }
}

/** Opens a pay link for a patron (by Alma primary id) in a fresh browser. */
export async function openPayLink (t: Test, stack: TestStack & { payLinkUrl: string }, primaryId: string): Promise<Stranger> {
  const link = issuePayLink({ patronId: primaryId, primaryId, issuedBy: 'staff', ttlHours: 1, secret: SANDBOX_COOKIE_SECRET })
  await stack.app.ledger.recordPayLink(link, {})
  const patron = new Stranger(stack.payLinkUrl)
  t.equal((await patron.get(`/pay/${link.token}`)).status, 302, 'the link opens a session')
  return patron
}

/** The fines page's pay form with the given fees ticked, posted: the CashNet hand-off page's form. */
export async function checkOut (t: Test, patron: Stranger, feeIds: string[]): Promise<{ action: string, fields: Array<[string, string]> }> {
  const fines = await patron.get('/')
  t.equal(fines.status, 200, 'the fines page')
  const pay = readForm(fines.body, 'pay-form')
  const handoff = await patron.post('/checkout', [...pay.fields, ...feeIds.map((id): [string, string] => ['fee', id])])
  t.equal(handoff.status, 200, 'the hand-off page')
  const cashnet = readForm(handoff.body, 'cashnet-form')
  return { action: cashnet.action, fields: cashnet.fields }
}

/**
 * Pays on the CashNet sandbox page and follows CashNet's way back (signouturl) as a browser would: from CashNet's
 * site, so a POST back carries none of the service's SameSite=Lax cookies; redirects followed.
 */
export async function payOnCashnet (patron: Stranger, action: string, fields: Array<[string, string]>): Promise<Answer> {
  const page = await patron.request(action, { method: 'POST', body: form(fields) })
  const sessionAction = new URL(readForm(page.body).action, action).toString()
  const done = await patron.request(sessionAction, { method: 'POST', body: form({ action: 'pay' }) })
  let answer: Answer
  let at: string
  if (done.status >= 300 && done.status < 400) {
    at = new URL(String(done.headers.location), sessionAction).toString()
    answer = await patron.request(at, { crossSite: true })
  } else {
    const back = readForm(done.body, 'back')
    at = back.action
    answer = await patron.request(at, { method: 'POST', body: form(back.fields), crossSite: true })
  }
  // the service's own redirects are same-site: its cookies come along again
  for (let i = 0; i < 5 && answer.status >= 300 && answer.status < 400; i++) {
    at = new URL(String(answer.headers.location), at).toString()
    answer = await patron.get(at)
  }
  return answer
}
