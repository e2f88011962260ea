// axe-core and screenshots in the browser: the receipt while Alma is still being updated (PAID: the posting
// worker is held), and the staff pages at /admin as user "staff". Each at 1280 and 375 px.

import t from 'tap'
import { build } from '../helper.ts'
import { checkPage, heading, launch, openPage, PHONE, signIn, throughCashnet } from './chromium.ts'

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
    await signIn(page, stack, { button: 'Library staff' }, '/admin')
    t.equal(await heading(page), 'Payments', 'the sign-in page\'s staff choice lands on /admin')
    t.equal(await page.locator('table').count() > 0, true, 'a table of payments')
    await checkPage(t, page, 'admin-payments')
    // at 375 px every payment is a stacked card: nothing cut off at the screen's edge, nothing to scroll sideways
    await page.setViewportSize(PHONE)
    const region = await page.locator('.table-scroll[aria-label="Payments"]').evaluate(el => ({ scroll: el.scrollWidth as number, client: el.clientWidth as number }))
    t.ok(region.scroll <= region.client, `the payments list needs no sideways scrolling at 375 px (${region.scroll} in ${region.client} px)`)
    const rightmost = await page.locator('table.admin tbody th, table.admin tbody td').evaluateAll(cells =>
      Math.max(...cells.filter(c => (c as any).offsetParent !== null).map(c => c.getBoundingClientRect().right as number)))
    t.ok(rightmost <= PHONE.width, `every cell of the list ends inside the screen (rightmost edge ${Math.round(rightmost)} px)`)
    const first = page.locator('table.admin tbody tr').first()
    const labels = await first.locator('td').evaluateAll(cells => cells.filter(c => (c as any).offsetParent !== null)
      .map(c => (globalThis as any).getComputedStyle(c, '::before').content as string))
    t.same(labels, ['"Created"', '"Patron"', '"Total"', '"State"'], 'each value of the card is named by its column')
    t.match(await first.innerText(), 'Declined by CashNet', 'and the state, which used to be cut off, is shown')
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
