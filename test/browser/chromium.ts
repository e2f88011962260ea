// Browser-test helpers: Debian's Chromium driven by playwright-core (never a downloaded browser), axe-core run in
// the page, screenshots at phone and desktop widths, and the patron's way through the EZproxy stand-in.

import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from 'playwright-core'
import type { Test } from 'tap'
import type { Stack } from '../../src/sandbox/stack.ts'

export const CHROMIUM = '/usr/bin/chromium'
export const PHONE = { width: 375, height: 812 }
export const DESKTOP = { width: 1280, height: 900 }
/** Generous: the CI machine has two cores and runs other test files at the same time. */
export const TIMEOUT_MS = 60_000
export const SCREENSHOTS = join(import.meta.dirname, '..', '..', 'test-output', 'screenshots')

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']

/** Starts a headless Chromium with a fresh temporary profile; fails (never skips) when it is not installed. */
export async function launch (t: Test): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing at ${CHROMIUM}: the browser tests need Debian's chromium package ` +
      '(apt-get install -y chromium; .ci/run installs it). Do not use "npx playwright install".')
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage'],
    timeout: 120_000
  })
  t.teardown(async () => { await browser.close() })
  return browser
}

export interface PatronPage {
  context: BrowserContext
  page: Page
  /** console errors and uncaught exceptions seen so far (CSP violations show up here) */
  problems: string[]
}

/** A fresh browser context (its own cookies) with one page, long timeouts and an eye on console errors. */
export async function openPage (browser: Browser, options: BrowserContextOptions = {}): Promise<PatronPage> {
  const context = await browser.newContext({ viewport: DESKTOP, locale: 'en-US', ...options })
  context.setDefaultTimeout(TIMEOUT_MS)
  context.setDefaultNavigationTimeout(TIMEOUT_MS)
  const page = await context.newPage()
  const problems: string[] = []
  page.on('console', message => {
    // the stand-ins' pages (sign-in, CashNet sandbox) have no icon; the browser's request for one is not ours
    if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) problems.push(`${page.url()}: ${message.text()} (${message.location().url})`)
  })
  page.on('pageerror', error => { problems.push(`${page.url()}: ${error.message}`) })
  return { context, page, problems }
}

/** Signs in at the EZproxy stand-in by the patron's button (or the free-text field) and lands on the fines page. */
export async function signIn (page: Page, stack: Stack, who: { button?: string, username?: string }, next = '/'): Promise<void> {
  await page.goto(`${stack.publicUrl}/login?url=${encodeURIComponent(next)}`)
  const target = new URL(next, stack.publicUrl).pathname
  const arrived = page.waitForURL(url => url.pathname === target, { waitUntil: 'load' })
  if (who.button !== undefined) {
    await page.getByRole('button', { name: who.button, exact: true }).click()
  } else {
    await page.getByLabel('Or any username').fill(who.username ?? '')
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  }
  await arrived
}

export interface AxeViolation { id: string, impact: string | null, help: string, nodes: Array<{ target: unknown[], failureSummary?: string }> }

/**
 * Runs axe-core in the page for WCAG 2.0 to 2.2 A and AA. The script is evaluated through the DevTools protocol
 * because the pages' Content-Security-Policy (script-src 'self') rightly refuses an injected <script> tag.
 */
export async function axe (page: Page): Promise<AxeViolation[]> {
  if (!await page.evaluate(() => typeof (globalThis as any).axe === 'object')) await page.evaluate(AXE_SOURCE)
  return await page.evaluate(async (tags) => {
    const result = await (globalThis as any).axe.run((globalThis as any).document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
    return result.violations.map((v: any) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n: any) => ({ target: n.target, failureSummary: n.failureSummary })) }))
  }, AXE_TAGS)
}

function describe (violations: AxeViolation[]): string {
  return violations.map(v => `${v.impact ?? '?'} ${v.id}: ${v.help} at ${v.nodes.map(n => JSON.stringify(n.target)).join(', ')}`).join('\n')
}

/** axe at the page's current width: no serious or critical violation; lesser ones are printed as comments. */
export async function checkAccessibility (t: Test, page: Page, name: string, todo?: string): Promise<void> {
  const violations = await axe(page)
  const blocking = violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
  const minor = violations.filter(v => !blocking.includes(v))
  if (minor.length > 0) t.comment(`${name}: axe (moderate/minor)\n${describe(minor)}`)
  t.same(blocking.map(v => v.id), [], `${name}: no serious or critical axe violations${blocking.length > 0 ? '\n' + describe(blocking) : ''}`, { todo })
}

/**
 * The page at 1280 px and at 375 px: axe at both widths, no sideways scrolling on the phone, and a full-page
 * screenshot of each in test-output/screenshots/<name>-<width>.png. Leaves the page at its original width.
 * `todo` names a known problem another part of the project must fix: reported, not failed.
 */
export async function checkPage (t: Test, page: Page, name: string, options: { todo?: string } = {}): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true })
  const original = page.viewportSize() ?? DESKTOP
  for (const size of [DESKTOP, PHONE]) {
    await page.setViewportSize(size)
    await page.evaluate(async () => { await (globalThis as any).document.fonts.ready })
    await checkAccessibility(t, page, `${name} at ${size.width} px`, options.todo)
    if (size === PHONE) {
      const overflow = await page.evaluate(() => { const root = (globalThis as any).document.documentElement; return root.scrollWidth - root.clientWidth as number })
      t.ok(overflow <= 0, `${name}: no sideways scrolling at 375 px (overflow ${overflow} px)`)
    }
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${size.width}.png`), fullPage: true, animations: 'disabled', caret: 'hide' })
  }
  await page.setViewportSize(original)
}

/** The text of the page's one h1. */
export async function heading (page: Page): Promise<string> {
  return (await page.getByRole('heading', { level: 1 }).innerText()).trim()
}

/**
 * A fresh patron signs in, pays every ticked fee on the fines page, and chooses Pay, Decline or Cancel on the
 * CashNet sandbox; `beforeChoice` runs while the patron is on CashNet. Resolves on the receipt page.
 */
export async function throughCashnet (browser: Browser, stack: Stack, patron: string, choice: 'Pay' | 'Decline' | 'Cancel', beforeChoice?: () => void): Promise<PatronPage> {
  const opened = await openPage(browser)
  const { page } = opened
  await signIn(page, stack, { button: patron })
  await page.locator('#pay-button').click()
  await page.waitForURL(url => url.href.startsWith(stack.cashnet.checkoutUrl))
  beforeChoice?.()
  const receiptLoaded = page.waitForURL(url => url.pathname === '/cashnet/return', { waitUntil: 'load' })
  await page.getByRole('button', choice === 'Pay' ? { name: /^Pay \$/ } : { name: choice, exact: true }).click()
  await receiptLoaded
  return opened
}

/**
 * Keyboard only: presses Tab from the top of the page past its end and checks that every visible
 * control (links, buttons, fields, scrollable regions with tabindex="0") was reached, each with a visible focus
 * outline. Returns the names of the controls in the order Tab reached them.
 */
export async function checkKeyboard (t: Test, page: Page, name: string): Promise<string[]> {
  const controls = await page.evaluate(() => {
    const doc = (globalThis as any).document
    const all = [...doc.querySelectorAll('a[href], button, input:not([type="hidden"]), select, textarea, [tabindex="0"]')] as any[]
    return all.filter(el => el.offsetParent !== null && !el.disabled && el.getAttribute('tabindex') !== '-1').map((el, i) => {
      el.setAttribute('data-kbd', String(i))
      return i
    }).length
  })
  await page.evaluate(() => { (globalThis as any).document.activeElement?.blur(); (globalThis as any).getSelection()?.removeAllRanges() })
  await page.locator('body').focus().catch(() => {})
  const reached = new Set<string>()
  const order: string[] = []
  const unoutlined: string[] = []
  // a date field takes several Tabs (month, day, year) on the same element, so no early stop: Tab well past the end
  let previous: string | null = null
  for (let i = 0; i < controls * 3 + 10; i++) {
    await page.keyboard.press('Tab')
    const now = await page.evaluate(() => {
      const el = (globalThis as any).document.activeElement
      if (el === null || el === (globalThis as any).document.body) return null
      const style = (globalThis as any).getComputedStyle(el)
      const label = (el.getAttribute('aria-label') ?? el.innerText ?? el.value ?? el.id ?? '').trim().replace(/\s+/g, ' ')
      return { kbd: el.getAttribute('data-kbd') as string | null, label: label === '' ? `<${el.tagName.toLowerCase()} id="${el.id}">` : label, outline: `${style.outlineStyle} ${style.outlineWidth}` }
    })
    if (now === null || (now.kbd !== null && now.kbd === previous)) continue
    previous = now.kbd
    if (now.kbd !== null && reached.has(now.kbd)) continue
    if (now.kbd !== null) reached.add(now.kbd)
    order.push(now.label)
    if (!/^(solid|auto|dotted|dashed|double) [1-9]/.test(now.outline)) unoutlined.push(`${now.label} (${now.outline})`)
  }
  const missed = await page.evaluate((seen) => [...(globalThis as any).document.querySelectorAll('[data-kbd]')]
    .filter((el: any) => !seen.includes(el.getAttribute('data-kbd'))).map((el: any) => (el.innerText ?? el.outerHTML).trim().slice(0, 80)), [...reached])
  t.same(missed, [], `${name}: every visible control is reached by Tab`)
  t.same(unoutlined, [], `${name}: every focused control shows a focus outline`)
  return order
}
