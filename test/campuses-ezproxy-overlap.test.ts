// SPEC 12, isolation of trusted peers: a request's campus is its path, and every campus is on one host, so one
// campus's EZproxy can proxy another campus's paths. Two campuses trusting the same EZproxy address in header
// mode would take each other's patrons; the service refuses that at start-up, and accepts it only when each
// campus asks for an EZPROXY_SECRET of its own, which the other campus's EZproxy does not send.

import t from 'tap'
import { ConfigError } from '../src/config.ts'
import { buildCampuses, send } from './helper.ts'

const SHARED_PEER = '127.0.0.1'

t.test('two header-mode campuses trusting one EZproxy address, without secrets of their own, are refused at start-up', async t => {
  const refused = await buildCampuses(t, { campuses: [{ id: 'springfield', ezproxyFrom: SHARED_PEER }, { id: 'shelbyville', ezproxyFrom: SHARED_PEER }] }).then(() => null, (error: unknown) => error)
  t.ok(refused instanceof ConfigError, 'a configuration error')
  t.match((refused as Error).message, /^configuration: campus shelbyville: EZPROXY_ALLOW \(127\.0\.0\.1\) overlaps campus springfield's \(127\.0\.0\.1\)/)
})

t.test('with a secret of its own per campus, one EZproxy address cannot sign a patron in at the other campus', async t => {
  const secret = (id: string): Record<string, string> => ({ EZPROXY_SECRET_HEADER: 'X-Fines-Secret', EZPROXY_SECRET: `secret-of-${id}-0123456789` })
  const stack = await buildCampuses(t, { campuses: [{ id: 'springfield', ezproxyFrom: SHARED_PEER, env: secret('springfield') }, { id: 'shelbyville', ezproxyFrom: SHARED_PEER, env: secret('shelbyville') }] })
  const as = (id: string): Record<string, string> => ({ 'x-fines-secret': secret(id).EZPROXY_SECRET, 'x-ezproxy-user': 'alice' })
  t.equal((await send(`${stack.serviceUrl}/springfield/`, { from: SHARED_PEER, headers: as('springfield') })).status, 200, 'springfield\'s EZproxy at springfield')
  t.equal((await send(`${stack.serviceUrl}/shelbyville/`, { from: SHARED_PEER, headers: as('shelbyville') })).status, 200, 'shelbyville\'s EZproxy at shelbyville')
  const crossed = await send(`${stack.serviceUrl}/springfield/`, { from: SHARED_PEER, headers: as('shelbyville') })
  t.equal(crossed.status, 403, 'shelbyville\'s EZproxy at springfield is refused')
  t.notMatch(crossed.body, 'The Name of the Rose', 'no springfield fee shown')
  t.equal((await send(`${stack.serviceUrl}/shelbyville/checkout`, { method: 'POST', body: 'fee=1', from: SHARED_PEER, headers: as('springfield') })).status, 403, 'nor springfield\'s at shelbyville')
  t.ok(stack.logLines().some(line => line.event === 'access.bad_secret' && line.campus === 'springfield'), 'logged as a bad secret at springfield')
})
