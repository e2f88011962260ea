// Browser end-to-end: the fines page by keyboard alone: skip link, Tab, Space, Enter.

import t from 'tap'
import { build } from '../helper.ts'
import { launch, openPage, signIn, TIMEOUT_MS } from './chromium.ts'

t.test('keyboard only: skip link, Tab to each fee, Space to untick, Enter to pay', async t => {
  const stack = await build(t)
  const browser = await launch(t)
  const { page, problems } = await openPage(browser)
  await signIn(page, stack, { button: 'Alice Archer' })
  const focused = async (): Promise<{ text: string, id: string, outline: string }> => await page.evaluate(() => {
    const el = (globalThis as any).document.activeElement
    const style = (globalThis as any).getComputedStyle(el)
    return { text: (el.innerText ?? '').trim(), id: el.id, outline: `${style.outlineStyle} ${style.outlineWidth}` }
  })
  await page.keyboard.press('Tab')
  const skip = await focused()
  t.equal(skip.text, 'Skip to main content', 'the first Tab reaches the skip link')
  t.ok(await page.locator('.skip-link').isVisible(), 'the skip link shows when focused')
  await page.keyboard.press('Enter')
  await page.waitForFunction(() => (globalThis as any).document.activeElement?.id === 'main')
  await page.keyboard.press('Tab')
  const history = await focused()
  t.equal(history.text, 'Your payment history and receipts', 'the first stop in the content is the link to the payment history')
  t.match(history.outline, /^solid [3-9]/, 'with a visible focus outline')
  const order: string[] = []
  for (let i = 0; i < 3; i++) {
    await page.keyboard.press('Tab')
    const now = await focused()
    order.push(now.id)
    t.match(now.outline, /^solid [3-9]/, `${now.id}: a visible focus outline`)
  }
  t.same(order, ['fee-100001', 'fee-100002', 'fee-100003'], 'Tab goes through the fees in order')
  await page.keyboard.press('Shift+Tab')
  t.equal((await focused()).id, 'fee-100002')
  await page.keyboard.press('Space')
  t.notOk(await page.locator('#fee-100002').isChecked(), 'Space unticks the lost item fee')
  await page.getByRole('button', { name: 'Pay $17.25' }).waitFor()
  await page.keyboard.press('Tab')
  await page.keyboard.press('Tab')
  const button = await focused()
  t.equal(button.id, 'pay-button', 'then the pay button')
  t.equal(button.text, 'Pay $17.25')
  t.match(button.outline, /^solid [3-9]/, 'with a visible focus outline')
  await page.keyboard.press('Enter')
  await page.waitForURL(url => url.href.startsWith(stack.cashnet.checkoutUrl), { timeout: TIMEOUT_MS })
  t.match(await page.locator('tfoot').innerText(), '$17.25', 'CashNet is asked for the two fees chosen by keyboard')
  t.same(problems, [], 'no console errors')
})
