// Browser end-to-end: the whole demo with JavaScript off: every step has a visible button.

import t from 'tap'
import { build } from '../helper.ts'
import { heading, launch, openPage, signIn } from './chromium.ts'
import { NAMES, seeAlicesFees, payAndComeBack } from './flow.ts'

t.test('without JavaScript: the same payment with the visible buttons', async t => {
  const stack = await build(t)
  const browser = await launch(t)
  const { page, problems } = await openPage(browser, { javaScriptEnabled: false })
  await signIn(page, stack, { button: 'Alice Archer' })
  await seeAlicesFees(t, page)
  t.equal(await page.locator('table.fees tbody tr').first().locator('td.date').innerText(), '2026-10-01', 'an ISO date without JavaScript')
  await page.getByRole('checkbox', { name: NAMES.algorithms, exact: true }).uncheck()
  await Promise.all([page.waitForURL(url => url.pathname === '/checkout'), page.getByRole('button', { name: 'Pay selected fees' }).click()])
  t.equal(await heading(page), 'Continue to secure payment')
  t.match(await page.locator('main').innerText(), 'You are paying $17.25 for 2 fees')
  const cont = page.getByRole('button', { name: 'Continue to CashNet' })
  t.ok(await cont.isVisible(), 'a visible "Continue to CashNet" button')
  await cont.click()
  await payAndComeBack(t, stack, page, { javascript: false })
  t.same(problems, [], 'no console errors')
})
