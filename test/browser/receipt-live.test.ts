// Browser end-to-end: the receipt that updates itself while Alma records the payment. The Alma sandbox holds the
// pay call until the test has seen the waiting receipt, so both states are asserted on every run.

import t from 'tap'
import { build, until } from '../helper.ts'
import { heading, launch, openPage, signIn, TIMEOUT_MS } from './chromium.ts'

t.test('the receipt updates by itself when Alma has the payment, and announces it', async t => {
  const stack = await build(t, { env: { ALMA_TIMEOUT_MS: '60000' } })
  t.teardown(() => { stack.alma.releasePayments() })
  const browser = await launch(t)
  const { page, problems } = await openPage(browser)
  await signIn(page, stack, { button: 'Carol Chen' })
  await page.getByRole('button', { name: 'Pay $2.50' }).click()
  await page.waitForURL(url => url.href.startsWith(stack.cashnet.checkoutUrl))
  stack.alma.holdPayments() // Alma is slow to record the payment, for as long as this test needs
  const receiptLoaded = page.waitForURL(url => url.pathname === '/cashnet/return', { waitUntil: 'load' })
  await page.getByRole('button', { name: 'Pay $2.50' }).click()
  await receiptLoaded
  await until(() => stack.alma.heldPayments > 0, 'the posting to reach Alma and be held there', TIMEOUT_MS)

  t.equal(await heading(page), 'Payment received; the library system is being updated', 'the receipt first says the library system is being updated')
  t.equal(await page.locator('#receipt').getAttribute('data-state'), 'PAID')
  t.ok(await page.getByRole('link', { name: 'Check again now' }).isVisible(), 'with a way to check again by hand')
  t.match(await page.locator('.auto-note').innerText(), 'This page checks again by itself.')
  t.equal(await page.locator('#receipt-live').innerText(), '', 'nothing announced yet')

  stack.alma.releasePayments()
  await page.getByRole('heading', { level: 1, name: 'Payment received and recorded in the library system' }).waitFor({ timeout: TIMEOUT_MS })
  t.equal(await page.locator('#receipt').getAttribute('data-state'), 'POSTED')
  t.equal(await page.locator('#receipt-live').innerText(), 'Payment received and recorded in the library system', 'the change is announced in a live region')
  t.equal(await page.getByRole('link', { name: 'Check again now' }).count(), 0, 'nothing left to check')
  t.same(stack.alma.allExternalPayments().map(p => `${p.feeId}:${p.amountCents}`), ['300001:250'], 'Alma recorded the payment once')
  t.same(problems, [], 'no console errors')
})
