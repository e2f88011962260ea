// Reading PayPal webhook events: the ids and amounts the payment rules need, and a refusal with a reason for
// anything malformed (pure functions; the deliveries themselves are specified in paypal-client.test.ts).

import t from 'tap'
import { parseWebhookEvent, readWebhookEvent } from '../src/providers/paypal/webhook.ts'

const CHECKOUT = 'c0ffee0000000000000000000000abcd'

function capture (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'WH-2WR32451HC0233532-67976317FL4543714',
    event_type: 'PAYMENT.CAPTURE.COMPLETED',
    create_time: '2026-03-01T10:00:00Z',
    resource: {
      id: '3C679366HH908993F',
      status: 'COMPLETED',
      amount: { currency_code: 'USD', value: '16.75' },
      custom_id: CHECKOUT,
      invoice_id: CHECKOUT,
      supplementary_data: { related_ids: { order_id: '5O190127TN364715T' } }
    },
    ...overrides
  }
}

function withResource (changes: Record<string, unknown>, base = capture()): Record<string, unknown> {
  return { ...base, resource: { ...(base.resource as object), ...changes } }
}

t.test('a completed capture: capture id, order id, checkout id, amount in cents', async t => {
  t.same(readWebhookEvent(capture()), {
    kind: 'event',
    event: { type: 'PAYMENT.CAPTURE.COMPLETED', eventId: 'WH-2WR32451HC0233532-67976317FL4543714', createTime: '2026-03-01T10:00:00Z', captureId: '3C679366HH908993F', orderId: '5O190127TN364715T', status: 'COMPLETED', statusReason: '', checkoutId: CHECKOUT, amount: 1675, currency: 'USD' }
  })
})

t.test('denied and pending captures keep their status and reason', async t => {
  t.match(readWebhookEvent(withResource({ status: 'DECLINED' }, capture({ event_type: 'PAYMENT.CAPTURE.DENIED' }))), { kind: 'event', event: { type: 'PAYMENT.CAPTURE.DENIED', status: 'DECLINED' } })
  t.match(readWebhookEvent(withResource({ status: 'PENDING', status_details: { reason: 'PENDING_REVIEW' } }, capture({ event_type: 'PAYMENT.CAPTURE.PENDING' }))), { kind: 'event', event: { type: 'PAYMENT.CAPTURE.PENDING', status: 'PENDING', statusReason: 'PENDING_REVIEW' } })
})

t.test('the checkout id comes from custom_id or invoice_id; without either it is null, and the capture id still names it', async t => {
  t.match(readWebhookEvent(withResource({ custom_id: undefined })), { kind: 'event', event: { checkoutId: CHECKOUT } })
  t.match(readWebhookEvent(withResource({ invoice_id: undefined })), { kind: 'event', event: { checkoutId: CHECKOUT } })
  t.match(readWebhookEvent(withResource({ custom_id: undefined, invoice_id: undefined, supplementary_data: undefined })), { kind: 'event', event: { checkoutId: null, orderId: null, captureId: '3C679366HH908993F' } })
})

t.test('an approved order: order id, checkout id, amount', async t => {
  const approved = {
    id: 'WH-1',
    event_type: 'CHECKOUT.ORDER.APPROVED',
    create_time: '2026-03-01T10:00:00Z',
    resource: { id: '5O190127TN364715T', status: 'APPROVED', purchase_units: [{ reference_id: CHECKOUT, custom_id: CHECKOUT, invoice_id: CHECKOUT, amount: { currency_code: 'USD', value: '7.00' } }] }
  }
  t.same(readWebhookEvent(approved), { kind: 'event', event: { type: 'CHECKOUT.ORDER.APPROVED', eventId: 'WH-1', createTime: '2026-03-01T10:00:00Z', orderId: '5O190127TN364715T', checkoutId: CHECKOUT, amount: 700, currency: 'USD' } })
  const twoUnits = { ...approved, resource: { ...approved.resource, purchase_units: [approved.resource.purchase_units[0], approved.resource.purchase_units[0]] } }
  t.match(readWebhookEvent(twoUnits), { kind: 'malformed', reason: /one purchase unit/ })
})

t.test('a refund: the refund, the capture it refunds (its up link), the checkout and the refunded amount', async t => {
  const refund = {
    id: 'WH-9',
    event_type: 'PAYMENT.CAPTURE.REFUNDED',
    resource: {
      id: '1Y107995YT783435V',
      status: 'COMPLETED',
      amount: { currency_code: 'USD', value: '5.00' },
      custom_id: CHECKOUT,
      invoice_id: CHECKOUT,
      links: [{ rel: 'self', href: 'https://api-m.paypal.com/v2/payments/refunds/1Y107995YT783435V' }, { rel: 'up', href: 'https://api-m.paypal.com/v2/payments/captures/3C679366HH908993F' }]
    }
  }
  t.same(readWebhookEvent(refund), { kind: 'event', event: { type: 'PAYMENT.CAPTURE.REFUNDED', eventId: 'WH-9', createTime: null, refundId: '1Y107995YT783435V', captureId: '3C679366HH908993F', orderId: null, checkoutId: CHECKOUT, amount: 500, currency: 'USD' } })
  t.match(readWebhookEvent({ ...refund, resource: { ...refund.resource, links: [refund.resource.links[0]] } }), { kind: 'malformed', reason: /up to its capture/ })
})

t.test('a reversal (chargeback): the reversal, the capture it takes back (its up link), the checkout and the amount taken back', async t => {
  const reversal = {
    id: 'WH-11',
    event_type: 'PAYMENT.CAPTURE.REVERSED',
    resource: {
      id: '09E71677NS257044M',
      status: 'COMPLETED',
      amount: { currency_code: 'USD', value: '5.00' },
      note_to_payer: 'Payment reversed',
      custom_id: CHECKOUT,
      links: [{ rel: 'self', href: 'https://api-m.paypal.com/v2/payments/refunds/09E71677NS257044M' }, { rel: 'up', href: 'https://api-m.paypal.com/v2/payments/captures/3C679366HH908993F' }]
    }
  }
  t.same(readWebhookEvent(reversal), {
    kind: 'event',
    event: { type: 'PAYMENT.CAPTURE.REVERSED', eventId: 'WH-11', createTime: null, reversalId: '09E71677NS257044M', captureId: '3C679366HH908993F', orderId: null, checkoutId: CHECKOUT, amount: 500, currency: 'USD', amountProblem: '' }
  })
  t.match(readWebhookEvent({ ...reversal, resource: { ...reversal.resource, amount: { currency_code: 'USD', value: '-5.00' } } }), { kind: 'event', event: { amount: 500 } }, 'money taken back whatever its sign')
  t.match(readWebhookEvent({ ...reversal, resource: { ...reversal.resource, amount: undefined } }), { kind: 'event', event: { amount: null, currency: null, amountProblem: 'PayPal sent no amount' } }, 'no amount: read, with the amount unknown, not refused')
  t.match(readWebhookEvent({ ...reversal, resource: { ...reversal.resource, amount: { value: 'lots' } } }), { kind: 'event', event: { amount: null, amountProblem: /cannot be read/ } }, 'an unreadable amount: unknown')
  t.match(readWebhookEvent({ ...reversal, resource: { id: '3C679366HH908993F', status: 'REVERSED', amount: { currency_code: 'USD', value: '5.00' }, invoice_id: CHECKOUT } }),
    { kind: 'event', event: { reversalId: null, captureId: '3C679366HH908993F', checkoutId: CHECKOUT, amount: 500 } }, 'a resource without an up link is the capture itself')
  t.match(readWebhookEvent({ ...reversal, resource: { ...reversal.resource, id: '../x' } }), { kind: 'malformed' }, 'ids are still checked')
})

t.test('events the service does not act on are acknowledged and ignored', async t => {
  t.same(readWebhookEvent(capture({ event_type: 'CUSTOMER.DISPUTE.CREATED' })), { kind: 'ignored', eventId: 'WH-2WR32451HC0233532-67976317FL4543714', eventType: 'CUSTOMER.DISPUTE.CREATED' })
})

t.test('anything malformed is refused with a reason', async t => {
  const cases: Array<[string, unknown]> = [
    ['not an object', [1, 2]],
    ['no event id', capture({ id: undefined })],
    ['no event type', capture({ event_type: '' })],
    ['no resource', capture({ resource: 'x' })],
    ['no capture id', withResource({ id: undefined })],
    ['an id with a path in it', withResource({ id: '../orders/X' })],
    ['no status', withResource({ status: undefined })],
    ['no amount', withResource({ amount: undefined })],
    ['three decimals', withResource({ amount: { currency_code: 'USD', value: '16.755' } })],
    ['an exponent', withResource({ amount: { currency_code: 'USD', value: '1e3' } })],
    ['a number, not a string', withResource({ amount: { currency_code: 'USD', value: 16.75 } })],
    ['a negative capture', withResource({ amount: { currency_code: 'USD', value: '-16.75' } })],
    ['no currency', withResource({ amount: { value: '16.75' } })],
    ['a currency without decimals', withResource({ amount: { currency_code: 'JPY', value: '1675' } })],
    ['custom_id and invoice_id differ', withResource({ invoice_id: 'another-checkout' })],
    ['a custom_id that is not a string', withResource({ custom_id: 42 })],
    ['an order id that is not an id', withResource({ supplementary_data: { related_ids: { order_id: 7 } } })]
  ]
  for (const [what, body] of cases) t.equal(readWebhookEvent(body).kind, 'malformed', what)
  t.same(parseWebhookEvent('{"id":'), { kind: 'malformed', reason: 'body is not JSON' })
  t.equal(parseWebhookEvent(Buffer.from(JSON.stringify(capture()))).kind, 'event')
})
