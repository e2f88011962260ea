// axe-core and screenshots in the browser: the checkout hand-off and the page-not-found page, at 1280 and 375 px.

import t from 'tap'
import { build } from '../helper.ts'
import { checkPage, heading, launch, openPage, signIn } from './chromium.ts'

t.test('hand-off and not-found pages: no serious or critical axe violations at 1280 and 375 px', async t => {
  const stack = await build(t)
  const browser = await launch(t)

  await t.test('checkout hand-off, as it shows while it waits or when JavaScript is off', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Carol Chen' })
    // keep the page still long enough to test it: the hand-off script is answered with an empty one
    await page.route('**/assets/handoff.js', async route => { await route.fulfill({ status: 200, contentType: 'text/javascript', body: '' }) })
    await Promise.all([page.waitForURL(url => url.pathname === '/checkout'), page.locator('#pay-button').click()])
    t.equal(await heading(page), 'Continue to secure payment')
    t.ok(await page.getByRole('button', { name: 'Continue to CashNet' }).isVisible())
    await checkPage(t, page, 'handoff')
    t.same(problems, [])
  })

  await t.test('page not found', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Carol Chen' })
    await page.goto(`${stack.publicUrl}/no-such-page`)
    t.equal(await heading(page), 'Page not found')
    await checkPage(t, page, 'not-found')
    t.same(problems.filter(p => !p.includes('404')), [], 'nothing but the 404 itself')
  })
})
