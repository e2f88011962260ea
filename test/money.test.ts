// Money at the edge: decimal strings to integer cents and back, never through floating point.

import t from 'tap'
import { formatDecimal, formatMoney, InvalidAmount, parseCents, sumCents, type Cents } from '../src/money.ts'

t.test('decimal strings become integer cents', async t => {
  t.equal(parseCents('12.5'), 1250)
  t.equal(parseCents('0.01'), 1)
  t.equal(parseCents('45.50'), 4550)
  t.equal(parseCents('7'), 700)
  t.equal(parseCents('12.500'), 1250, 'trailing zeros past the cents are fine')
  t.equal(parseCents(' 3.10 '), 310)
  t.equal(parseCents('-4.00', { allowNegative: true }), -400)
  t.equal(parseCents('0.29') + parseCents('0.01'), 30, 'no floating point drift')
})

t.test('anything else is an InvalidAmount', async t => {
  for (const input of ['', 'abc', '1,000.00', '12.505', '1e3', '-4.00', '0x10', '12.', '.5', 'NaN', '99999999999999']) {
    let error: unknown
    try {
      parseCents(input)
    } catch (caught) {
      error = caught
    }
    t.ok(error instanceof InvalidAmount, `${JSON.stringify(input)} is refused`)
  }
})

t.test('formatting for CashNet and for people', async t => {
  t.equal(formatDecimal(1250 as Cents), '12.50')
  t.equal(formatDecimal(5 as Cents), '0.05')
  t.equal(formatDecimal(-400 as Cents), '-4.00')
  t.equal(sumCents([1 as Cents, 2 as Cents, 3 as Cents]), 6)
  t.equal(formatMoney(123456 as Cents, 'USD'), '$1,234.56')
  t.equal(formatMoney(100 as Cents, 'dollars'), '1.00 dollars', 'an unusable currency code still shows the amount')
})
