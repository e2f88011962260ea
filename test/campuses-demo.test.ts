// npm run demo with DEMO_CAMPUSES=1: two sandbox campuses in one deployment, each with its own EZproxy stand-in
// sign-in, Alma sandbox data and branding; a payment at one campus leaves the other's fees as they were.

import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Browser, freePort, until } from './helper.ts'

t.test('npm run demo with DEMO_CAMPUSES=1 shows two campuses, each with its own sign-in, fees and branding', async t => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'alma-cashnet-demo-campuses-'))
  const demo = spawn('npm', ['run', '--silent', 'demo'], {
    env: { ...process.env, DEMO_PORT: String(port), DEMO_DATABASE_PATH: join(dir, 'demo.sqlite'), DEMO_CAMPUSES: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  let output = ''
  demo.stdout.on('data', (chunk) => { output += String(chunk) })
  demo.stderr.on('data', (chunk) => { output += String(chunk) })
  t.teardown(() => {
    try { process.kill(-(demo.pid as number), 'SIGTERM') } catch {}
    rmSync(dir, { recursive: true, force: true })
  })
  await until(() => output.includes('demo is running'), 'the demo to start', 60000)
  const springfieldUrl = `http://127.0.0.1:${port}`
  const shelbyvilleUrl = `http://127.0.0.1:${port + 1}`
  t.match(output, `open ${springfieldUrl}/login?url=/springfield/`)
  t.match(output, `open ${shelbyvilleUrl}/login?url=/shelbyville/`)
  t.match(output, join(dir, 'demo-campuses', 'springfield.sqlite'), 'each campus its own ledger')

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
