// axe-core and screenshots in the browser: the receipt while waiting for CashNet's postback (CREATED) and the
// page for a payment that is not the patron's, at 1280 and 375 px.

import t from 'tap'
import type { Page } from 'playwright-core'
import { build } from '../helper.ts'
import { checkPage, heading, launch, openPage, signIn, throughCashnet } from './chromium.ts'

t.test('receipts without a result: no serious or critical axe violations at 1280 and 375 px', async t => {
  const stack = await build(t)
  const browser = await launch(t)
  const stateOf = async (page: Page): Promise<string | null> => await page.locator('#receipt').getAttribute('data-state')

  await t.test('waiting for CashNet (CREATED: no postback yet)', async t => {
    const { page, problems } = await throughCashnet(browser, stack, 'Nadia Noid', 'Pay', () => { stack.cashnet.behaviour.noPostback = true })
    t.equal(await heading(page), 'Waiting for confirmation from CashNet')
    t.equal(await stateOf(page), 'CREATED')
    t.match(await page.locator('.auto-note').innerText(), 'checks again by itself', 'says it checks again')
    t.equal(await page.locator('meta[http-equiv="refresh"]').count(), 0, 'no meta refresh (WCAG 2.2.1)')
    await checkPage(t, page, 'receipt-waiting')
    t.same(problems, [])
  })

  await t.test('no such payment', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Bob Baker' })
    await page.goto(`${stack.publicUrl}/cashnet/return?ref=0123456789abcdef0123456789abcdef`)
    t.equal(await heading(page), 'We could not find that payment')
    await checkPage(t, page, 'receipt-not-found')
    t.same(problems.filter(p => !p.includes('404')), [])
  })
})
