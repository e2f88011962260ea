// A pay-link session's cookies live where the patron's browser reaches the service: PAY_LINK_URL, whose path
// may differ from PUBLIC_URL's (a campus of a system deployment keeps its cookies to PUBLIC_URL's prefix). Here
// Springfield's PUBLIC_URL is the EZproxy stand-in's /springfield and its PAY_LINK_URL a front's /pay-springfield
// (the front strips it and forwards to the service's /springfield, from the open internet). The browser below
// sends a cookie only under the path it was set for, as browsers do. Sign-out and a revoked link clear the cookie
// on the path it was set on.

import { request as httpRequest, createServer, type Server } from 'node:http'
import t, { type Test } from 'tap'
import type { SandboxCampus } from '../src/sandbox/stack.ts'
import { type Answer, Browser, buildCampuses, form, freePort, readForm, UNTRUSTED_PEER } from './helper.ts'
import { runningMailServer } from './support/mail-server.ts'

/** A browser that keeps each cookie with its Path and sends it only under that path. */
class PathBrowser {
  readonly cookies = new Map<string, { value: string, path: string }>()
  async request (url: string, options: { method?: string, body?: string } = {}): Promise<Answer> {
    const target = new URL(url)
    const cookie = [...this.cookies].filter(([, c]) => target.pathname.startsWith(c.path) || `${target.pathname}/` === c.path).map(([k, c]) => `${k}=${c.value}`).join('; ')
    const headers: Record<string, string> = cookie === '' ? {} : { cookie }
    if (options.body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = httpRequest(target, { method: options.method ?? 'GET', headers }, res => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { body += chunk })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
      })
      req.on('error', reject)
      req.end(options.body)
    })
    for (const line of setCookies(answer)) {
      const [pair, ...attributes] = line.split(';').map(s => s.trim())
      const index = pair.indexOf('=')
      const path = attributes.find(a => a.toLowerCase().startsWith('path='))?.slice(5) ?? '/'
      const name = pair.slice(0, index)
      if (/max-age=0/i.test(line)) { if (this.cookies.get(name)?.path === path) this.cookies.delete(name) } else this.cookies.set(name, { value: pair.slice(index + 1), path })
    }
    return answer
  }
}

function setCookies (answer: Answer): string[] {
  const lines = answer.headers['set-cookie']
  return Array.isArray(lines) ? lines : lines === undefined ? [] : [lines]
}

/** The front at PAY_LINK_URL: /pay-springfield/… to the service's /springfield/…, connecting from the open internet. */
async function front (t: Test, port: number, service: () => string): Promise<void> {
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/'
    if (!url.startsWith('/pay-springfield/')) { res.statusCode = 404; res.end(); return }
    const upstream = httpRequest(`${service()}/springfield/${url.slice('/pay-springfield/'.length)}`, { method: req.method, headers: req.headers, localAddress: UNTRUSTED_PEER }, answer => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => { res.statusCode = 502; res.end() })
    req.pipe(upstream)
  })
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise(resolve => server.close(resolve)) })
}

t.test('a campus whose PAY_LINK_URL has another path than PUBLIC_URL: the pay-link session\'s cookies are on PAY_LINK_URL\'s path and come back', async t => {
  const smtp = await runningMailServer(t)
  const port = await freePort()
  const payLinkUrl = `http://127.0.0.1:${port}/pay-springfield`
  let serviceUrl = ''
  await front(t, port, () => serviceUrl)
  const stack = await buildCampuses(t, {
    campuses: [{ id: 'springfield', env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, ADMIN_USERS: 'staff', PAY_LINK_URL: payLinkUrl } }, { id: 'shelbyville' }]
  })
  serviceUrl = stack.serviceUrl
  const campus: SandboxCampus = stack.campuses[0]
  t.equal(new URL(campus.publicUrl).pathname, '/springfield', 'PUBLIC_URL\'s path')

  const staff = new Browser({ publicUrl: campus.ezproxyUrl, ezproxy: campus.ezproxy }, { prefix: '/springfield' }).login('staff')
  const page = await staff.get('/admin/pay-links?id=alice')
  t.equal((await staff.post('/admin/pay-links', readForm(page.body, 'send-pay-link').fields)).status, 303, 'staff send alice a link')
  const url = /(http:\/\/\S+\/pay\/pl1\.[A-Za-z0-9_.-]+)/.exec(smtp.mails[0]?.text ?? '')?.[1] ?? ''
  t.ok(url.startsWith(`${payLinkUrl}/pay/`), 'the e-mailed link is on PAY_LINK_URL')

  const patron = new PathBrowser()
  const opened = await patron.request(url)
  t.equal(opened.status, 302, 'the link opens a session')
  t.match(setCookies(opened).find(l => l.startsWith('acn_session=')), /; Path=\/pay-springfield\/;/, 'its cookie is on PAY_LINK_URL\'s path')
  const fines = await patron.request(`${payLinkUrl}/`)
  t.equal(fines.status, 200, 'the browser sends it back: the fines page')
  t.match(fines.body, 'Alice Archer')
  const handoff = await patron.request(`${payLinkUrl}/checkout`, { method: 'POST', body: form([...readForm(fines.body, 'pay-form').fields, ['fee', '100001']]) })
  t.equal(handoff.status, 200, 'the CSRF cookie comes back too: the checkout is accepted')
  t.match(setCookies(handoff).find(l => l.startsWith('acn_checkout=')), /; Path=\/pay-springfield\/;/, 'and the checkout cookie is there as well')
  t.equal(readForm(handoff.body, 'cashnet-form').fields.find(([k]) => k === 'signouturl')?.[1], `${payLinkUrl}/cashnet/return`)

  const out = await patron.request(`${payLinkUrl}/logout`)
  const cleared = setCookies(out).filter(l => l.startsWith('acn_session=;'))
  t.ok(cleared.some(l => /; Path=\/pay-springfield\/;/.test(l)), 'sign-out clears the session cookie where it was set')
  t.notOk(patron.cookies.has('acn_session'), 'the browser has no session cookie left')
  t.equal((await patron.request(`${payLinkUrl}/`)).status, 403, 'and is nobody')
})

t.test('a pay-link session that ended (idle) has its cookie cleared on PAY_LINK_URL\'s path', async t => {
  const smtp = await runningMailServer(t)
  const port = await freePort()
  const payLinkUrl = `http://127.0.0.1:${port}/pay-springfield`
  let serviceUrl = ''
  await front(t, port, () => serviceUrl)
  let now = Date.now()
  const stack = await buildCampuses(t, {
    campuses: [{ id: 'springfield', env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, ADMIN_USERS: 'staff', PAY_LINK_URL: payLinkUrl, SESSION_IDLE_MINUTES: '5' } }, { id: 'shelbyville' }],
    app: { now: () => now }
  })
  serviceUrl = stack.serviceUrl
  const campus: SandboxCampus = stack.campuses[0]
  const staff = new Browser({ publicUrl: campus.ezproxyUrl, ezproxy: campus.ezproxy }, { prefix: '/springfield' }).login('staff')
  const page = await staff.get('/admin/pay-links?id=alice')
  await staff.post('/admin/pay-links', readForm(page.body, 'send-pay-link').fields)
  const url = /(http:\/\/\S+\/pay\/pl1\.[A-Za-z0-9_.-]+)/.exec(smtp.mails[0]?.text ?? '')?.[1] ?? ''
  const patron = new PathBrowser()
  await patron.request(url)
  t.equal((await patron.request(`${payLinkUrl}/`)).status, 200, 'in the session')

  now += 6 * 60_000
  const ended = await patron.request(`${payLinkUrl}/`)
  t.equal(ended.status, 401, 'the session ended')
  t.match(ended.body, 'Open the payment link')
  t.ok(setCookies(ended).some(l => l.startsWith('acn_session=;') && /; Path=\/pay-springfield\/;/.test(l)), 'its cookie is cleared where it was set')
  t.notOk(patron.cookies.has('acn_session'), 'the browser has none left')
})
