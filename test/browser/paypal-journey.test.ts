// Browser end-to-end for a PayPal campus: fines page → the PayPal stand-in's approval page → approve → receipt, at
// 1280 px and on a 375 px phone, with axe on our pages (no serious or critical violation), no sideways scrolling
// on the phone, no console error (a CSP refusing the redirect to PayPal would show here), and screenshots in
// test-output/screenshots/paypal-*.png.

import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { build } from '../helper.ts'
import { checkAccessibility, DESKTOP, heading, launch, openPage, PHONE, SCREENSHOTS, signIn } from './chromium.ts'
import { NAMES, seeAlicesFees } from './flow.ts'

for (const size of [DESKTOP, PHONE]) {
  t.test(`at ${size.width} px: a patron pays two fees through PayPal and comes back to the receipt`, async t => {
    const stack = await build(t, { env: { PAYMENT_PROVIDER: 'paypal' } })
    const pp = stack.paypal
    if (pp === null) throw new Error('no PayPal stand-in')
    const browser = await launch(t)
    const phone = size === PHONE
    const { page, problems } = await openPage(browser, phone ? { viewport: PHONE, isMobile: true, hasTouch: true } : { viewport: DESKTOP })
    mkdirSync(SCREENSHOTS, { recursive: true })
    const shot = async (name: string): Promise<void> => { await page.screenshot({ path: join(SCREENSHOTS, `paypal-${name}-${size.width}.png`), fullPage: true, animations: 'disabled', caret: 'hide' }) }
    const overflow = async (): Promise<number> => await page.evaluate(() => { const root = (globalThis as any).document.documentElement; return root.scrollWidth - root.clientWidth as number })

    await signIn(page, stack, { button: 'Alice Archer' })
    await seeAlicesFees(t, page)
    await checkAccessibility(t, page, `fines page (PayPal campus) at ${size.width} px`)
    t.equal(await page.locator('footer').innerText(), 'Payments are processed by PayPal; card details never reach the library.', 'the footer names the campus\'s provider')
    t.match(await page.locator('main').innerText(), 'then pay on PayPal', 'the fines page says where the patron will pay')
    t.match(await page.locator('main').innerText(), 'Card details are entered on PayPal, never on this site.')
    if (phone) t.ok(await overflow() <= 0, 'the fines page fits 375 px')
    await shot('fines')

    const untick = page.getByRole('checkbox', { name: NAMES.algorithms, exact: true })
    if (phone) await untick.tap()
    else await untick.click()
    const pay = page.getByRole('button', { name: 'Pay $17.25' })
    const atPayPal = page.waitForURL(url => url.origin === pp.url && url.pathname === '/checkoutnow', { waitUntil: 'load' })
    if (phone) await pay.tap()
    else await pay.click()
    await atPayPal
    t.match(await page.locator('tfoot').innerText(), '$17.25', 'PayPal is asked for the two ticked fees')
    await shot('approval')

    const receiptLoaded = page.waitForURL(url => url.origin === stack.publicUrl && url.pathname === '/paypal/return', { waitUntil: 'load' })
    const approve = page.getByRole('button', { name: 'Approve and pay $17.25' })
    if (phone) await approve.tap()
    else await approve.click()
    await receiptLoaded
    await stack.app.worker.idle()
    await page.getByRole('heading', { level: 1, name: 'Payment received and recorded in the library system' }).waitFor()
    t.equal(await heading(page), 'Payment received and recorded in the library system')
    t.match(await page.locator('main').innerText(), 'PayPal', 'the receipt names PayPal')
    t.match(await page.locator('main').innerText(), pp.captures[0]?.id ?? '(no capture)', 'and shows the capture id as the reference')
    await checkAccessibility(t, page, `PayPal receipt at ${size.width} px`)
    if (phone) t.ok(await overflow() <= 0, 'the receipt fits 375 px')
    await shot('receipt')

    t.equal(pp.captures.length, 1, 'one capture')
    t.same(stack.alma.paymentsFor(pp.captures[0].id).sort((a, b) => a.feeId.localeCompare(b.feeId)), [
      { feeId: '100001', amountCents: 500 }, { feeId: '100003', amountCents: 1225 }
    ], 'Alma records each paid fee once with the capture id')
    t.same(problems, [], 'no console errors (no CSP refusal on the way to PayPal and back)')
  })
}
