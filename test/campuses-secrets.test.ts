// SPEC 12 and SECURITY.md: every campus's secrets are masked in every log line, not only those of the first
// campus (whose configuration the process's own settings are read from), and no page shows one. Two campuses get
// distinctive secrets; requests carry each of them where a log line repeats what it was sent (the path, the
// EZproxy user header); the log and the pages are searched for every one.

import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildCampuses, send } from './helper.ts'
import { tsNodeArgs, tsNodeEnv } from './support/ts-child.ts'

function secretsOf (id: string): Record<string, string> {
  return {
    EZPROXY_SECRET: `ezproxy-secret-${id}-DISTINCTIVE`,
    CASHNET_POSTBACK_TOKEN: `postback-token-${id}-DISTINCTIVE`,
    SMTP_URL: `smtp-password-${id}-DISTINCTIVE`
  }
}

function campusEnv (id: string): Record<string, string> {
  const secrets = secretsOf(id)
  return {
    EZPROXY_SECRET_HEADER: 'X-Fines-Secret',
    EZPROXY_SECRET: secrets.EZPROXY_SECRET,
    CASHNET_POSTBACK_TOKEN: secrets.CASHNET_POSTBACK_TOKEN,
    SMTP_URL: `smtp://fines:${secrets.SMTP_URL}@127.0.0.1:9`
  }
}

t.test('no campus\'s Alma key, EZproxy secret, postback token or SMTP password reaches a log line or a page', async t => {
  const stack = await buildCampuses(t, { campuses: [{ id: 'springfield', env: campusEnv('springfield') }, { id: 'shelbyville', env: campusEnv('shelbyville') }] })
  const secrets: Record<string, string> = {}
  for (const campus of stack.campuses) {
    secrets[`${campus.id}'s ALMA_API_KEY`] = campus.almaApiKey
    for (const [variable, value] of Object.entries(secretsOf(campus.id))) secrets[`${campus.id}'s ${variable}`] = value
  }
  const pages: string[] = []
  for (const campus of stack.campuses) {
    const secret = { 'x-fines-secret': secretsOf(campus.id).EZPROXY_SECRET }
    for (const value of Object.values(secrets)) {
      // a mistyped URL (a postback URL with the token in its path) and a username that is one
      await send(`${stack.serviceUrl}/${campus.id}/cashnet/postback/${value}`, { from: campus.ezproxyFrom })
      await send(`${stack.serviceUrl}/${campus.id}/`, { from: campus.ezproxyFrom, headers: { ...secret, 'x-ezproxy-user': value } })
    }
    const check = await send(`${stack.serviceUrl}/${campus.id}/ezproxy-check`, { from: campus.ezproxyFrom, headers: { ...secret, 'x-ezproxy-user': 'alice' } })
    t.equal(check.status, 200, `${campus.id}'s EZproxy check page`)
    const admin = await send(`${stack.serviceUrl}/${campus.id}/admin`, { from: campus.ezproxyFrom, headers: { ...secret, 'x-ezproxy-user': `staff-${campus.id}` } })
    t.equal(admin.status, 200, `${campus.id}'s staff page`)
    pages.push(check.body, admin.body)
  }
  pages.push((await send(`${stack.serviceUrl}/`)).body)
  const logs = stack.logs.join('\n')
  t.match(logs, '/shelbyville/cashnet/postback/', 'the requests were logged')
  t.match(logs, '[REDACTED]', 'with the secrets masked')
  for (const [what, value] of Object.entries(secrets)) {
    t.notOk(logs.includes(value), `${what} is in no log line`)
    t.notOk(pages.some(page => page.includes(value)), `${what} is on no page`)
  }
})

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { resolve(typeof address === 'object' && address !== null ? address.port : 0) })
    })
  })
}

t.test('npm start with two campuses masks the second campus\'s secrets too', async t => {
  const directory = mkdtempSync(join(tmpdir(), 'campuses-secrets-'))
  t.teardown(() => { rmSync(directory, { recursive: true, force: true }) })
  const file = join(directory, 'campuses.json')
  const campus = (id: string, peer: string): Record<string, string> => ({
    PUBLIC_URL: `https://fines.example.edu/${id}`,
    ALMA_API_URL: 'http://127.0.0.1:9/almaws/v1',
    ALMA_API_KEY: `env:${id.toUpperCase()}_ALMA_API_KEY`,
    EZPROXY_ALLOW: peer,
    CASHNET_CHECKOUT_URL: 'https://commerce.cashnet.com/LIB',
    CASHNET_ITEM_CODE: 'LIB-FINE',
    CASHNET_POSTBACK_ALLOW: '192.0.2.10',
    ...campusEnv(id),
    EZPROXY_SECRET: `env:${id.toUpperCase()}_EZPROXY_SECRET`
  })
  writeFileSync(file, JSON.stringify({ campuses: { north: campus('north', '127.0.0.1'), south: campus('south', '127.0.1.1') } }))
  const port = await freePort()
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    ...tsNodeEnv(),
    PORT: String(port),
    COOKIE_SECRET: 'c'.repeat(40),
    DATABASE_PATH: join(directory, 'payments.sqlite'),
    CAMPUSES_FILE: file,
    NORTH_ALMA_API_KEY: 'alma-api-key-north-DISTINCTIVE',
    SOUTH_ALMA_API_KEY: 'alma-api-key-south-DISTINCTIVE',
    NORTH_EZPROXY_SECRET: secretsOf('north').EZPROXY_SECRET,
    SOUTH_EZPROXY_SECRET: secretsOf('south').EZPROXY_SECRET
  }
  const secrets = [env.NORTH_ALMA_API_KEY, env.SOUTH_ALMA_API_KEY, ...Object.values(secretsOf('north')), ...Object.values(secretsOf('south'))]
  const child = spawn(process.execPath, [...tsNodeArgs(), 'src/server.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += String(chunk) })
  child.stderr.on('data', (chunk: Buffer) => { output += String(chunk) })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const started = Date.now()
  while (!output.includes('"event":"service.started"')) {
    if (child.exitCode !== null || Date.now() - started > 60000) break
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.match(output, '"event":"service.started"', 'the service started')
  for (const id of ['north', 'south']) {
    for (const value of secrets) await send(`http://127.0.0.1:${port}/${id}/cashnet/postback/${value}`)
  }
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'stopped cleanly')
  t.match(output, '/south/cashnet/postback/[REDACTED]', 'the requests were logged, masked')
  for (const value of secrets) t.notOk(output.includes(value), `${value} is in no log line`)
})
