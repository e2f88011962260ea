// Browser end-to-end: the receipt that updates itself while Alma records the payment.

import t from 'tap'
import { build } from '../helper.ts'
import { heading, launch, openPage, signIn, TIMEOUT_MS } from './chromium.ts'

t.test('the receipt updates by itself when Alma has the payment, and announces it', async t => {
  const stack = await build(t, { env: { ALMA_TIMEOUT_MS: '30000' } })
  const browser = await launch(t)
  const { page, problems } = await openPage(browser)
  await signIn(page, stack, { button: 'Carol Chen' })
  await page.getByRole('button', { name: 'Pay $2.50' }).click()
  await page.waitForURL(url => url.href.startsWith(stack.cashnet.checkoutUrl))
  stack.alma.faults.latencyMs = 4000 // Alma is slow to record the payment
  const receiptLoaded = page.waitForURL(url => url.pathname === '/cashnet/return', { waitUntil: 'load' })
  await page.getByRole('button', { name: 'Pay $2.50' }).click()
  await receiptLoaded
  const first = await heading(page)
  if (first === 'Payment received; the library system is being updated') {
    t.pass('the receipt first says the library system is being updated')
    t.ok(await page.getByRole('link', { name: 'Check again now' }).isVisible(), 'with a way to check again by hand')
  } else {
    t.comment(`the machine was slow enough that Alma already had the payment: ${first}`)
  }
  await page.getByRole('heading', { level: 1, name: 'Payment received and recorded in the library system' }).waitFor({ timeout: TIMEOUT_MS })
  t.equal(await page.locator('#receipt').getAttribute('data-state'), 'POSTED')
  if (first !== 'Payment received and recorded in the library system') {
    t.equal(await page.locator('#receipt-live').innerText(), 'Payment received and recorded in the library system', 'the change is announced in a live region')
  }
  t.equal(await page.getByRole('link', { name: 'Check again now' }).count(), 0, 'nothing left to check')
  t.same(problems, [], 'no console errors')
})
