// A PayPal capture whose record never arrived (the ledger down when it was made, PayPal's webhook deliveries
// stopped, the patron never reloaded the return): the service remembers each checkout's order id and finds the
// capture itself, by the posting worker's sweep or before the patron starts a new checkout for the same fees, and
// records it by the webhook's rules (once, never more than collected). Over real HTTP with the PayPal and Alma
// stand-ins; time passes by calling the worker's sweep with a `now` in the future.

import t, { type Test } from 'tap'
import { Browser, build, readForm, type TestStack } from './helper.ts'
import type { StackOptions } from '../src/sandbox/stack.ts'
import { ORDER_CREATED_EVENT } from '../src/payments/paypal.ts'

type PayPalStack = TestStack & { pp: NonNullable<TestStack['paypal']> }

async function paypalStack (t: Test, paypal: StackOptions['paypal'] = {}): Promise<PayPalStack> {
  // webhooks off: PayPal's deliveries never reach the service (stopped, or the webhook misconfigured)
  const stack = await build(t, { env: { PAYMENT_PROVIDER: 'paypal' }, paypal: { webhookMode: 'off', ...paypal } })
  if (stack.paypal === null) throw new Error('no PayPal stand-in')
  return { ...stack, pp: stack.paypal }
}

/** The patron ticks fees and is sent to PayPal: the order and the checkout it is for. */
async function startPaying (stack: PayPalStack, browser: Browser, feeIds: string[]): Promise<{ approveUrl: string, orderId: string, checkoutId: string }> {
  const fines = await browser.get('/')
  const pay = readForm(fines.body, 'pay-form')
  const answer = await browser.post('/checkout', [...pay.fields, ...feeIds.map((id): [string, string] => ['fee', id])])
  if (answer.status !== 303) throw new Error(`checkout answered ${answer.status}: ${answer.body.slice(0, 300)}`)
  const approveUrl = String(answer.headers.location)
  const orderId = new URL(approveUrl).searchParams.get('token') ?? ''
  return { approveUrl, orderId, checkoutId: stack.pp.orders.get(orderId)?.customId as string }
}

async function auditEvents (stack: PayPalStack, checkoutId: string): Promise<Array<{ event: string, detail: Record<string, unknown> }>> {
  return ((await stack.app.ledger.history(checkoutId))?.events ?? []).map(e => ({ event: e.event, detail: JSON.parse(e.detail) as Record<string, unknown> }))
}

t.test('the order id of a PayPal checkout is remembered (an audit event) before the patron is sent to approve it', async t => {
  const stack = await paypalStack(t)
  const alice = new Browser(stack).login('alice')
  const { orderId, checkoutId } = await startPaying(stack, alice, ['100001'])
  t.same((await auditEvents(stack, checkoutId)).filter(e => e.event === ORDER_CREATED_EVENT).map(e => e.detail), [{ order: orderId }])
})
