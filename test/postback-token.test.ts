// Issue 20, CashNet: CASHNET_POSTBACK_TOKEN (a secret in the notification URL, checked in constant time in
// addition to the address allow-list) and a cancel sent as a non-zero result with ccerrorcode=902. Over real
// HTTP, the ledger as the judge.

import t from 'tap'
import { Browser, build, CASHNET_PEER, checkoutIdFrom, form, send } from './helper.ts'

const TOKEN = 'postback-token-0123456789abcdef'

t.test('with CASHNET_POSTBACK_TOKEN set, a postback without the token or with a wrong one gets 403 and records nothing', async t => {
  const stack = await build(t, { env: { CASHNET_POSTBACK_TOKEN: TOKEN } })
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout(['100001'])
  const id = checkoutIdFrom(fields)
  t.ok(id, 'a checkout was created')
  const line = fields.find(([k]) => k === 'amount1')?.[1] ?? ''
  const body = form({ result: '0', tx: '880001', itemcnt: '1', itemcode1: 'LIB-FINE', amount1: line, ref1type1: 'ALMACHECKOUT', ref1val1: id })
  const postbacksBefore = (await stack.app.ledger.history(id))?.postbacks.length
  const unmatchedBefore = (await stack.app.ledger.unmatchedPostbacks()).length

  const attempts: Array<[string, string, string]> = [
    ['no token', '/cashnet/postback', body],
    ['a wrong token of the same length', `/cashnet/postback?token=${TOKEN.slice(0, -1)}X`, body],
    ['a wrong token of another length', '/cashnet/postback?token=short', body],
    ['an empty token', '/cashnet/postback?token=', body],
    ['the token in the body instead of the URL', '/cashnet/postback', `${body}&token=${TOKEN}`],
    ['the token twice', `/cashnet/postback?token=${TOKEN}&token=${TOKEN}`, body]
  ]
  for (const [what, path, text] of attempts) {
    const answer = await send(`${stack.serviceUrl}${path}`, { from: CASHNET_PEER, method: 'POST', body: text })
    t.equal(answer.status, 403, `${what}: 403`)
  }
  t.equal((await stack.app.ledger.history(id))?.postbacks.length, postbacksBefore, 'nothing recorded for the checkout')
  t.equal((await stack.app.ledger.unmatchedPostbacks()).length, unmatchedBefore, 'nothing recorded as unmatched either')
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'CREATED', 'the checkout is untouched')
  const refused = stack.logLines().filter(l => l.event === 'postback.bad_token')
  t.equal(refused.length, attempts.length, 'one postback.bad_token line each')
  t.notOk(stack.logs.join('\n').includes(TOKEN), 'the token is in no log line')

  // With the token (as the CashNet sandbox sends it, from the notification URL), the payment goes through.
  const receipt = await alice.payOnCashnet(action, fields)
  t.equal(receipt.status, 200)
  await stack.app.worker.idle()
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'POSTED', 'the postback with the token was recorded and posted')
  t.ok(stack.cashnet.sent.every(s => s.status === 200), 'CashNet\'s own postbacks carried the token')
  t.notOk(stack.logs.join('\n').includes(TOKEN), 'still in no log line')
})

t.test('without CASHNET_POSTBACK_TOKEN, a token in the URL is neither needed nor harmful', async t => {
  const stack = await build(t)
  const answer = await send(`${stack.serviceUrl}/cashnet/postback?token=anything`, { from: CASHNET_PEER, method: 'POST', body: 'result=0&tx=1&ref1type1=ALMACHECKOUT&ref1val1=nosuch' })
  t.equal(answer.status, 200, 'recorded (as an orphan)')
})

t.test('a cancel sent as a non-zero result with ccerrorcode=902 ends CANCELLED; another code ends DECLINED', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const cases: Array<[string, Record<string, string>, string]> = [
    ['result 1, ccerrorcode 902', { result: '1', ccerrorcode: '902', failedtx: '0' }, 'CANCELLED'],
    ['result 5, CCERRORCODE 902 (field name in capitals)', { result: '5', CCERRORCODE: '902', failedtx: '0' }, 'CANCELLED'],
    ['result 5, ccErrorCode 902 with a failedtx', { result: '5', ccErrorCode: '902', failedtx: '4711' }, 'CANCELLED'],
    ['result 5, ccerrorcode 209', { result: '5', ccerrorcode: '209', failedtx: '4712' }, 'DECLINED']
  ]
  for (const [what, extra, state] of cases) {
    const { fields } = await alice.checkout(['100001'])
    const id = checkoutIdFrom(fields)
    const answer = await stack.cashnet.sendPostback({ ...extra, respmessage: 'Customer Cancelled before processing payment', itemcnt: '1', amount1: '5.00', ref1type1: 'ALMACHECKOUT', ref1val1: id })
    t.equal(answer.status, 200, `${what}: acknowledged`)
    t.equal((await stack.app.ledger.getCheckout(id))?.state, state, `${what}: ${state}`)
    const recorded = (await stack.app.ledger.history(id))?.postbacks.at(-1)
    if (extra.failedtx !== '0') t.equal(recorded?.tx, extra.failedtx, `${what}: failedtx is kept as the transaction number`)
  }
  t.equal(stack.alma.calls.filter(c => c.method === 'POST').length, 0, 'nothing was posted to Alma')
})
