// Browser end-to-end: the whole demo with JavaScript on, dates in the browser’s locale, the live total.

import t from 'tap'
import { build } from '../helper.ts'
import { launch, openPage, signIn } from './chromium.ts'
import { NAMES, seeAlicesFees, payAndComeBack } from './flow.ts'

t.test('with JavaScript: untick a fee, the total follows, pay on CashNet, receipt, one fee left', async t => {
  const stack = await build(t)
  const browser = await launch(t)
  const { page, problems } = await openPage(browser, { locale: 'en-GB' })
  await signIn(page, stack, { button: 'Alice Archer' })
  await seeAlicesFees(t, page)
  t.equal(await page.locator('output#selected-total').innerText(), '$62.75')
  t.equal(await page.locator('table.fees tbody tr').first().locator('td.date').innerText(), '1 Oct 2026', 'dates in the browser’s locale (en-GB)')
  await page.getByRole('checkbox', { name: NAMES.algorithms, exact: true }).uncheck()
  await page.getByRole('button', { name: 'Pay $17.25' }).waitFor()
  t.equal(await page.locator('output#selected-total').innerText(), '$17.25', 'the live total follows the ticks')
  t.equal(await page.locator('output#selected-total').getAttribute('aria-live'), 'polite', 'and is announced')
  const handoff = page.waitForResponse(response => response.url().endsWith('/checkout') && response.request().method() === 'POST')
  await page.getByRole('button', { name: 'Pay $17.25' }).click()
  t.match(await (await handoff).text(), 'Continue to CashNet', 'the hand-off page has the visible button too')
  await payAndComeBack(t, stack, page, { javascript: true })
  t.same(problems, [], 'no console errors or Content-Security-Policy violations')
})
