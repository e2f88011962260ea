// Limits: requests per patron (not per address: every patron arrives from EZproxy), postbacks per checkout,
// body sizes on every route, and strict reading of the postback's numbers.

import { request as httpRequest } from 'node:http'
import t from 'tap'
import { parsePostback, PostbackRejected } from '../../src/providers/cashnet/postback.ts'
import { POSTBACKS_PER_CHECKOUT_PER_MINUTE } from '../../src/web/routes/postback.ts'
import { Browser, build, CASHNET_PEER, checkoutIdFrom, readForm, send } from '../helper.ts'
import { DirectClient } from './direct.ts'

const REF = 'ALMACHECKOUT'

t.test('the patron rate limit is per username: one patron is stopped, the next is served', async t => {
  const stack = await build(t, { env: { PATRON_RATE_LIMIT: '3' } })
  const alice = new Browser(stack).login('alice')
  const fines = await alice.get('/')
  t.equal(fines.status, 200, 'alice request 1: served')
  const csrf = readForm(fines.body, 'pay-form').fields
  for (let i = 2; i <= 3; i++) t.equal((await alice.get('/')).status, 200, `alice request ${i}: served`)
  const callsBefore = stack.alma.calls.length
  const limited = await alice.get('/')
  t.equal(limited.status, 429, 'alice request 4: 429')
  t.match(limited.body, 'Please wait a moment')
  t.match(limited.headers['cache-control'], /no-store/)
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After says when')
  t.equal(stack.alma.calls.length, callsBefore, 'the refused request cost Alma nothing')
  const bob = await new Browser(stack).login('bob').get('/')
  t.equal(bob.status, 200, 'bob, through the same EZproxy address, is served')

  // @fastify/rate-limit keeps one budget per route: POST /checkout has its own PATRON_RATE_LIMIT a minute.
  for (let i = 1; i <= 3; i++) t.equal((await alice.post('checkout', [...csrf, ['fee', 'no-such-fee']])).status, 409, `alice checkout ${i}: refused by the rules, but served`)
  const before = stack.alma.calls.length
  const checkout = await alice.post('checkout', [...csrf, ['fee', '100001']])
  t.equal(checkout.status, 429, 'alice checkout 4, with a valid CSRF token: 429')
  t.equal(stack.alma.calls.length, before, 'it cost Alma nothing')
  t.equal(await stack.app.ledger.latestCheckoutForUser('alice'), undefined, 'no checkout recorded')
})

t.test('postbacks are limited per checkout reference, generously, and only after the peer check', async t => {
  const stack = await build(t)
  const fields = (ref: string, tx: string): Record<string, string> => ({ result: '0', tx, itemcnt: '1', amount1: '1.00', ref1type1: REF, ref1val1: ref })
  for (let i = 1; i <= POSTBACKS_PER_CHECKOUT_PER_MINUTE; i++) {
    const sent = await stack.cashnet.sendPostback(fields('loop-ref', String(i)))
    if (sent.status !== 200) t.fail(`postback ${i} answered ${sent.status}`)
  }
  const limited = await stack.cashnet.sendPostback(fields('loop-ref', '999'))
  t.equal(limited.status, 429, `postback ${POSTBACKS_PER_CHECKOUT_PER_MINUTE + 1} for one reference in a minute: 429`)
  const other = await stack.cashnet.sendPostback(fields('other-ref', '1'))
  t.equal(other.status, 200, 'a postback for another checkout is not affected')
  t.ok(stack.logLines().some(l => l.event === 'postback.rate_limited' && l.checkout === 'loop-ref'), 'the 429 is logged with the reference')
  t.equal((await stack.app.ledger.unmatchedPostbacks()).filter(p => p.checkoutId === 'loop-ref').length, POSTBACKS_PER_CHECKOUT_PER_MINUTE, 'the refused one is not recorded')
})

t.test('a real payment among a replay flood for another checkout is recorded and posted', async t => {
  const stack = await build(t)
  for (let i = 0; i < POSTBACKS_PER_CHECKOUT_PER_MINUTE + 5; i++) {
    await stack.cashnet.sendPostback({ result: '0', tx: `7${i}`, itemcnt: '1', amount1: '1.00', ref1type1: REF, ref1val1: 'flooded-ref' })
  }
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout(['100001'])
  await alice.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  t.equal((await stack.app.ledger.getCheckout(checkoutIdFrom(fields)))?.state, 'POSTED', 'the real checkout went through')
})

t.test('an oversize body is refused with 413 on every route that takes one, and nothing is recorded', async t => {
  const stack = await build(t)
  const big = (size: number): string => 'fee=' + '1'.repeat(size)
  const alice = new DirectClient(stack, 'alice')
  const { csrf } = await alice.finesForm()
  const checkout = await alice.post('checkout', `_csrf=${encodeURIComponent(csrf)}&fee=100001&pad=${'x'.repeat(70 * 1024)}`)
  t.equal(checkout.status, 413, 'POST /checkout over 64 KiB: 413')
  t.match(checkout.body, 'That request was too large.')
  t.equal(await stack.app.ledger.latestCheckoutForUser('alice'), undefined, 'no checkout recorded')
  const ret = await alice.post('cashnet/return', big(40 * 1024))
  t.equal(ret.status, 413, 'POST /cashnet/return over 32 KiB: 413')
  const postback = await send(`${stack.serviceUrl}/cashnet/postback`, { from: CASHNET_PEER, method: 'POST', body: `result=0&ref1type1=${REF}&ref1val1=big-ref&tx=1&pad=${'x'.repeat(40 * 1024)}` })
  t.equal(postback.status, 413, 'POST /cashnet/postback over 32 KiB: 413')
  t.match(postback.headers['content-type'], /text\/plain/, 'CashNet gets a plain-text answer')
  const json = await send(`${stack.serviceUrl}/cashnet/postback`, { from: CASHNET_PEER, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(40 * 1024) }) })
  t.equal(json.status, 413, 'whatever the content type')
  const other = await alice.request('healthz', { method: 'POST', body: big(70 * 1024) })
  t.ok(other.status === 404 || other.status === 413, `a route that takes no body does not read one (${other.status})`)
  t.same(await stack.app.ledger.unmatchedPostbacks(), [], 'no postback recorded')
  t.notOk(stack.logLines().some(l => l.level >= 50), 'no error logged')
})

t.test('a chunked body without a length is cut off at the limit too', async t => {
  const stack = await build(t)
  const target = new URL(`${stack.serviceUrl}/cashnet/postback`)
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', localAddress: CASHNET_PEER, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.on('error', reject)
    req.write('result=0&ref1type1=ALMACHECKOUT&ref1val1=chunked&pad=')
    for (let i = 0; i < 40; i++) req.write('x'.repeat(1024))
    req.end()
  })
  t.equal(status, 413)
  t.same(await stack.app.ledger.unmatchedPostbacks(), [])
})

t.test('postback numbers are read strictly; unknown fields are ignored', async t => {
  const base = { result: '0', tx: '12345', itemcnt: '1', itemcode1: 'LIB-FINE', amount1: '5.00', qty1: '1', ref1type1: REF, ref1val1: 'abc123' }
  const parsed = parsePostback({ ...base, surprise: 'x', CARDNAME: 'Alice', x_extra: ['a', 'b'] as unknown as string }, REF)
  t.equal(parsed.total, 500, 'unknown fields (even repeated ones) are ignored')
  t.equal(parsePostback({ ...base, amount1: '5' }, REF).total, 500, 'whole units are fine')
  t.equal(parsePostback({ ...base, amount1: '5.1' }, REF).total, 510, 'one decimal is fine')
  t.equal(parsePostback({ ...base, amount1: '0.00' }, REF).total, 0, 'zero parses (the rules then see a mismatch)')
  const refused: Array<[string, Record<string, unknown>]> = [
    ['three decimals', { amount1: '5.001' }],
    ['trailing zero third decimal', { amount1: '5.000' }],
    ['negative', { amount1: '-5.00' }],
    ['negative zero', { amount1: '-0.00' }],
    ['exponent', { amount1: '5e2' }],
    ['hex', { amount1: '0x10' }],
    ['grouping', { amount1: '1,000.00' }],
    ['currency sign', { amount1: '$5.00' }],
    ['infinity', { amount1: 'Infinity' }],
    ['NaN', { amount1: 'NaN' }],
    ['plus sign', { amount1: '+5.00' }],
    ['leading dot', { amount1: '.50' }],
    ['absurd line', { amount1: '100000.01' }],
    ['absurd total', { itemcnt: '2', amount1: '60000.00', amount2: '60000.00', ref1type2: REF, ref1val2: 'abc123' }],
    ['missing amount', { amount1: '' }],
    ['itemcnt not a number', { itemcnt: 'two' }],
    ['itemcnt negative', { itemcnt: '-1' }],
    ['itemcnt absurd', { itemcnt: '100000' }],
    ['qty not a number', { qty1: '1.5' }],
    ['result not a number', { result: 'OK' }],
    ['result missing', { result: '' }],
    ['tx with markup', { tx: '<b>1</b>' }],
    ['reference with markup', { ref1val1: '"><script>' }],
    ['two different references', { itemcnt: '2', amount2: '1.00', ref1type2: REF, ref1val2: 'other' }],
    ['a field twice with different values', { RESULT: '1' }],
    ['a field that is not text', { result: { nested: '0' } }]
  ]
  for (const [what, change] of refused) {
    try {
      parsePostback({ ...base, ...change }, REF)
      t.fail(`${what}: accepted`)
    } catch (error) {
      t.ok(error instanceof PostbackRejected, `${what}: PostbackRejected (${(error as PostbackRejected).reason})`)
    }
  }
})

t.test('over HTTP, a malformed postback is a 400 with the raw body kept for staff, never a 5xx', async t => {
  const stack = await build(t)
  for (const body of ['result=0&ref1type1=ALMACHECKOUT&ref1val1=r1&itemcnt=1&amount1=5.001', 'result=0&ref1type1=ALMACHECKOUT&ref1val1=r2&itemcnt=1&amount1=-5', '%%%&&&==', '', 'result=0&result=1&ref1type1=ALMACHECKOUT&ref1val1=r3']) {
    const answer = await send(`${stack.serviceUrl}/cashnet/postback`, { from: CASHNET_PEER, method: 'POST', body })
    t.equal(answer.status, 400, `${JSON.stringify(body.slice(0, 50))}: 400`)
    t.match(answer.body, /^rejected: /)
  }
  const kept = await stack.app.ledger.unmatchedPostbacks()
  t.equal(kept.length, 5, 'each kept for staff')
  t.ok(kept.every(p => p.outcome === 'REJECTED'))
})
