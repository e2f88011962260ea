// Property tests of the postback parser: on any field map it returns a well-formed Postback or throws a
// PostbackRejected, nothing else; over HTTP, any body from CashNet's address is answered 200, 400 or 429, never 5xx.

import fc from 'fast-check'
import t from 'tap'
import { parsePostback, PostbackRejected, referenceOf } from '../../src/providers/cashnet/postback.ts'
import { build, CASHNET_PEER, send } from '../helper.ts'

const REF = 'ALMACHECKOUT'
const NAMES = ['result', 'RESULT', 'respmessage', 'tx', 'failedtx', 'batchno', 'effdate', 'pmtcode', 'custcode', 'itemcnt', 'ItemCnt',
  'itemcode1', 'amount1', 'qty1', 'ref1type1', 'ref1val1', 'itemcode2', 'amount2', 'qty2', 'ref1type2', 'ref1val2', 'ref2type1', 'ref2val1',
  'amount3', 'amount200', 'ref', '__proto__', 'constructor', 'toString', 'hasOwnProperty']
const name = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) })
const text = fc.oneof(
  fc.constantFrom('0', '1', '902', '-1', '1.00', '5.005', '5', '0.5', '-3.00', '1e3', '99999999.99', '100000.00', 'NaN', 'Infinity', ' 2.50 ', '', REF, 'almacheckout', 'abc123', '4111111111111111', '﻿1', '１'),
  fc.string({ maxLength: 20 }),
  fc.stringMatching(/^-?\d{0,12}(\.\d{0,4})?$/),
  fc.string({ unit: 'binary', maxLength: 8 })
)
const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 8, arbitrary: text },
  { weight: 1, arbitrary: fc.array(text, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(null), fc.constant(undefined), fc.boolean(), fc.object({ maxDepth: 1 }), fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 2 })) }
)
const fieldMap = fc.array(fc.tuple(name, value), { maxLength: 16 }).map(pairs => {
  const body: Record<string, unknown> = {}
  for (const [k, v] of pairs) Object.defineProperty(body, k, { value: v, enumerable: true, configurable: true, writable: true })
  return body
})
/** Mostly-plausible postbacks, so the deep paths (items, amounts, totals) are reached often. */
const unknownFields = fc.dictionary(fc.string({ maxLength: 10 }).map(k => `x_${k}`), value, { maxKeys: 4 })
const plausible = fc.record({
  result: fc.constantFrom('0', '902', '5', 'x'),
  tx: fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^\d{1,8}$/) }, { weight: 1, arbitrary: text }),
  count: fc.integer({ min: 0, max: 4 }),
  amounts: fc.array(fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^\d{1,7}(\.\d{1,2})?$/) }, { weight: 1, arbitrary: fc.oneof(text, fc.stringMatching(/^\d{1,7}\.\d{3}$/)) }), { minLength: 4, maxLength: 4 }),
  ref: fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^[a-f0-9]{32}$/) }, { weight: 1, arbitrary: text }),
  extra: fc.oneof({ weight: 3, arbitrary: unknownFields }, { weight: 1, arbitrary: fieldMap })
}).map(p => {
  const body: Record<string, unknown> = { ...p.extra, result: p.result, tx: p.tx, itemcnt: String(p.count) }
  for (let n = 1; n <= p.count; n++) Object.assign(body, { [`amount${n}`]: p.amounts[n - 1], [`ref1type${n}`]: REF, [`ref1val${n}`]: p.ref, [`itemcode${n}`]: 'LIB-FINE' })
  return body
})

t.test('parsePostback on 10,000 generated field maps: a well-formed Postback or a PostbackRejected, nothing else', async t => {
  let accepted = 0
  let rejected = 0
  fc.assert(fc.property(fc.oneof({ weight: 1, arbitrary: fieldMap }, { weight: 3, arbitrary: plausible }), (body) => {
    try {
      const postback = parsePostback(body, REF)
      accepted++
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(postback.checkoutId)) return false
      if (!Number.isSafeInteger(postback.result) || postback.result < 0) return false
      let sum = 0
      for (const item of postback.items) {
        if (!Number.isSafeInteger(item.amount) || item.amount < 0 || item.amount > 10_000_000) return false
        if (!Number.isSafeInteger(item.qty) || item.qty < 0) return false
        sum += item.amount
      }
      if (sum !== postback.total || postback.total > 10_000_000) return false
      if (postback.tx !== '' && !/^[A-Za-z0-9._-]{1,64}$/.test(postback.tx)) return false
      if (referenceOf(body, REF) !== postback.checkoutId) return false
      return true
    } catch (error) {
      rejected++
      if (!(error instanceof PostbackRejected)) throw error
      return typeof error.reason === 'string' && error.reason.length > 0 && error.reason.length < 300
    }
  }), { numRuns: 10_000, seed: 20261126 })
  t.ok(accepted > 1000, `${accepted} accepted`)
  t.ok(rejected > 1000, `${rejected} rejected`)
})

t.test('referenceOf (the rate-limit key) never throws', async t => {
  fc.assert(fc.property(fieldMap, (body) => {
    const reference = referenceOf(body, REF)
    return reference === null || /^[A-Za-z0-9._-]{1,64}$/.test(reference)
  }), { numRuns: 10_000, seed: 7 })
  t.pass('10,000 field maps')
})

t.test('over HTTP, 300 generated bodies from CashNet\'s address get 200, 400 or 429, never a 5xx', async t => {
  const stack = await build(t, { env: { LOG_LEVEL: 'warn' } })
  const asForm = (body: Record<string, unknown>): string => {
    const params = new URLSearchParams()
    for (const [k, v] of Object.entries(body)) for (const one of Array.isArray(v) ? v : [v]) params.append(k, String(one))
    return params.toString()
  }
  const rawBody = fc.oneof(
    { weight: 4, arbitrary: plausible.map(asForm) },
    { weight: 2, arbitrary: fieldMap.map(asForm) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 100 }) },
    { weight: 1, arbitrary: fc.array(fc.constantFrom('%', '&', '=', '%zz', '%00', '+', 'result', '0', 'ref1type1', REF, 'ref1val1', '[]', '%C3', '%E2%82'), { maxLength: 30 }).map(parts => parts.join('')) }
  )
  const contentType = fc.constantFrom('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', 'text/plain', 'application/json', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded; charset=latin1')
  const statuses = new Map<number, number>()
  await fc.assert(fc.asyncProperty(rawBody, contentType, fc.constantFrom('', '?result=0', '?ref1type1=ALMACHECKOUT&ref1val1=q', '?%zz'), async (body, type, query) => {
    const answer = await send(`${stack.serviceUrl}/cashnet/postback${query}`, { from: CASHNET_PEER, method: 'POST', body, headers: { 'content-type': type } })
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
    return [200, 400, 415, 429].includes(answer.status) && answer.status < 500
  }), { numRuns: 300, seed: 42 })
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.notOk(stack.logLines().some(l => l.level >= 50), 'no error logged')
  t.equal((await send(`${stack.serviceUrl}/readyz`)).status, 200, 'the service is still ready')
})
