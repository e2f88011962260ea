// The patron's way through the demo in the browser, shared by the pay-*.test.ts files: Alice's three fees on the
// fines page, and from the CashNet sandbox back to the receipt and the fines page with one fee left.

import type { Page } from 'playwright-core'
import type { Test } from 'tap'
import type { TestStack } from '../helper.ts'
import { heading } from './chromium.ts'

export const NAMES = {
  rose: 'Overdue fine, The Name of the Rose, $5.00',
  algorithms: 'Lost item replacement fee, Introduction to Algorithms, 4th ed., $45.50',
  damaged: 'Damaged item fine, Principles of Contract Law, $12.25'
}

/** On the fines page: the three fees, each checkbox named by type, title and amount, all ticked. */
export async function seeAlicesFees (t: Test, page: Page): Promise<void> {
  t.equal(await heading(page), 'Library fines and fees for Alice Archer')
  t.match(await page.title(), /^Your library fines – Springfield University Library$/, 'the title says where the patron is')
  t.equal(await page.locator('table.fees tbody tr').count(), 3, 'three fees in the table')
  for (const name of Object.values(NAMES)) {
    t.ok(await page.getByRole('checkbox', { name, exact: true }).isChecked(), `"${name}" is ticked`)
  }
  t.equal(await page.getByRole('columnheader', { name: 'Amount' }).count(), 1, 'a real table with column headers')
}

/** From the CashNet sandbox back to the receipt, then (once Alma has it) to the fines page with one fee left. */
export async function payAndComeBack (t: Test, stack: TestStack, page: Page, options: { javascript: boolean }): Promise<void> {
  await page.waitForURL(url => url.href.startsWith(stack.cashnet.checkoutUrl))
  t.match(await page.locator('tfoot').innerText(), '$17.25', 'CashNet is asked for the two ticked fees')
  const receiptLoaded = page.waitForURL(url => url.pathname === '/cashnet/return', { waitUntil: 'load' })
  await page.getByRole('button', { name: 'Pay $17.25' }).click()
  await receiptLoaded
  t.match(await heading(page), /^Payment received/, 'the receipt says the payment was received')
  t.match(await page.title(), /^Payment received: receipt – /)
  t.match(await page.locator('dl.facts').innerText(), '$17.25')
  await stack.app.worker.idle()
  if (options.javascript) {
    // the receipt checks the ledger again by itself and shows the final state
    await page.getByRole('heading', { level: 1, name: 'Payment received and recorded in the library system' }).waitFor()
  } else if (await page.getByRole('link', { name: 'Check again now' }).count() > 0) {
    await Promise.all([page.waitForURL(/\/cashnet\/return\?ref=/), page.getByRole('link', { name: 'Check again now' }).click()])
    t.equal(await heading(page), 'Payment received and recorded in the library system')
  }
  await Promise.all([page.waitForURL(url => url.pathname === '/'), page.getByRole('link', { name: 'Back to your fines' }).click()])
  t.equal(await page.locator('table.fees tbody tr').count(), 1, 'one fee left')
  t.equal(await page.getByRole('checkbox').count(), 1)
  t.ok(await page.getByRole('checkbox', { name: NAMES.algorithms, exact: true }).isVisible(), 'only the unticked fee is left')
  t.equal(stack.alma.fee('100002').balanceCents, 4550, 'Alma: the unticked fee is untouched')
  t.equal(stack.alma.fee('100001').status, 'CLOSED', 'Alma: the paid fees are closed')
  t.equal(stack.alma.fee('100003').status, 'CLOSED')
}
