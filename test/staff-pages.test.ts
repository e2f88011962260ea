// Issue 19, readable for staff: times in the library's zone (TIMEZONE) with the zone shown, amounts as money,
// audit events in words with the raw event one click away (<details>), and a link to the patron in Alma's staff
// interface only when ALMA_UI_URL is set.

import t from 'tap'
import { Browser, build, checkoutIdFrom, until } from './helper.ts'

t.test('a payment page in the library\'s zone, events in words, the patron one click from Alma', async t => {
  const stack = await build(t, { env: { TIMEZONE: 'America/Los_Angeles', ALMA_UI_URL: 'https://myinst.alma.exlibrisgroup.com/' } })
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout()
  const id = checkoutIdFrom(fields)
  await alice.payOnCashnet(action, fields)
  await until(async () => (await stack.app.ledger.getCheckout(id))?.state === 'POSTED', 'posted')
  const checkout = await stack.app.ledger.getCheckout(id)
  const staff = new Browser(stack).login('staff')
  const page = await staff.get(`/admin/payments/${id}`)
  t.equal(page.status, 200)
  t.match(page.body, /<time datetime="[^"]+" title="America\/Los_Angeles">\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} P[SD]T<\/time>/, 'times in Los Angeles, the zone shown')
  t.notMatch(page.body, / UTC<\/time>/, 'not in UTC')
  const line = checkout?.lines[0]
  t.match(page.body, `payment recorded in Alma: ${((line?.postedAmount ?? 0) / 100).toFixed(2)} for ${line?.feeTypeDesc ?? ''}`, 'an event in words')
  t.match(page.body, /<details><summary>Raw event<\/summary><code>line\.posted<\/code>/, 'the raw event one click away')
  t.match(page.body, 'every fee recorded in Alma: payment complete')
  t.match(page.body, /<dt>Total<\/dt><dd>\$\d+\.\d{2}<\/dd>/, 'amounts as money')
  t.match(page.body, `href="https://myinst.alma.exlibrisgroup.com/ng/search?searchType=USERS&amp;query=${encodeURIComponent(checkout?.primaryId ?? '')}"`, 'the patron in Alma')
  const list = await staff.get('/admin')
  t.match(list.body, /title="America\/Los_Angeles">\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} P[SD]T</, 'the list too')
  t.match(list.body, 'href="admin/reports"', 'the reports are one click from the list')
})

t.test('no ALMA_UI_URL: no link to Alma', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const { fields } = await alice.checkout()
  const page = await new Browser(stack).login('staff').get(`/admin/payments/${checkoutIdFrom(fields)}`)
  t.equal(page.status, 200)
  t.notMatch(page.body, 'Open the patron in Alma')
  t.match(page.body, 'checkout started: ')
})
