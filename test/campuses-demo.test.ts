// Plain npm run demo (no DEMO_* variable): two sandbox campuses in one deployment, each with its own EZproxy
// stand-in sign-in, Alma sandbox data and branding; a payment at one campus leaves the other's fees as they were.
// DEMO_CAMPUSES=1 still asks for the same; anything but 0 or 1 is refused with one line.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { Browser, send } from './helper.ts'
import { demoEnv, runDemo } from './support/service-process.ts'
import { npmScriptArgs } from './support/ts-child.ts'

t.test('plain npm run demo shows two campuses, each with its own sign-in, fees and branding', async t => {
  const { port, dir, output } = await runDemo(t, 'alma-cashnet-demo-campuses-', {})
  const springfieldUrl = `http://127.0.0.1:${port}`
  const shelbyvilleUrl = `http://127.0.0.1:${port + 1}`
  t.match(output(), 'alma-cashnet demo is running: a university system, two campus libraries served by one deployment', 'the banner says what the newcomer sees')
  t.match(output(), `One library instead of a system: DEMO_CAMPUSES=0 npm run demo (its sign-in at ${springfieldUrl}/login?url=/)`, 'and how to get the single-library demo')
  t.match(output(), `open ${springfieldUrl}/login?url=/springfield/`)
  t.match(output(), `open ${shelbyvilleUrl}/login?url=/shelbyville/`)
  t.match(output(), join(dir, 'demo-campuses', 'springfield.sqlite'), 'each campus its own ledger')
  t.match(output(), join(dir, 'demo-campuses', 'shelbyville.sqlite'))

  // GET / at the service lists both campuses
  const serviceUrl = /The service itself is at (http:\/\/127\.0\.0\.1:\d+) \(GET \/ lists the campuses\)/.exec(output())?.[1]
  t.ok(serviceUrl, 'the banner gives the service\'s own address')
  const list = await send(`${serviceUrl ?? ''}/`)
  t.equal(list.status, 200)
  t.match(list.body, '<a href="./springfield/">University Library, Springfield</a>')
  t.match(list.body, '<a href="./shelbyville/">University Library, Shelbyville</a>')

  const springfield = new Browser({ publicUrl: springfieldUrl } as any, { prefix: '/springfield' })
  const login = await springfield.get('/login?url=/springfield/')
  t.match(login.body, 'Alice Archer')
  const atSpringfield = await springfield.follow(await springfield.request('/login?url=/springfield/', { method: 'POST', body: 'user=carol' }), `${springfieldUrl}/login`)
  t.equal(atSpringfield.status, 200)
  t.match(atSpringfield.body, 'University Library, Springfield')
  t.match(atSpringfield.body, 'Gödel, Escher, Bach')
  t.notMatch(atSpringfield.body, '(shelbyville)')

  const shelbyville = new Browser({ publicUrl: shelbyvilleUrl } as any)
  const atShelbyville = await shelbyville.follow(await shelbyville.request('/login?url=/shelbyville/', { method: 'POST', body: 'user=carol' }), `${shelbyvilleUrl}/login`)
  t.equal(atShelbyville.status, 200)
  t.match(atShelbyville.body, 'University Library, Shelbyville')
  t.match(atShelbyville.body, 'Gödel, Escher, Bach (shelbyville)')

  // carol pays at Springfield, on Springfield's CashNet store; Shelbyville's carol still owes hers
  const { fields, action } = await springfield.checkout()
  t.match(action, /^http:\/\/127\.0\.0\.1:\d+\/LIBFINESSPRINGFIELD$/, 'handed to Springfield\'s CashNet store')
  const receipt = await springfield.payOnCashnet(action, fields)
  t.equal(receipt.status, 200)
  t.match(receipt.body, /Payment received/)
  const paid = await springfield.getUntil('/', 'Nothing to pay')
  t.match(paid.body, 'Nothing to pay', 'Springfield\'s fines page is empty afterwards')
  const stillOwed = await shelbyville.get('/shelbyville/')
  t.equal(stillOwed.status, 200)
  t.match(stillOwed.body, 'Gödel, Escher, Bach (shelbyville)', 'Shelbyville\'s carol still owes her fee')
  t.notMatch(stillOwed.body, 'Nothing to pay')

  // the stand-in's staff sign-in lands on the campus's own admin pages
  t.match(login.body, `action="/login?qurl=${encodeURIComponent('/springfield/admin')}"`)
  const shelbyvilleLogin = await new Browser({ publicUrl: shelbyvilleUrl } as any).get('/login?url=/shelbyville/')
  t.equal(shelbyvilleLogin.status, 200)
  t.match(shelbyvilleLogin.body, `action="/login?qurl=${encodeURIComponent('/shelbyville/admin')}"`)
})

t.test('DEMO_CAMPUSES=1 still asks for the two campuses', async t => {
  const { port, output } = await runDemo(t, 'alma-cashnet-demo-campuses-', { DEMO_CAMPUSES: '1' })
  t.match(output(), 'two campus libraries served by one deployment')
  t.match(output(), `open http://127.0.0.1:${port + 1}/login?url=/shelbyville/`)
})

t.test('DEMO_CAMPUSES other than 0 or 1 is refused with one line, before anything starts', async t => {
  const run = spawnSync(process.execPath, npmScriptArgs('demo'), { env: demoEnv({ DEMO_CAMPUSES: 'yes', DEMO_PORT: '9', DEMO_DATABASE_PATH: '/nonexistent/demo.sqlite' }), encoding: 'utf8', timeout: 60000 })
  t.equal(run.status, 2)
  t.equal(run.stderr, 'DEMO_CAMPUSES must be 1 (two campuses, the default) or 0 (one library), not "yes"\n')
  t.equal(run.stdout, '')
})
