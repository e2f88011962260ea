// Issue 13 item 11: a 16-digit card-like number never reaches a log line or the ledger in clear, on any path:
// the `user` field every patron request's log lines carry, the request URL, a postback's tx and checkout
// reference (stored, shown in /admin/postbacks and on the payment page, exported as CSV) and raw bodies. Masked
// to the last four digits, Luhn-valid or not (src/mask.ts says why).

import t from 'tap'
import { maskCardLike, maskFormBody, maskIdentifier } from '../../src/mask.ts'
import { Browser, build, checkoutIdFrom, send, UNTRUSTED_PEER } from '../helper.ts'
import { DirectClient } from './direct.ts'

const CARD = '4111111111111111' // Luhn-valid
const NOT_LUHN = '4111111111111112' // one digit off: still most of a card number
const CARD_DASHED = '5500-0000-0000-0004'

function everywhere (text: string): string[] {
  return [CARD, NOT_LUHN, CARD_DASHED, CARD_DASHED.replace(/-/g, '')].filter(card => text.includes(card))
}

t.test('the masking rule', async t => {
  t.equal(maskIdentifier('ABC123', 'k'), 'ABC123', 'an identifier with nothing card-like is kept as it is')
  t.match(maskIdentifier(CARD, 'k'), /^\*{12}1111~[0-9a-f]{8}$/, 'a card-like identifier is masked, with a digest')
  t.not(maskIdentifier(CARD, 'k'), maskIdentifier('4000000000001111', 'k'), 'two numbers with the same last four digits stay distinct')
  t.equal(maskIdentifier(CARD, 'k'), maskIdentifier(CARD, 'k'), 'the same number masks the same way every time (duplicates are still recognised)')
  t.not(maskIdentifier(CARD, 'k'), maskIdentifier(CARD, 'other key'), 'the digest is keyed: no one can try card numbers against the ledger without the secret')
  t.equal(maskCardLike(`card ${CARD}`), 'card ************1111')
  t.equal(maskCardLike(NOT_LUHN), '************1112', 'Luhn-invalid runs are masked too')
  t.equal(maskCardLike(CARD_DASHED), '****-****-****-0004', 'separators are kept, digits masked')
  t.equal(maskCardLike('4111 1111 1111 1111'), '**** **** **** 1111')
  t.equal(maskCardLike('123456789012'), '123456789012', '12 digits: not card-like')
  t.equal(maskCardLike('1234567890123'), '*********0123', '13 digits: masked')
  t.equal(maskCardLike('12345678901234567890'), '12345678901234567890', '20 digits: not card-like')
  const hex = '0123456789012345abcdef0123456789'
  t.equal(maskCardLike(hex), hex, 'a run inside a hex checkout id is not a card number')
  t.equal(maskFormBody(`tx=${CARD}&ref1val1=${hex}&custcode=a+${CARD_DASHED.replace(/-/g, '%2D')}`), `tx=************1111&ref1val1=${hex}&custcode=a+****-****-****-0004`,
    'a form body is masked field by field, the rest left as sent')
  t.equal(maskFormBody('msg=%E0%A4%A+4111+1111+1111+1111'), 'msg=%E0%A4%A+****+****+****+1111', 'a part that does not decode is masked as text')
})

t.test('a card-like username is masked in the `user` field and in every message', async t => {
  const stack = await build(t)
  const client = new DirectClient(stack, CARD)
  await client.get('/') // unknown to Alma: a 404 page, with log lines carrying the user
  await client.get('/ezproxy-check')
  const lines = stack.logLines().filter(l => l.user !== undefined)
  t.ok(lines.length > 0, 'lines with a user field were written')
  t.ok(lines.every(l => l.user === '************1111'), 'the user field is masked')
  t.same(everywhere(stack.logs.join('\n')), [], 'the number is in no log line')
})

t.test('a card-like number in the request URL is masked in the request log line', async t => {
  const stack = await build(t)
  for (const path of [`/${CARD}`, `/assets/${CARD_DASHED}`, `/admin/payments/${NOT_LUHN}`, `/cashnet/return?ref=${CARD}`]) {
    await send(`${stack.serviceUrl}${path}`, { from: UNTRUSTED_PEER })
  }
  await new DirectClient(stack, 'staff').get(`/admin/payments/${CARD}`)
  const urls = stack.logLines().filter(l => l.req?.url !== undefined).map(l => l.req.url)
  t.ok(urls.includes('/************1111'), 'the path is logged, masked')
  t.ok(urls.includes('/assets/****-****-****-0004'))
  t.same(everywhere(stack.logs.join('\n')), [], 'the number is in no log line')
})

t.test('a postback\'s tx, reference and raw body reach the ledger, /admin/postbacks, the payment page and the CSV masked', async t => {
  const stack = await build(t)
  // an orphan: the reference is a card number
  await stack.cashnet.sendPostback({ result: '0', tx: CARD, itemcnt: '1', amount1: '1.00', ref1type1: 'ALMACHECKOUT', ref1val1: NOT_LUHN, respmessage: `approved ${CARD_DASHED}` })
  // rejected: unreadable amount, with a card-number reference
  await stack.cashnet.sendPostback({ result: '0', tx: '5', itemcnt: '1', amount1: 'x', ref1type1: 'ALMACHECKOUT', ref1val1: CARD })
  // a real checkout paid with a card-like tx: recorded, posted to Alma, shown to staff
  const alice = new Browser(stack).login('alice')
  const { fields } = await alice.checkout(['100001'])
  const id = checkoutIdFrom(fields)
  const amount = fields.find(([k]) => k === 'amount1')?.[1] ?? ''
  await stack.cashnet.sendPostback({ result: '0', tx: CARD_DASHED.replace(/-/g, ''), itemcnt: '1', itemcode1: 'LIB-FINE', amount1: amount, ref1type1: 'ALMACHECKOUT', ref1val1: id })
  // and a decline whose message carries a card number
  const second = await alice.checkout(['100003'])
  await stack.cashnet.sendPostback({ result: '5', respmessage: `declined ${CARD}`, failedtx: NOT_LUHN, itemcnt: '1', amount1: '1.00', ref1type1: 'ALMACHECKOUT', ref1val1: checkoutIdFrom(second.fields) })
  await stack.app.worker.idle()

  const ledger = stack.app.ledger
  t.equal((await ledger.getCheckout(id))?.state, 'POSTED', 'the payment with a card-like tx still went through')
  t.match((await ledger.getCheckout(id))?.tx, /^\*{12}0004~[0-9a-f]{8}$/, 'its tx is stored masked, with a keyed digest that tells it from other numbers')
  const stored = JSON.stringify([await ledger.unmatchedPostbacks(), await ledger.history(id), await ledger.history(checkoutIdFrom(second.fields))])
  t.match(stored, '************1111', 'masked values were stored')
  t.same(everywhere(stored), [], 'no number in clear anywhere in the ledger: tx, reference, reason, raw body')
  const unmatched = await ledger.unmatchedPostbacks()
  t.ok(unmatched.some(p => /^\*{12}1112~[0-9a-f]{8}$/.test(p.checkoutId ?? '') && /^\*{12}1111~[0-9a-f]{8}$/.test(p.tx)), 'the orphan\'s reference and tx, masked')
  t.ok(unmatched.some(p => p.outcome === 'REJECTED' && p.checkoutId === '************1111'), 'the rejected postback\'s reference, masked')

  const staff = new DirectClient(stack, 'staff')
  for (const path of ['/admin/postbacks', `/admin/payments/${id}`, `/admin/payments/${checkoutIdFrom(second.fields)}`, '/admin/payments.csv', '/admin?q=0004']) {
    const page = await staff.get(path)
    t.equal(page.status, 200, `${path}: shown`)
    t.same(everywhere(page.body), [], `${path}: no number in clear`)
  }
  t.match((await staff.get('/admin/postbacks')).body, '************1111', '/admin/postbacks shows the masked tx')
  t.same(everywhere(JSON.stringify(stack.alma.calls)), [], 'nor in anything sent to Alma')
  t.same(everywhere(stack.logs.join('\n')), [], 'nor in any log line')
})

t.test('two different card-like tx numbers with the same last four digits are a double charge, not a duplicate', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const { fields } = await alice.checkout(['100001'])
  const id = checkoutIdFrom(fields)
  const amount = fields.find(([k]) => k === 'amount1')?.[1] ?? ''
  const postback = (tx: string): Record<string, string> => ({ result: '0', tx, itemcnt: '1', itemcode1: 'LIB-FINE', amount1: amount, ref1type1: 'ALMACHECKOUT', ref1val1: id })
  await stack.cashnet.sendPostback(postback(CARD))
  await stack.app.worker.idle()
  await stack.cashnet.sendPostback(postback(CARD)) // CashNet repeating itself
  await stack.cashnet.sendPostback(postback('4000000000001111')) // a second charge that masks to the same last four
  await stack.app.worker.idle()
  const outcomes = (await stack.app.ledger.history(id))?.postbacks.map(p => p.outcome)
  t.same(outcomes, ['PAID', 'DUPLICATE', 'DOUBLE_CHARGE'], 'the repeat is a duplicate; the other number is a second charge for staff')
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'NEEDS_ATTENTION')
  t.same(everywhere(JSON.stringify(await stack.app.ledger.history(id))), [], 'neither number is in the ledger in clear')
})
