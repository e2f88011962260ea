// No secret and no card-like number reaches a log line: a whole payment runs through the stack with distinctive
// secrets, a hostile postback carries card numbers, and every captured line is searched for each.

import t from 'tap'
import { SANDBOX_API_KEY, SANDBOX_WSKEY } from '../../src/sandbox/stack.ts'
import { Browser, build, checkoutIdFrom, readForm } from '../helper.ts'

const COOKIE_SECRET = 'cookie-secret-DISTINCTIVE-7f1e2d3c4b5a69788796a5b4'
const EZPROXY_SECRET = 'ezproxy-secret-DISTINCTIVE-c0ffee42'
const CARD = '4111111111111111'
const CARD_SPACED = '4111 1111 1111 1111'
const CARD_DASHED = '5500-0000-0000-0004'

t.test('a full payment and hostile postbacks leave no secret, token or card number in any log line', async t => {
  const stack = await build(t, { env: { COOKIE_SECRET, EZPROXY_SECRET_HEADER: 'x-ezp-secret', EZPROXY_SECRET, LOG_LEVEL: 'trace' } })
  const alice = new Browser(stack).login('alice')
  const fines = await alice.get('/')
  const pay = readForm(fines.body, 'pay-form')
  const csrfToken = pay.fields.find(([k]) => k === '_csrf')?.[1] ?? ''
  t.ok(csrfToken.length > 10, 'the CSRF token was read off the page')
  const handoff = await alice.post('checkout', [...pay.fields, ['fee', '100001'], ['fee', '100003']])
  t.equal(handoff.status, 200)
  const cashnetForm = readForm(handoff.body, 'cashnet-form')
  const receipt = await alice.payOnCashnet(cashnetForm.action, cashnetForm.fields)
  t.equal(receipt.status, 200)
  await stack.app.worker.idle()
  const id = checkoutIdFrom(cashnetForm.fields)
  t.equal((await stack.app.ledger.getCheckout(id))?.state, 'POSTED', 'the payment went all the way to Alma')

  // A wrong CSRF token and a bad EZproxy secret are logged as refusals, without the values sent.
  await alice.post('checkout', [['_csrf', csrfToken + 'x'], ['fee', '100002']])
  // Card numbers in the fields CashNet (or anyone in the allow-list) may fill: accepted, orphaned, rejected.
  await stack.cashnet.sendPostback({ result: '0', tx: CARD, itemcnt: '1', amount1: '1.00', ref1type1: 'ALMACHECKOUT', ref1val1: CARD, respmessage: `card ${CARD_SPACED}`, custcode: CARD_DASHED })
  await stack.cashnet.sendPostback({ result: '5', respmessage: `declined ${CARD_SPACED}`, tx: '77', itemcnt: '1', amount1: '5.00', ref1type1: 'ALMACHECKOUT', ref1val1: id, custcode: CARD })
  await stack.cashnet.sendPostback({ result: '0', tx: '78', itemcnt: '1', amount1: `${CARD}.00`, ref1type1: 'ALMACHECKOUT', ref1val1: id, cardnumber: CARD })
  await stack.cashnet.sendPostback({ result: CARD, ref1type1: 'ALMACHECKOUT', ref1val1: 'x' })

  const secrets: Record<string, string> = {
    ALMA_API_KEY: SANDBOX_API_KEY,
    COOKIE_SECRET,
    EZPROXY_SECRET,
    EZPROXY_WSKEY: SANDBOX_WSKEY,
    'the CSRF token': csrfToken,
    'a card number': CARD,
    'a spaced card number': CARD_SPACED,
    'a dashed card number': CARD_DASHED,
    'a card number without separators': CARD_DASHED.replace(/-/g, '')
  }
  const logs = stack.logs.join('\n')
  t.ok(stack.logs.length > 20, `${stack.logs.length} log lines captured`)
  t.match(logs, '"event":"postback.received"', 'the postbacks were logged')
  t.match(logs, '************1111', 'a card number is logged masked, last four only')
  for (const [what, secret] of Object.entries(secrets)) {
    t.notOk(logs.includes(secret), `${what} is in no log line`)
  }
  // Every free-standing run of 13 to 19 digits (with or without separators) in any string is masked; JSON
  // numbers (durations such as 1.8033239999995) are not card data.
  const runs = logs.match(/(?<![0-9A-Za-z.])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])/g) ?? []
  t.same(runs, [], 'no card-like digit run at all')
  // Nor in the raw bodies the ledger keeps for staff, in any form encoding.
  const raw = JSON.stringify([...(await stack.app.ledger.unmatchedPostbacks()), ...((await stack.app.ledger.history(id))?.postbacks ?? [])].map(p => p.rawBody))
  t.match(raw, 'custcode', 'raw bodies were kept')
  for (const card of [CARD, CARD_SPACED.replace(/ /g, '+'), CARD_DASHED, CARD_DASHED.replace(/-/g, '')]) t.notOk(raw.includes(card), `the ledger's raw bodies do not keep ${card}`)
  // (a run inside a longer token, such as a hex checkout id that happens to hold 13 digits in a row, is not one)
  t.notMatch(raw, /(?<![0-9A-Za-z])\d(?:(?:[ +-]|%20|%2D)?\d){12,18}(?![0-9A-Za-z])/i, 'no card-like run in any raw body')
})

t.test('credential fields are censored at any depth and in any case, and the rest of the line is kept', async t => {
  const { Writable } = await import('node:stream')
  const { default: pino } = await import('pino')
  const { loggerOptions } = await import('../../src/log.ts')
  const lines: string[] = []
  const sink = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
  const logger = pino(loggerOptions({ logLevel: 'info', almaApiKey: SANDBOX_API_KEY, cookieSecret: COOKIE_SECRET, ezproxySecret: EZPROXY_SECRET, ezproxyWskey: SANDBOX_WSKEY }), sink)
  logger.info({
    event: 'test.fields',
    _csrf: 'csrf-AAAA',
    csrf: 'csrf-BBBB',
    headers: { Authorization: 'Bearer CCCC', cookie: 'acn_session=DDDD', 'Set-Cookie': ['acn_csrf=EEEE'] },
    paypal: { clientSecret: 'FFFF', nested: { deeper: { apiKey: 'GGGG', Password: 'HHHH', wskey: 'IIII', token: 'JJJJ' } } },
    order: 'ORDER-1',
    amount: 125
  }, 'fields')
  logger.child({ user: 'alice' }).warn({ event: 'test.child', detail: { token: 'KKKK' } }, 'child')
  const text = lines.join('')
  for (const secret of ['AAAA', 'BBBB', 'CCCC', 'DDDD', 'EEEE', 'FFFF', 'GGGG', 'HHHH', 'IIII', 'JJJJ', 'KKKK']) t.notOk(text.includes(secret), `${secret} is censored`)
  const first = JSON.parse(lines[0])
  t.equal(first.headers.Authorization, '[REDACTED]')
  t.equal(first.paypal.nested.deeper.Password, '[REDACTED]')
  t.equal(first.order, 'ORDER-1', 'other fields are kept')
  t.equal(first.amount, 125)
  t.equal(JSON.parse(lines[1]).user, 'alice')
})
