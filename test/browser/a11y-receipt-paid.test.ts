// axe-core and screenshots in the browser: the receipt once the payment is recorded in Alma (POSTED) and when
// staff must finish recording it (NEEDS_ATTENTION), at 1280 and 375 px.

import t from 'tap'
import type { Page } from 'playwright-core'
import { build, until } from '../helper.ts'
import { checkPage, heading, launch, throughCashnet } from './chromium.ts'

t.test('receipts after paying: no serious or critical axe violations at 1280 and 375 px', async t => {
  const stack = await build(t)
  const browser = await launch(t)
  const stateOf = async (page: Page): Promise<string | null> => await page.locator('#receipt').getAttribute('data-state')

  await t.test('recorded in Alma (POSTED)', async t => {
    const { page, problems } = await throughCashnet(browser, stack, 'Erin Evans', 'Pay')
    await stack.app.worker.idle()
    await page.getByRole('heading', { level: 1, name: 'Payment received and recorded in the library system' }).waitFor()
    t.equal(await stateOf(page), 'POSTED')
    await checkPage(t, page, 'receipt-posted')
    t.same(problems, [])
  })

  await t.test('staff must finish recording it (NEEDS_ATTENTION)', async t => {
    const { page, problems } = await throughCashnet(browser, stack, 'Alice Archer', 'Pay', () => { stack.alma.closeFee('100001') })
    await stack.app.worker.idle()
    await until(async () => (await stack.app.ledger.latestCheckoutForUser('alice'))?.state === 'NEEDS_ATTENTION', 'the checkout to need attention', 60_000)
    await page.reload()
    t.equal(await heading(page), 'Payment received; library staff will finish recording it')
    t.equal(await stateOf(page), 'NEEDS_ATTENTION')
    await checkPage(t, page, 'receipt-needs-attention')
    t.same(problems, [])
  })
})
