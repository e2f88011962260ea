// SPEC 12: a campus's cookies live under its own prefix, so clearing one must name that path, or the browser
// keeps it: /{campus}/logout, and a Primo campus refusing a session that ended, clear the session cookie on
// /{campus}/, the path it was set on (a Set-Cookie on '/' clears nothing the campus set).

import t, { type Test } from 'tap'
import { PrimoJwksStandIn } from '../src/sandbox/jwks.ts'
import { type Answer, buildCampuses, send } from './helper.ts'

function setCookies (answer: Answer): string[] {
  const lines = answer.headers['set-cookie']
  return Array.isArray(lines) ? lines : lines === undefined ? [] : [lines]
}

async function primoCampus (t: Test, now: () => number): Promise<{ serviceUrl: string, primo: PrimoJwksStandIn }> {
  const primo = new PrimoJwksStandIn('01SPRING_INST')
  await primo.start()
  t.teardown(async () => { await primo.close() })
  const stack = await buildCampuses(t, {
    campuses: [
      { id: 'springfield', env: { AUTH_MODE: 'primo', ALMA_INSTITUTION_CODE: primo.institution, PRIMO_JWKS_URL: primo.jwksUrl, PRIMO_ISSUER: primo.issuer, SESSION_IDLE_MINUTES: '5' } },
      { id: 'shelbyville' }
    ],
    app: { now }
  })
  return { serviceUrl: stack.serviceUrl, primo }
}

async function signIn (serviceUrl: string, primo: PrimoJwksStandIn): Promise<{ set: string, cookie: string }> {
  const signedIn = await send(`${serviceUrl}/springfield/?jwt=${await primo.signPrimoToken({ userName: 'alice' })}`)
  const set = setCookies(signedIn).find(l => l.startsWith('acn_session=')) ?? ''
  return { set, cookie: set.split(';')[0] }
}

t.test('/{campus}/logout clears the session cookie on the campus\'s path, where it was set', async t => {
  const { serviceUrl, primo } = await primoCampus(t, Date.now)
  const { set, cookie } = await signIn(serviceUrl, primo)
  t.match(set, /; Path=\/springfield\/;/, 'the session cookie is set on the campus\'s path')
  const out = await send(`${serviceUrl}/springfield/logout`, { headers: { cookie } })
  const cleared = setCookies(out).filter(l => l.startsWith('acn_session=;'))
  t.ok(cleared.length > 0, 'sign-out clears the session cookie')
  t.ok(cleared.every(l => /; Path=\/springfield\/;/.test(l)), `on the campus's path only (${cleared.join(' | ')})`)
})

t.test('a Primo campus refusing a session that ended clears its cookie on the campus\'s path', async t => {
  let now = Date.now()
  const { serviceUrl, primo } = await primoCampus(t, () => now)
  const { cookie } = await signIn(serviceUrl, primo)
  t.equal((await send(`${serviceUrl}/springfield/`, { headers: { cookie } })).status, 200, 'signed in')
  now += 6 * 60_000
  const refused = await send(`${serviceUrl}/springfield/`, { headers: { cookie } })
  t.equal(refused.status, 401, 'the idle session is refused')
  const cleared = setCookies(refused).filter(l => l.startsWith('acn_session=;'))
  t.ok(cleared.length > 0, 'and its cookie cleared')
  t.ok(cleared.every(l => /; Path=\/springfield\/;/.test(l)), `on the campus's path (${cleared.join(' | ')})`)
})
