// Trust boundaries: who may reach which route is decided by the TCP peer (or, only when TRUST_PROXY names a
// front proxy, by X-Forwarded-For as that proxy reports it). Headers from anyone else change nothing.

import { request as httpRequest } from 'node:http'
import t from 'tap'
import { allowList } from '../../src/web/trust.ts'
import { Browser, build, CASHNET_PEER, checkoutIdFrom, send, UNTRUSTED_PEER } from '../helper.ts'
import { DirectClient, EZPROXY_PEER } from './direct.ts'

t.test('the allow-list classifies IPv4, IPv6, CIDR and IPv4-mapped IPv6 peers', async t => {
  const ezproxy = allowList(['192.0.2.10', '2001:db8:10::/64', '::1', '198.51.100.0/24'])
  const cases: Array<[string | undefined, boolean]> = [
    ['192.0.2.10', true],
    ['::ffff:192.0.2.10', true], // a dual-stack socket reports IPv4 peers this way
    ['::ffff:c000:20a', true], // the same address written in hex
    ['192.0.2.11', false],
    ['::ffff:192.0.2.11', false],
    ['198.51.100.77', true],
    ['::ffff:198.51.100.77', true],
    ['198.51.101.1', false],
    ['2001:db8:10::1', true],
    ['2001:db8:10:0:ffff:ffff:ffff:ffff', true],
    ['2001:db8:11::1', false],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::2', false],
    ['127.0.0.1', false],
    ['::ffff:127.0.0.1', false],
    ['', false],
    [undefined, false],
    ['not-an-address', false],
    ['192.0.2.10, 192.0.2.10', false]
  ]
  for (const [address, trusted] of cases) {
    let answer: boolean
    try {
      answer = ezproxy(address)
    } catch {
      answer = false
    }
    t.equal(answer, trusted, `${String(address)} is ${trusted ? '' : 'not '}trusted`)
  }
  t.equal(allowList([])('127.0.0.1'), false, 'an empty allow-list trusts nobody')
  const mappedEntry = allowList(['::ffff:10.1.2.3'])
  t.equal(mappedEntry('10.1.2.3'), true, 'an IPv4-mapped entry matches the plain IPv4 peer')
  t.equal(mappedEntry('10.1.2.4'), false)
})

/** A GET over IPv6 or IPv4 to the service's port, from a chosen local address (helper.send cannot take [::1]). */
async function getFrom (host: string, port: string, from: string, headers: Record<string, string>): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host, port, path: '/', localAddress: from, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('on a dual-stack socket, IPv6 and IPv4-mapped peers are classified right over HTTP', async t => {
  const stack = await build(t, { env: { HOST: '::', EZPROXY_ALLOW: '::1,127.0.0.2' } })
  const port = new URL(stack.serviceUrl).port
  const user = { 'x-ezproxy-user': 'alice' }
  t.equal((await getFrom('::1', port, '::1', user)).status, 200, '::1 is in the allow-list: served')
  t.equal((await getFrom('127.0.0.1', port, '127.0.0.2', user)).status, 200, '127.0.0.2 arrives as ::ffff:127.0.0.2 and matches its IPv4 entry')
  t.equal((await getFrom('127.0.0.1', port, '127.0.0.1', user)).status, 403, '127.0.0.1 (::ffff:127.0.0.1) is not ::1')
  t.equal((await getFrom('127.0.0.1', port, UNTRUSTED_PEER, { ...user, 'x-forwarded-for': '::1' })).status, 403, 'a forged X-Forwarded-For: ::1 does not help')
  const peers = stack.logLines().filter(l => l.event === 'access.untrusted_peer').map(l => l.peer)
  t.same(peers, ['::ffff:127.0.0.1', `::ffff:${UNTRUSTED_PEER}`], 'refusals name the mapped peer')
})

t.test('a stranger with forged EZproxy headers and X-Forwarded-For gets no patron data', async t => {
  const stack = await build(t, { env: { EZPROXY_SECRET_HEADER: 'x-ezp-secret', EZPROXY_SECRET: 'shared-secret-for-ezproxy-0042' } })
  const forged = {
    'x-ezproxy-user': 'alice',
    'x-ezp-secret': 'shared-secret-for-ezproxy-0042',
    'x-forwarded-for': EZPROXY_PEER,
    'x-real-ip': EZPROXY_PEER,
    forwarded: `for=${EZPROXY_PEER}`,
    'x-forwarded-host': 'fines.example.edu',
    'x-client-ip': EZPROXY_PEER
  }
  for (const path of ['/', '/cashnet/return', '/admin', '/admin/payments']) {
    const answer = await send(`${stack.serviceUrl}${path}`, { from: UNTRUSTED_PEER, headers: forged })
    t.not(answer.status, 200, `${path}: not served`)
    t.notMatch(answer.body, /Alice|Archer|100001|\$62\.75/, `${path}: none of Alice's data`)
  }
  const posted = await send(`${stack.serviceUrl}/checkout`, { from: UNTRUSTED_PEER, method: 'POST', headers: forged, body: 'fee=100001' })
  t.equal(posted.status, 403)
  t.equal(stack.alma.calls.length, 0, 'Alma was never asked')
  t.equal(await stack.app.ledger.latestCheckoutForUser('alice'), undefined, 'no checkout recorded')
  const warned = stack.logLines().filter(l => l.event === 'access.untrusted_peer')
  t.ok(warned.length >= 4, 'each refusal is logged')
  t.ok(warned.every(l => l.peer === UNTRUSTED_PEER), 'with the real TCP peer, not the forged one')

  const noSecret = await send(`${stack.serviceUrl}/`, { from: EZPROXY_PEER, headers: { 'x-ezproxy-user': 'alice' } })
  t.equal(noSecret.status, 403, 'from the EZproxy address but without the shared secret: refused')
  const wrongSecret = await send(`${stack.serviceUrl}/`, { from: EZPROXY_PEER, headers: { 'x-ezproxy-user': 'alice', 'x-ezp-secret': 'shared-secret-for-ezproxy-0043' } })
  t.equal(wrongSecret.status, 403, 'a wrong secret of the same length: refused')
  const ok = await send(`${stack.serviceUrl}/`, { from: EZPROXY_PEER, headers: { 'x-ezproxy-user': 'alice', 'x-ezp-secret': 'shared-secret-for-ezproxy-0042' } })
  t.equal(ok.status, 200, 'EZproxy with the secret is served')
})

t.test('usernames that are not plain identifiers are refused, not looked up', async t => {
  const stack = await build(t)
  for (const username of ['alice/../bob', 'alice?x=1', '<script>', 'a b', 'alice%2fbob', 'x'.repeat(200)]) {
    const answer = await new DirectClient(stack, username).get('/')
    t.equal(answer.status, 401, `${JSON.stringify(username.slice(0, 20))}: 401`)
  }
  t.equal(stack.alma.calls.length, 0, 'Alma was never asked')
})

t.test('with TRUST_PROXY, X-Forwarded-For is read only from that front proxy, and only its last hop', async t => {
  const frontProxy = '127.0.0.5'
  const stack = await build(t, { env: { TRUST_PROXY: frontProxy } })
  const viaProxy = await send(`${stack.serviceUrl}/`, { from: frontProxy, headers: { 'x-ezproxy-user': 'alice', 'x-forwarded-for': EZPROXY_PEER } })
  t.equal(viaProxy.status, 200, 'EZproxy behind the trusted front proxy is recognised')
  t.match(viaProxy.body, 'Alice')
  const proxyItself = await send(`${stack.serviceUrl}/`, { from: frontProxy, headers: { 'x-ezproxy-user': 'alice' } })
  t.equal(proxyItself.status, 403, 'the front proxy itself is not EZproxy')
  const stranger = await send(`${stack.serviceUrl}/`, { from: UNTRUSTED_PEER, headers: { 'x-ezproxy-user': 'alice', 'x-forwarded-for': EZPROXY_PEER } })
  t.equal(stranger.status, 403, 'X-Forwarded-For from a peer that is not the front proxy is ignored')
  const prepended = await send(`${stack.serviceUrl}/`, { from: frontProxy, headers: { 'x-ezproxy-user': 'alice', 'x-forwarded-for': `${EZPROXY_PEER}, ${UNTRUSTED_PEER}` } })
  t.equal(prepended.status, 403, 'a client that forges X-Forwarded-For through the front proxy is still the client')
  const postback = await send(`${stack.serviceUrl}/cashnet/postback`, { from: frontProxy, method: 'POST', headers: { 'x-forwarded-for': UNTRUSTED_PEER }, body: 'result=0&ref1type1=ALMACHECKOUT&ref1val1=abc' })
  t.equal(postback.status, 403, 'a postback relayed for a stranger is refused')
  const cashnet = await send(`${stack.serviceUrl}/cashnet/postback`, { from: frontProxy, method: 'POST', headers: { 'x-forwarded-for': CASHNET_PEER }, body: 'result=0&ref1type1=ALMACHECKOUT&ref1val1=abc&tx=1' })
  t.equal(cashnet.status, 200, 'a postback relayed for CashNet is accepted (recorded as an orphan)')
})

t.test('without TRUST_PROXY, X-Forwarded-For from the EZproxy address changes nothing', async t => {
  const stack = await build(t)
  const answer = await send(`${stack.serviceUrl}/cashnet/postback`, { from: EZPROXY_PEER, method: 'POST', headers: { 'x-forwarded-for': CASHNET_PEER }, body: 'result=0' })
  t.equal(answer.status, 403, 'EZproxy cannot pose as CashNet with X-Forwarded-For')
  const cashnetAsPatron = await send(`${stack.serviceUrl}/`, { from: CASHNET_PEER, headers: { 'x-ezproxy-user': 'alice', 'x-forwarded-for': EZPROXY_PEER } })
  t.equal(cashnetAsPatron.status, 403, 'CashNet\'s address cannot pose as EZproxy')
})

t.test('a postback with a valid reference from a wrong peer changes nothing', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const { fields } = await alice.checkout(['100001'])
  const id = checkoutIdFrom(fields)
  const before = await stack.app.ledger.history(id)
  stack.alma.calls.length = 0
  const body = new URLSearchParams({ result: '0', tx: '990001', itemcnt: '1', itemcode1: 'LIB-FINE', amount1: '5.00', ref1type1: 'ALMACHECKOUT', ref1val1: id }).toString()
  for (const from of [UNTRUSTED_PEER, EZPROXY_PEER]) {
    const answer = await send(`${stack.serviceUrl}/cashnet/postback`, { from, method: 'POST', body, headers: { 'x-forwarded-for': CASHNET_PEER } })
    t.equal(answer.status, 403, `from ${from}: 403`)
  }
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'CREATED', 'still CREATED')
  t.same(await stack.app.ledger.history(id), before, 'the ledger history is unchanged')
  t.same(await stack.app.ledger.unmatchedPostbacks(), [], 'nothing recorded as a postback')
  t.equal(stack.alma.calls.length, 0, 'no Alma calls')
  t.equal(stack.alma.fee('100001').balanceCents, 500, 'the fee is still owed')
})
