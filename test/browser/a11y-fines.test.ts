// axe-core and screenshots in the browser: the fines page with fees, with many fees, a credit and a foreign
// currency, and with nothing owed. Each at 1280 and 375 px.

import t from 'tap'
import { build } from '../helper.ts'
import { checkPage, heading, launch, openPage, signIn } from './chromium.ts'

t.test('fines pages: no serious or critical axe violations at 1280 and 375 px', async t => {
  const stack = await build(t)
  const browser = await launch(t)

  await t.test('fines page with three fees', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Alice Archer' })
    t.equal(await page.locator('html').getAttribute('lang'), 'en', 'the language is declared')
    const header = await page.locator('header.site').evaluate(el => (globalThis as any).getComputedStyle(el).backgroundColor as string)
    t.equal(header, 'rgb(29, 79, 145)', 'the accent colour reaches the page through the CSP-allowed style')
    await checkPage(t, page, 'fines')
    t.same(problems, [], 'no console errors or CSP violations')
  })

  await t.test('fines page with 24 fees, a credit and a fee in euros', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Frank Fischer' })
    t.match(await page.locator('main').innerText(), 'Credit on your account')
    await checkPage(t, page, 'fines-many')
    t.same(problems, [])
  })

  await t.test('nothing to pay', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Bob Baker' })
    t.equal(await heading(page), 'Nothing to pay, Bob Baker')
    t.match(await page.title(), /^Your library fines: nothing to pay – /)
    await checkPage(t, page, 'fines-nothing-owed')
    t.same(problems, [])
  })

})
