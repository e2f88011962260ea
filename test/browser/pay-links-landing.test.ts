// Pay links in Chromium (PAY_LINKS=on, an SMTP stand-in receives the mail): staff at /admin/pay-links look a
// patron up and send the link; the e-mailed /pay/<token> opens the patron's fines page in a fresh browser; a
// revoked link and a tampered one get a calm page. Each page at 1280 and 375 px: axe (no serious or critical
// violation), no sideways scrolling on the phone, no console error, every control reached by Tab. Screenshots
// in test-output/screenshots/pay-links-*.png.

import t, { type Test } from 'tap'
import { SMTPServer } from 'smtp-server'
import { build, freePort } from '../helper.ts'
import { checkKeyboard, checkPage, heading, launch, openPage, PHONE, signIn } from './chromium.ts'

async function mailServer (t: Test): Promise<{ url: string, mails: string[] }> {
  const mails: string[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData (stream, _session, done) {
      let raw = ''
      stream.setEncoding('utf8')
      stream.on('data', (chunk: string) => { raw += chunk })
      stream.on('end', () => { mails.push(raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))); done() })
    }
  })
  const port = await freePort()
  await new Promise<void>(resolve => { server.listen(port, '127.0.0.1', resolve) })
  t.teardown(async () => { await new Promise<void>(resolve => { server.close(() => { resolve() }) }) })
  return { url: `smtp://127.0.0.1:${port}`, mails }
}

t.test('staff send a pay link; it opens the patron\'s fines; revoked or tampered, a calm page', async t => {
  const smtp = await mailServer(t)
  const stack = await build(t, { env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, ALERT_EMAIL_FROM: 'fines@example.edu' } })
  const browser = await launch(t)
  const staff = await openPage(browser)
  let link = ''

  await t.test('the staff page: look up, send', async t => {
    const { page, problems } = staff
    await signIn(page, stack, { username: 'staff' }, '/admin/pay-links')
    t.equal(await heading(page), 'Pay links')
    await page.getByLabel('Alma identifier (primary id, barcode or other id)').fill('alice')
    await Promise.all([page.waitForURL(/pay-links\?id=alice/), page.getByRole('button', { name: 'Look up' }).click()])
    t.match(await page.locator('main').innerText(), 'alice.archer@example.edu', 'the patron\'s preferred e-mail')
    await Promise.all([page.waitForURL(/pay-links/, { waitUntil: 'load' }), page.getByRole('button', { name: /^Send a pay link to / }).click()])
    t.equal(smtp.mails.length, 1, 'one e-mail sent')
    const match = /(https?:\/\/\S+\/pay\/pl1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/.exec(smtp.mails[0] ?? '')
    t.ok(match, 'the e-mail carries the link')
    const mailed = match?.[1] ?? ''
    t.ok(mailed.startsWith(`${stack.config.publicUrl}/pay/`), 'on PUBLIC_URL')
    // The sandbox's PUBLIC_URL is the EZproxy stand-in, which sends every unknown visitor to its login page; the
    // README asks that PUBLIC_URL reach the service directly with PAY_LINKS=on, so the browser opens the service.
    link = new URL(new URL(mailed).pathname, stack.serviceUrl).toString()
    if (!page.url().includes('id=')) await page.goto(`${stack.publicUrl}/admin/pay-links?id=alice`)
    t.equal(await page.getByRole('button', { name: /^Revoke/ }).count(), 1, 'the link is listed with a revoke button')
    await checkPage(t, page, 'pay-links-staff')
    await page.setViewportSize(PHONE)
    // the table of links scrolls inside a labelled region a keyboard can reach, not the page
    t.equal(await page.getByRole('region', { name: 'Pay links sent to this patron' }).getAttribute('tabindex'), '0', 'the table scrolls in a labelled, focusable region')
    await checkKeyboard(t, page, 'pay links (staff) at 375 px')
    t.same(problems, [], 'no console errors')
  })

  await t.test('the e-mailed link opens the patron\'s fines page in a fresh browser', async t => {
    const { page, problems } = await openPage(browser)
    await page.goto(link)
    await page.waitForURL(url => url.pathname === '/', { waitUntil: 'load' })
    t.equal(await heading(page), 'Library fines and fees for Alice Archer')
    t.notOk(page.url().includes('/pay/'), 'the token is no longer in the address bar')
    await checkPage(t, page, 'pay-links-fines')
    t.same(problems, [], 'no console errors')
  })

  await t.test('a tampered link: a calm page', async t => {
    const { page, problems } = await openPage(browser)
    const answer = await page.goto(link.slice(0, -4) + (link.endsWith('AAAA') ? 'BBBB' : 'AAAA'))
    t.equal(answer?.status(), 403)
    t.match(await page.locator('main').innerText(), 'not valid')
    t.equal(await page.locator('main pre, main code.stack').count(), 0, 'no stack trace')
    await checkPage(t, page, 'pay-links-tampered')
    await page.setViewportSize(PHONE)
    await checkKeyboard(t, page, 'tampered link at 375 px')
    t.same(problems.filter(p => !p.includes('403')), [], 'no console errors but the page\'s own status')
  })

  await t.test('revoked by staff: the link gets a calm page', async t => {
    const { page } = staff
    await page.setViewportSize({ width: 1280, height: 900 })
    await Promise.all([page.waitForURL(/pay-links/, { waitUntil: 'load' }), page.getByRole('button', { name: /^Revoke/ }).click()])
    t.match(await page.locator('main').innerText(), 'Revoked by staff')
    const patron = await openPage(browser)
    const answer = await patron.page.goto(link)
    t.equal(answer?.status(), 403)
    t.match(await patron.page.locator('main').innerText(), 'withdrew')
    await checkPage(t, patron.page, 'pay-links-revoked')
    await patron.page.setViewportSize(PHONE)
    await checkKeyboard(t, patron.page, 'revoked link at 375 px')
    t.same(patron.problems.filter(p => !p.includes('403')), [], 'no console errors but the page\'s own status')
    t.same(staff.problems, [])
  })
})
