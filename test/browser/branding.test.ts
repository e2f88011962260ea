// Branding from configuration in the browser: the library's name and a light accent colour that would fail
// contrast as it is; the pages keep the brand colour in the header and darken it where text sits on white.

import t from 'tap'
import { accentColours, contrast } from '../../src/web/views/layout.ts'
import { build } from '../helper.ts'
import { checkPage, launch, openPage, signIn } from './chromium.ts'

t.test('any ACCENT_COLOR gives readable text: white or dark on the header, a darker ink on white', async t => {
  for (const colour of ['#1d4f91', '#ffcc00', '#00a3e0', '#e31837', '#777777', '#ffffff', '#000000']) {
    const { accent, onAccent, ink } = accentColours(colour)
    t.equal(accent, colour, `${colour}: the header keeps the brand colour`)
    t.ok(contrast(onAccent, accent) >= 4.5 || contrast('#1b1f24', accent) < 4.5, `${colour}: header text ${onAccent} reads at ${contrast(onAccent, accent).toFixed(2)}:1`)
    t.ok(contrast(ink, '#ffffff') >= 5, `${colour}: links and buttons ${ink} read at ${contrast(ink, '#ffffff').toFixed(2)}:1 on white`)
  }
  t.equal(accentColours('#1d4f91').ink, '#1d4f91', 'a dark accent is used as it is')
})

t.test('a light accent colour and another library name in the browser: axe passes, the CSP allows the colour', async t => {
  const stack = await build(t, { env: { ACCENT_COLOR: '#ffcc00', LIBRARY_NAME: 'Shelbyville College Library' } })
  const browser = await launch(t)
  const { page, problems } = await openPage(browser)
  await signIn(page, stack, { button: 'Alice Archer' })
  t.match(await page.title(), /^Your library fines – Shelbyville College Library$/)
  t.equal(await page.locator('header.site .name').innerText(), 'Shelbyville College Library')
  const style = async (selector: string, property: 'backgroundColor' | 'color'): Promise<string> =>
    await page.locator(selector).evaluate((el, p) => (globalThis as any).getComputedStyle(el)[p] as string, property)
  const colours = { header: await style('header.site', 'backgroundColor'), name: await style('header.site .name', 'color'), button: await style('#pay-button', 'backgroundColor') }
  t.equal(colours.header, 'rgb(255, 204, 0)', 'the header has the brand colour')
  t.equal(colours.name, 'rgb(27, 31, 36)', 'with dark text on it')
  t.not(colours.button, 'rgb(255, 204, 0)', 'the pay button uses the darker ink')
  await checkPage(t, page, 'fines-light-accent')
  t.same(problems, [], 'no console errors: the inline colour style is allowed by its CSP hash')
})
