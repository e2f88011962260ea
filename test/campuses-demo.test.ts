// npm run demo with DEMO_CAMPUSES=1: two sandbox campuses in one deployment, each with its own EZproxy stand-in
// sign-in, Alma sandbox data and branding; a payment at one campus leaves the other's fees as they were.

import t from 'tap'
import { join } from 'node:path'
import { Browser } from './helper.ts'
import { runDemo } from './support/service-process.ts'

t.test('npm run demo with DEMO_CAMPUSES=1 shows two campuses, each with its own sign-in, fees and branding', async t => {
  const { port, dir, output } = await runDemo(t, 'alma-cashnet-demo-campuses-', { DEMO_CAMPUSES: '1' })
  const springfieldUrl = `http://127.0.0.1:${port}`
  const shelbyvilleUrl = `http://127.0.0.1:${port + 1}`
  t.match(output(), `open ${springfieldUrl}/login?url=/springfield/`)
  t.match(output(), `open ${shelbyvilleUrl}/login?url=/shelbyville/`)
  t.match(output(), join(dir, 'demo-campuses', 'springfield.sqlite'), 'each campus its own ledger')

  const springfield = new Browser({ publicUrl: springfieldUrl } as any)
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

  // the stand-in's staff sign-in lands on the campus's own admin pages
  t.match(login.body, `action="/login?qurl=${encodeURIComponent('/springfield/admin')}"`)
})
