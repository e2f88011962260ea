// AUTH_MODE=primo in Chromium: the Primo VE stand-in's "My Library Card" page → "Pay fine" → the patron's fines
// page, and the refusal page for an expired token. Our pages at 1280 and 375 px: axe (no serious or critical
// violation), no sideways scrolling on the phone, no console error, every control reached by Tab. Screenshots in
// test-output/screenshots/primo-*.png.

import t from 'tap'
import { build } from '../helper.ts'
import { checkKeyboard, checkPage, heading, launch, openPage, PHONE } from './chromium.ts'

t.test('Primo VE: Pay fine opens the fines page; an expired token gets a calm refusal', async t => {
  const stack = await build(t, { env: { AUTH_MODE: 'primo' } })
  const primo = stack.primo
  if (primo === null) throw new Error('no Primo stand-in')
  const browser = await launch(t)

  await t.test('My Library Card → Pay fine → fines page', async t => {
    const { page, problems } = await openPage(browser)
    await page.goto(primo.libraryCardUrl)
    const item = page.getByRole('listitem').filter({ hasText: 'Alice Archer' })
    await Promise.all([page.waitForURL(url => url.origin === new URL(stack.config.publicUrl).origin && url.pathname === '/', { waitUntil: 'load' }),
      item.getByRole('link', { name: 'Pay fine' }).click()])
    t.equal(await heading(page), 'Library fines and fees for Alice Archer')
    t.notOk(page.url().includes('jwt='), 'the token is gone from the address bar')
    await checkPage(t, page, 'primo-fines')
    await page.setViewportSize(PHONE)
    await checkKeyboard(t, page, 'fines page (primo) at 375 px')
    t.same(problems, [], 'no console errors')
  })

  await t.test('an expired token: a calm refusal', async t => {
    const { page, problems } = await openPage(browser)
    await page.goto(primo.libraryCardUrl)
    const [answer] = await Promise.all([page.waitForResponse(r => r.url().includes('jwt=')), page.getByRole('link', { name: 'Pay fine with an expired token' }).click()])
    await page.waitForLoadState('load')
    t.equal(answer.status(), 401)
    t.match(await page.locator('main').innerText(), 'expired')
    t.equal(await page.locator('main pre').count(), 0, 'no stack trace')
    await checkPage(t, page, 'primo-expired')
    await page.setViewportSize(PHONE)
    await checkKeyboard(t, page, 'expired token at 375 px')
    t.same(problems.filter(p => !p.includes('401')), [], 'no console errors but the page\'s own status')
  })
})
