// axe-core and screenshots in the browser: the receipt after a declined and a cancelled payment, at 1280 and 375 px.

import t from 'tap'
import { build } from '../helper.ts'
import { checkPage, heading, launch, throughCashnet } from './chromium.ts'

t.test('receipts of unpaid attempts: no serious or critical axe violations at 1280 and 375 px', async t => {
  const stack = await build(t)
  const browser = await launch(t)

  await t.test('declined', async t => {
    const { page, problems } = await throughCashnet(browser, stack, 'Carol Chen', 'Decline')
    t.equal(await heading(page), 'Your payment was declined')
    t.ok(await page.getByRole('link', { name: 'Back to your fines to try again' }).isVisible())
    await checkPage(t, page, 'receipt-declined')
    t.same(problems, [])
  })

  await t.test('cancelled', async t => {
    const { page, problems } = await throughCashnet(browser, stack, 'Zoë Ångström-Núñez', 'Cancel')
    t.equal(await heading(page), 'Payment cancelled')
    await checkPage(t, page, 'receipt-cancelled')
    t.same(problems, [])
  })
})
