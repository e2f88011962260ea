// Browser end-to-end: the whole demo on a 375 px wide phone, by touch.

import t from 'tap'
import { build } from '../helper.ts'
import { launch, openPage, PHONE, signIn } from './chromium.ts'
import { NAMES, seeAlicesFees } from './flow.ts'

t.test('on a 375 px phone: the same payment, nothing wider than the screen', async t => {
  const stack = await build(t)
  const browser = await launch(t)
  const { page, problems } = await openPage(browser, { viewport: PHONE, isMobile: true, hasTouch: true })
  await signIn(page, stack, { button: 'Alice Archer' })
  await seeAlicesFees(t, page)
  const overflow = async (): Promise<number> => await page.evaluate(() => { const root = (globalThis as any).document.documentElement; return root.scrollWidth - root.clientWidth as number })
  t.ok(await overflow() <= 0, 'the fines page fits 375 px')
  t.ok(await page.locator('table.fees td.library').first().isHidden(), 'library and date columns fold under the fee name')
  t.match(await page.locator('table.fees tbody tr').first().locator('td.detail').innerText(), 'Main Library')
  const payBox = await page.locator('#pay-button').boundingBox()
  t.ok(payBox !== null && payBox.height >= 44 && payBox.width >= 300, 'a full-width pay button at least 44 px tall')
  await page.getByRole('checkbox', { name: NAMES.algorithms, exact: true }).tap()
  t.notOk(await page.getByRole('checkbox', { name: NAMES.algorithms, exact: true }).isChecked(), 'a tap unticks')
  await page.getByRole('button', { name: 'Pay $17.25' }).tap()
  await page.waitForURL(url => url.href.startsWith(stack.cashnet.checkoutUrl))
  const receiptLoaded = page.waitForURL(url => url.pathname === '/cashnet/return', { waitUntil: 'load' })
  await page.getByRole('button', { name: 'Pay $17.25' }).tap()
  await receiptLoaded
  t.ok(await overflow() <= 0, 'the receipt fits 375 px')
  await stack.app.worker.idle()
  await page.getByRole('heading', { level: 1, name: 'Payment received and recorded in the library system' }).waitFor()
  await Promise.all([page.waitForURL(url => url.pathname === '/'), page.getByRole('link', { name: 'Back to your fines' }).tap()])
  t.equal(await page.locator('table.fees tbody tr').count(), 1, 'one fee left')
  t.ok(await page.getByRole('checkbox', { name: NAMES.algorithms, exact: true }).isVisible())
  t.same(problems, [], 'no console errors')
})
