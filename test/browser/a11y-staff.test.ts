// axe-core and screenshots in the browser: the receipt while Alma is still being updated (PAID: the posting
// worker is held), and the staff pages at /admin as user "staff". Each at 1280 and 375 px.

import t from 'tap'
import { build } from '../helper.ts'
import { checkPage, heading, launch, openPage, signIn, throughCashnet } from './chromium.ts'

t.test('PAID receipt and staff pages: no serious or critical axe violations at 1280 and 375 px', async t => {
  const stack = await build(t, { app: { startWorker: false } })
  // hold posting to Alma so the checkout stays PAID (the postback still arrives and is recorded)
  await stack.app.worker.stop()
  const browser = await launch(t)

  await t.test('paid, the library system is being updated (PAID)', async t => {
    const { page, problems } = await throughCashnet(browser, stack, 'Carol Chen', 'Pay')
    t.equal(await heading(page), 'Payment received; the library system is being updated')
    t.equal(await page.locator('#receipt').getAttribute('data-state'), 'PAID')
    t.ok(await page.getByRole('link', { name: 'Check again now' }).isVisible(), 'a way to check again without JavaScript')
    await checkPage(t, page, 'receipt-paid')
    t.same(problems, [])
  })

  await throughCashnet(browser, stack, 'Zoë Ångström-Núñez', 'Decline')

  await t.test('staff: the payments list', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { username: 'staff' }, '/admin')
    t.equal(await page.locator('table').count() > 0, true, 'a table of payments')
    await checkPage(t, page, 'admin-payments')
    t.same(problems, [])
  })

  await t.test('staff: one payment', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { username: 'staff' }, '/admin')
    await Promise.all([page.waitForURL(/\/admin\/payments\//), page.locator('a[href^="admin/payments/"] code').first().click()])
    // src/web/views/admin.ts: its .table-scroll wrappers need tabindex="0" (with role="region" and a label) so a
    // keyboard user can scroll them (axe scrollable-region-focusable, serious); asked of the staff pages' owner
    await checkPage(t, page, 'admin-payment')
    t.same(problems, [])
  })
})
