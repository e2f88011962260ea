// SPEC 13's configuration and the CSP of a PayPal deployment: PAYMENT_PROVIDER chooses which provider's variables
// are required, the PayPal secret never reaches a log line, and forms (and the checkout's redirect) may go to
// exactly the one provider's pages.

import t from 'tap'
import { loadConfig } from '../src/config.ts'
import { createMasker } from '../src/log.ts'
import { approvalOrigin } from '../src/providers/paypal/provider.ts'
import { build, send } from './helper.ts'

const BASE = { PUBLIC_URL: 'https://fines.example.edu', ALMA_API_KEY: 'k', EZPROXY_ALLOW: '127.0.0.1', COOKIE_SECRET: 'c'.repeat(40) }
const PAYPAL = { PAYMENT_PROVIDER: 'paypal', PAYPAL_CLIENT_ID: 'id', PAYPAL_CLIENT_SECRET: 'paypal-secret-value-123', PAYPAL_WEBHOOK_ID: '5GP028458E2496506' }
const CASHNET = { CASHNET_CHECKOUT_URL: 'https://commerce.cashnet.com/LIBFINES', CASHNET_ITEM_CODE: 'LIB-FINE', CASHNET_POSTBACK_ALLOW: '192.0.2.10' }

t.test('a PayPal deployment needs its three variables and no CashNet one; a CashNet deployment the reverse', async t => {
  const paypal = loadConfig({ ...BASE, ...PAYPAL })
  t.equal(paypal.paymentProvider, 'paypal')
  t.equal(paypal.paypalApiUrl, 'https://api-m.paypal.com', 'live PayPal by default')
  for (const variable of ['PAYPAL_CLIENT_ID', 'PAYPAL_CLIENT_SECRET', 'PAYPAL_WEBHOOK_ID']) {
    t.throws(() => loadConfig({ ...BASE, ...PAYPAL, [variable]: '' }), new RegExp(`^configuration: ${variable} is required when PAYMENT_PROVIDER=paypal`))
  }
  const cashnet = loadConfig({ ...BASE, ...CASHNET })
  t.equal(cashnet.paymentProvider, 'cashnet', 'CashNet by default')
  t.throws(() => loadConfig({ ...BASE, ...CASHNET, CASHNET_CHECKOUT_URL: '' }), /^configuration: CASHNET_CHECKOUT_URL is required/)
  t.throws(() => loadConfig({ ...BASE, ...PAYPAL, PAYMENT_PROVIDER: 'stripe' }), /PAYMENT_PROVIDER must be one of cashnet, paypal/)
  t.throws(() => loadConfig({ ...BASE, ...PAYPAL, PAYPAL_API_URL: 'ftp://x' }), /PAYPAL_API_URL/)
})

t.test('PAYPAL_CLIENT_SECRET is masked in log text', async t => {
  const config = loadConfig({ ...BASE, ...PAYPAL })
  const mask = createMasker([config.paypalClientSecret])
  t.equal(mask(`token call with ${config.paypalClientSecret} failed`), 'token call with [REDACTED] failed')
})

t.test('the approval origin follows PAYPAL_API_URL', async t => {
  t.equal(approvalOrigin('https://api-m.paypal.com'), 'https://www.paypal.com')
  t.equal(approvalOrigin('https://api-m.sandbox.paypal.com'), 'https://www.sandbox.paypal.com')
  t.equal(approvalOrigin('http://127.0.0.1:4567'), 'http://127.0.0.1:4567', 'a stand-in approves on its own origin')
})

function formAction (csp: string): string[] {
  return (/form-action ([^;]*)/.exec(csp)?.[1] ?? '').trim().split(/\s+/)
}

t.test('the CSP lets forms and the checkout redirect go to exactly the one provider', async t => {
  const paypal = await build(t, { env: { PAYMENT_PROVIDER: 'paypal' } })
  const paypalCsp = String((await send(`${paypal.serviceUrl}/healthz`)).headers['content-security-policy'])
  t.same(formAction(paypalCsp), ["'self'", paypal.paypal?.url], 'PayPal: its approval origin and nothing more')
  t.notMatch(paypalCsp, new URL(paypal.cashnet.checkoutUrl).origin.replace(/\./g, '\\.'), 'not CashNet')
  const cashnet = await build(t)
  const cashnetCsp = String((await send(`${cashnet.serviceUrl}/healthz`)).headers['content-security-policy'])
  t.same(formAction(cashnetCsp), ["'self'", new URL(cashnet.cashnet.checkoutUrl).origin], 'CashNet: its store and nothing more')
  t.equal(cashnet.paypal, null)
  t.equal((await send(`${cashnet.serviceUrl}/paypal/webhook`, { method: 'POST', body: '{}' })).status, 404, 'no PayPal routes for a CashNet deployment')
})
