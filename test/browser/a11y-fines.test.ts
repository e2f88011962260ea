// axe-core and screenshots in the browser: the fines page with fees, with many fees, a credit and a foreign
// currency, a payment being recorded, a test patron's HTML title, and with nothing owed. Each at 1280 and 375 px.

import t from 'tap'
import { Browser, build, until } from '../helper.ts'
import { checkPage, heading, launch, openPage, PHONE, signIn } from './chromium.ts'

t.test('fines pages: no serious or critical axe violations at 1280 and 375 px', async t => {
  const stack = await build(t, { env: { ALMA_TIMEOUT_MS: '60000' } }) // long enough to hold a posting at Alma
  const browser = await launch(t)

  await t.test('fines page with three fees', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Alice Archer' })
    t.equal(await page.locator('html').getAttribute('lang'), 'en', 'the language is declared')
    const header = await page.locator('header.site').evaluate(el => (globalThis as any).getComputedStyle(el).backgroundColor as string)
    t.equal(header, 'rgb(29, 79, 145)', 'the accent colour reaches the page through the CSP-allowed style')
    const signOut = page.getByRole('link', { name: 'Sign out', exact: true })
    t.equal(await signOut.getAttribute('href'), './logout', 'a sign-out link in the header, relative to the service')
    await checkPage(t, page, 'fines')
    await page.setViewportSize(PHONE)
    const box = await signOut.boundingBox()
    t.ok(box !== null && box.height >= 44 && box.x + box.width <= PHONE.width, 'on a phone too: a 44 px target inside the screen')
    t.same(problems, [], 'no console errors or CSP violations')
  })

  await t.test('a fee title with HTML in it (test patron): shown as text, nothing runs', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Mallory Markup' })
    const name = 'Damaged item fine, <b>Bold</b> & "quoted" <script>alert(1)</script> title, $12.25'
    t.ok(await page.getByRole('checkbox', { name, exact: true }).isChecked(), 'the checkbox is named with the title as text')
    t.equal(await page.locator('main b, main script').count(), 0, 'no element made from the title')
    t.match(await page.locator('table.fees').innerText(), '<b>Bold</b> & "quoted" <script>alert(1)</script> title')
    t.same(problems, [], 'no script ran, no console error')
  })

  await t.test('fines page with 24 fees, a credit and a fee in euros', async t => {
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Frank Fischer' })
    t.match(await page.locator('main').innerText(), 'Credit on your account')
    t.match(await page.locator('p.lead').innerText(), 'You owe $105.00 and €9.00.', 'one total per currency')
    t.match(await page.locator('p.other-currency').innerText(), 'Fees in EUR (€9.00) cannot be paid online')
    t.equal((await page.locator('#pay-button').innerText()).trim(), 'Pay $105.00', 'the pay button names the dollar amount only')
    await checkPage(t, page, 'fines-many')
    t.same(problems, [])
  })

  await t.test('a payment received and being recorded (Alma slow): its fees marked, not selectable', async t => {
    stack.alma.holdPayments()
    t.teardown(() => { stack.alma.releasePayments() })
    const patron = new Browser(stack).login('zoe')
    const { fields, action } = await patron.checkout(['400001'])
    await patron.payOnCashnet(action, fields)
    await until(() => stack.alma.heldPayments > 0, 'the posting to be held at Alma')
    const { page, problems } = await openPage(browser)
    await signIn(page, stack, { button: 'Zoë Ångström-Núñez' })
    t.match(await page.locator('.notice.in-progress').innerText(), 'Payment received, being recorded.')
    t.equal(await page.getByRole('checkbox').count(), 1, 'only the other fee can be ticked')
    t.match(await page.locator('table.fees tbody tr').first().innerText(), 'Payment received, being recorded')
    await checkPage(t, page, 'fines-being-recorded')
    stack.alma.releasePayments()
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
