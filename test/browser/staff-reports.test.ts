// The staff report (/admin/reports) with a few payments, and one payment's page (/admin/payments/:id) with its
// audit events in words, in Chromium at 1280 and 375 px: axe (no serious or critical violation), the page never
// scrolls sideways on a phone (a wide table scrolls inside its own labelled, focusable region), no console
// error, every control reached by Tab. Screenshots in test-output/screenshots/staff-*.png.

import t from 'tap'
import { Browser, build, checkoutIdFrom, until } from '../helper.ts'
import { checkKeyboard, checkPage, heading, launch, openPage, PHONE, signIn } from './chromium.ts'

t.test('the report and a payment\'s page with its audit events, at 1280 and 375 px', async t => {
  const stack = await build(t, { env: { TIMEZONE: 'America/Los_Angeles' } })
  // a few payments: alice and carol pay, bob... has nothing; zoe declines
  const paid: string[] = []
  for (const user of ['alice', 'carol']) {
    const patron = new Browser(stack).login(user)
    const checkout = await patron.checkout()
    await patron.payOnCashnet(checkout.action, checkout.fields)
    paid.push(checkoutIdFrom(checkout.fields))
  }
  const zoe = new Browser(stack).login('zoe')
  const declined = await zoe.checkout()
  await zoe.payOnCashnet(declined.action, declined.fields, 'decline')
  for (const id of paid) await until(async () => (await stack.app.ledger.getCheckout(id))?.state === 'POSTED', `${id} posted`)
  const browser = await launch(t)

  await t.test('/admin/reports', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { username: 'staff' }, '/admin')
    await Promise.all([page.waitForURL(/\/admin\/reports/), page.getByRole('link', { name: /^Reports/ }).click()])
    t.equal(await heading(page), 'Payments by day')
    t.match(await page.locator('ul.totals').innerText(), /USD: \$\d+\.\d{2} posted to Alma/, 'the totals name the money posted')
    for (const name of ['By day', 'By fee type', 'By owning library']) {
      const region = page.getByRole('region', { name })
      t.equal(await region.getAttribute('tabindex'), '0', `"${name}" scrolls in a labelled region a keyboard can reach`)
    }
    t.ok(await page.locator('table.report tbody tr').count() >= 3, 'rows in the tables')
    await checkPage(t, page, 'staff-reports')
    await page.setViewportSize(PHONE)
    await checkKeyboard(t, page, 'reports at 375 px')
    t.same(problems, [], 'no console errors')
  })

  await t.test('/admin/payments/:id with the audit events in words', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { username: 'staff' }, `/admin/payments/${paid[0]}`)
    t.match(await heading(page), /./)
    const events = page.getByRole('region', { name: 'Audit events' })
    t.ok(await events.isVisible(), 'the audit events')
    t.ok(await events.locator('td.event-words').count() >= 2, 'events in words')
    t.notMatch(await events.locator('td.event-words').first().innerText(), /^[a-z]+\.[a-z_]+$/, 'words, not the raw event name')
    await checkPage(t, page, 'staff-payment')
    await page.setViewportSize(PHONE)
    await checkKeyboard(t, page, 'payment page at 375 px')
    t.same(problems, [], 'no console errors')
  })
})
