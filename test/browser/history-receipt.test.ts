// The patron's payment history (GET /history) and a receipt's "Date and time", reference explanation and print
// button in Chromium, at 1280 and 375 px: axe (no serious or critical violation), no sideways scrolling on the
// phone, no console error, every control reached by Tab; the print button only with JavaScript, the "use your
// browser's Print command" text only without. Screenshots in test-output/screenshots/history-*.png and receipt-print-*.png.

import { join } from 'node:path'
import t from 'tap'
import { Browser, build, checkoutIdFrom, until } from '../helper.ts'
import { checkKeyboard, checkPage, heading, launch, openPage, PHONE, SCREENSHOTS, signIn } from './chromium.ts'

t.test('history with a posted and a declined payment; the receipt with and without JavaScript', async t => {
  const stack = await build(t, { env: { TIMEZONE: 'America/Chicago' } })
  // alice pays one fee, then a second attempt is declined (over HTTP, as test/history.test.ts does)
  const alice = new Browser(stack).login('alice')
  const fines = await alice.get('/')
  const feeIds = [...fines.body.matchAll(/name="fee" value="([^"]+)"/g)].map(m => m[1])
  const first = await alice.checkout([feeIds[0]])
  await alice.payOnCashnet(first.action, first.fields)
  const posted = checkoutIdFrom(first.fields)
  await until(async () => (await stack.app.ledger.getCheckout(posted))?.state === 'POSTED', 'alice\'s payment recorded in Alma')
  const second = await alice.checkout([feeIds[1]])
  await alice.payOnCashnet(second.action, second.fields, 'decline')
  const declined = checkoutIdFrom(second.fields)
  const browser = await launch(t)

  await t.test('the history page', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Alice Archer' }, '/history')
    t.equal(await heading(page), 'Your payment history')
    const rows = page.locator('table.history tbody tr')
    t.equal(await rows.count(), 2, 'the posted and the declined payment')
    t.match(await rows.nth(0).innerText(), 'Declined; nothing charged', 'newest first: the declined attempt')
    t.match(await rows.nth(1).innerText(), 'Paid and recorded')
    t.match(await rows.nth(1).locator('td.when').innerText(), /[A-Z][a-z]+ \d{1,2}, \d{4}.*\d{1,2}:\d{2} [AP]M C[DS]T/, 'date and time with the zone')
    t.equal(await page.getByRole('link', { name: /^Receipt for the payment of \$/ }).count(), 2, 'each receipt link names its payment')
    await checkPage(t, page, 'history')
    await page.setViewportSize(PHONE)
    const order = await checkKeyboard(t, page, 'history at 375 px')
    t.ok(order.some(label => label.startsWith('Receipt')), 'the receipt links are in the Tab order')
    t.same(problems, [], 'no console errors')
  })

  await t.test('a receipt with JavaScript: the print button, no print hint', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Alice Archer' }, '/history')
    await Promise.all([page.waitForURL(url => url.pathname === '/cashnet/return'), page.locator(`a[href="cashnet/return?ref=${posted}"]`).click()])
    t.equal(await heading(page), 'Payment received and recorded in the library system')
    const facts = await page.locator('dl.facts').innerText()
    t.match(facts, /Date and time\s+[A-Z][a-z]+ \d{1,2}, \d{4}.*C[DS]T/, 'the date and time with the zone')
    t.match(facts, posted, 'the reference')
    t.match(await page.locator('.reference-note').innerText(), 'The reference is this payment’s number', 'the reference explained')
    t.match(await page.locator('.reference-note').innerText(), 'and the CashNet transaction is the payment processor’s number for it. Quote them', 'and the CashNet transaction')
    const print = page.getByRole('button', { name: 'Print this receipt' })
    t.ok(await print.isVisible(), 'the print button shows with JavaScript')
    t.notOk(await page.locator('.print-hint').isVisible(), 'the no-JavaScript hint is hidden')
    await page.evaluate(() => { (globalThis as any).print = () => { (globalThis as any).printed = true } })
    await print.focus()
    await page.keyboard.press('Enter')
    t.equal(await page.evaluate(() => (globalThis as any).printed), true, 'Enter on the button opens printing')
    await checkPage(t, page, 'receipt-print')
    await page.setViewportSize(PHONE)
    const order = await checkKeyboard(t, page, 'receipt at 375 px')
    t.ok(order.includes('Print this receipt'), 'the print button is in the Tab order')
    t.same(problems, [], 'no console errors')
  })

  await t.test('the declined receipt without JavaScript: the print hint, no button', async t => {
    const { page, problems } = await openPage(browser, { javaScriptEnabled: false })
    await signIn(page, stack, { button: 'Alice Archer' }, '/history')
    await Promise.all([page.waitForURL(url => url.pathname === '/cashnet/return'), page.locator(`a[href="cashnet/return?ref=${declined}"]`).click()])
    t.equal(await heading(page), 'Your payment was declined')
    t.notOk(await page.getByRole('button', { name: 'Print this receipt' }).isVisible(), 'no print button without JavaScript')
    t.ok(await page.locator('.print-hint').isVisible(), 'the hint to use the browser\'s Print command')
    t.match(await page.locator('.print-hint').innerText(), 'use your browser’s Print command')
    t.match(await page.locator('dl.facts').innerText(), /Date and time/)
    t.equal(await page.locator('.reference-note').innerText(), 'The reference is this payment’s number in the library’s payment records. Quote it if you contact the library about this payment.', 'no transaction: one number to quote')
    // axe and document.fonts need scripts in the page: the same receipt is checked with axe below, with JavaScript
    await page.setViewportSize(PHONE)
    const overflow = await page.evaluate(() => { const root = (globalThis as any).document.documentElement; return root.scrollWidth - root.clientWidth as number })
    t.ok(overflow <= 0, `no sideways scrolling at 375 px without JavaScript (overflow ${overflow} px)`)
    await page.screenshot({ path: join(SCREENSHOTS, 'receipt-declined-nojs-375.png'), fullPage: true, animations: 'disabled', caret: 'hide' })
    await checkKeyboard(t, page, 'declined receipt without JavaScript at 375 px')
    t.same(problems, [], 'no console errors')
  })

  await t.test('the declined receipt with JavaScript: axe at both widths', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Alice Archer' }, '/history')
    await Promise.all([page.waitForURL(url => url.pathname === '/cashnet/return'), page.locator(`a[href="cashnet/return?ref=${declined}"]`).click()])
    t.equal(await heading(page), 'Your payment was declined')
    t.ok(await page.getByRole('button', { name: 'Print this receipt' }).isVisible(), 'the print button')
    await checkPage(t, page, 'receipt-declined')
    t.same(problems, [], 'no console errors')
  })
})
