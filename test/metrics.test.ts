// Issue 19: GET /metrics in Prometheus text format, only for METRICS_ALLOW; after a scripted run (a payment
// posted, one Alma refuses, one waiting on Alma, postbacks refused) the counters and gauges say what happened.
// And docs/monitoring.md's alert rules and docs/grafana-dashboard.json use only names /metrics exposes.

import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { Browser, build, CASHNET_PEER, checkoutIdFrom, send, type TestStack, UNTRUSTED_PEER, until } from './helper.ts'

const PROMETHEUS = '127.0.0.5'
const ROOT = resolve(import.meta.dirname, '..')

/** The samples of a Prometheus text exposition: `name{labels}` → value. */
function samples (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    out.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return out
}

async function scrape (stack: TestStack): Promise<Map<string, number>> {
  const answer = await send(`${stack.serviceUrl}/metrics`, { from: PROMETHEUS })
  if (answer.status !== 200) throw new Error(`/metrics answered ${answer.status}`)
  return samples(answer.body)
}

async function state (stack: TestStack, id: string): Promise<string | undefined> {
  return (await stack.app.ledger.getCheckout(id))?.state
}

t.test('/metrics is refused to every peer not in METRICS_ALLOW, and to everyone when it is empty', async t => {
  const closed = await build(t)
  for (const from of [PROMETHEUS, UNTRUSTED_PEER, '127.0.0.1']) {
    const answer = await send(`${closed.serviceUrl}/metrics`, { from })
    t.equal(answer.status, 403, `nobody by default (${from})`)
    t.notMatch(answer.body, 'almacashnet_')
  }
  t.ok(closed.logLines().some(l => l.event === 'access.metrics_refused' && l.peer === PROMETHEUS), 'one log line says why')

  const open = await build(t, { env: { METRICS_ALLOW: `${PROMETHEUS}/32` } })
  const refused = await send(`${open.serviceUrl}/metrics`, { from: UNTRUSTED_PEER })
  t.equal(refused.status, 403, 'another peer is refused')
  const throughEzproxy = await new Browser(open).login('staff').get('/metrics')
  t.equal(throughEzproxy.status, 403, 'even staff through EZproxy: metrics are for the monitoring server')
  const allowed = await send(`${open.serviceUrl}/metrics`, { from: PROMETHEUS })
  t.equal(allowed.status, 200)
  t.match(allowed.headers['content-type'], /^text\/plain; version=0\.0\.4/, 'Prometheus text format')
  t.match(allowed.headers['cache-control'], 'no-store')
  t.match(allowed.body, '# TYPE almacashnet_checkouts gauge')
})

t.test('after a scripted run the counters and gauges read what happened', async t => {
  const stack = await build(t, { env: { METRICS_ALLOW: PROMETHEUS } })
  const before = await scrape(stack)
  t.equal(before.get('almacashnet_postbacks_total{outcome="PAID"}'), 0, 'every outcome is a series from the start')
  t.equal(before.get('almacashnet_checkouts{state="POSTED"}'), 0)
  t.equal(before.get('almacashnet_oldest_unposted_paid_seconds'), 0, 'nothing waiting')

  // 1. alice pays; it is posted
  const alice = new Browser(stack).login('alice')
  const paid = await alice.checkout()
  const aliceId = checkoutIdFrom(paid.fields)
  await alice.payOnCashnet(paid.action, paid.fields)
  await until(async () => await state(stack, aliceId) === 'POSTED', 'alice posted')

  // 2. carol pays; Alma refuses with a business error: the payment needs attention
  const carol = new Browser(stack).login('carol')
  const refusedPay = await carol.checkout()
  const carolId = checkoutIdFrom(refusedPay.fields)
  stack.alma.faults.failStatus = 400
  stack.alma.faults.failNext = 1000
  await carol.payOnCashnet(refusedPay.action, refusedPay.fields)
  await until(async () => await state(stack, carolId) === 'NEEDS_ATTENTION', 'carol needs attention')

  // 3. zoe pays while Alma is down: paid, not posted
  stack.alma.faults.failNext = 0
  const zoe = new Browser(stack).login('zoe')
  const waiting = await zoe.checkout()
  const zoeId = checkoutIdFrom(waiting.fields)
  stack.alma.faults.failStatus = 503
  stack.alma.faults.failNext = 1000
  await zoe.payOnCashnet(waiting.action, waiting.fields)
  await until(async () => ((await stack.app.ledger.getCheckout(zoeId))?.attempts ?? 0) >= 1, 'zoe\'s first attempt failed')
  t.equal(await state(stack, zoeId), 'PAID')

  // 4. postbacks refused: one from a peer not in CASHNET_POSTBACK_ALLOW, one unreadable from CashNet's
  const forbidden = await send(`${stack.serviceUrl}/cashnet/postback`, { method: 'POST', body: 'result=0&tx=1', from: UNTRUSTED_PEER })
  t.equal(forbidden.status, 403)
  const unreadable = await send(`${stack.serviceUrl}/cashnet/postback`, { method: 'POST', body: 'result=banana', from: CASHNET_PEER })
  t.equal(unreadable.status, 400)

  await new Promise(resolve => setTimeout(resolve, 1100))
  const after = await scrape(stack)
  t.equal(after.get('almacashnet_postbacks_total{outcome="PAID"}'), 3, 'three payments reported by CashNet')
  t.equal(after.get('almacashnet_postbacks_total{outcome="FORBIDDEN"}'), 1, 'the postback from a stranger')
  t.equal(after.get('almacashnet_postbacks_total{outcome="REJECTED"}'), 1, 'the unreadable postback')
  t.equal(after.get('almacashnet_postback_ack_seconds_count'), 3, 'each readable postback timed')
  t.equal(after.get('almacashnet_checkouts{state="POSTED"}'), 1)
  t.equal(after.get('almacashnet_checkouts{state="NEEDS_ATTENTION"}'), 1)
  t.equal(after.get('almacashnet_checkouts{state="PAID"}'), 1)
  t.equal(after.get('almacashnet_attention_open'), 1)
  t.equal(after.get('almacashnet_unmatched_postbacks'), 1, 'the unreadable postback is kept for staff')
  t.ok((after.get('almacashnet_oldest_unposted_paid_seconds') ?? 0) >= 1, `zoe's payment has waited (${after.get('almacashnet_oldest_unposted_paid_seconds')}s)`)
  t.equal(after.get('almacashnet_postings_total{outcome="POSTED"}'), 1)
  t.equal(after.get('almacashnet_postings_total{outcome="NEEDS_ATTENTION"}'), 1)
  t.ok((after.get('almacashnet_postings_total{outcome="RETRY"}') ?? 0) >= 1, 'zoe\'s posting will be retried')
  t.equal(after.get('almacashnet_posting_seconds_count{outcome="POSTED"}'), 1, 'postings timed')
  const recordedCalls = [aliceId, carolId, zoeId]
  const calls = { ok: 0, client_error: 0, server_error: 0 }
  for (const id of recordedCalls) {
    for (const call of (await stack.app.ledger.history(id))?.almaCalls ?? []) {
      if (call.status >= 500) calls.server_error++
      else if (call.status >= 400) calls.client_error++
      else if (call.status >= 200) calls.ok++
    }
  }
  t.ok(calls.client_error >= 1 && calls.server_error >= 1 && calls.ok >= 1, 'the run made every kind of call')
  t.ok((after.get('almacashnet_alma_calls_total{outcome="client_error"}') ?? 0) >= calls.client_error, 'Alma refusals counted (posting calls, and more)')
  t.ok((after.get('almacashnet_alma_calls_total{outcome="server_error"}') ?? 0) >= calls.server_error, 'Alma failures counted')
  t.ok((after.get('almacashnet_alma_calls_total{outcome="ok"}') ?? 0) > calls.ok, 'fines pages read Alma too')
  t.equal(after.get('almacashnet_http_requests_total{route="/cashnet/postback",method="POST",status="403"}'), 1, 'requests by route and status')
  t.ok((after.get('almacashnet_http_requests_total{route="/",method="GET",status="200"}') ?? 0) >= 3, 'the fines page, by route pattern')
  t.ok(after.has('almacashnet_alma_rate_limit_wait_seconds_total'), 'the time spent waiting for the Alma rate limit')
  t.ok(after.has('almacashnet_receipts_total{outcome="sent"}'))
})

t.test('every metric name in the alert rules and the Grafana dashboard exists in /metrics', async t => {
  const stack = await build(t, { env: { METRICS_ALLOW: PROMETHEUS } })
  const text = (await send(`${stack.serviceUrl}/metrics`, { from: PROMETHEUS })).body
  const families = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(m => [m[1], m[2]]))
  // a family is exposed by its # TYPE line (a labelled histogram has no samples before its first observation)
  const exposed = new Set([...families.keys(), ...[...families].filter(([, type]) => type === 'histogram').flatMap(([name]) => ['_bucket', '_sum', '_count'].map(s => name + s))])
  const docs = readFileSync(join(ROOT, 'docs/monitoring.md'), 'utf8') + readFileSync(join(ROOT, 'docs/grafana-dashboard.json'), 'utf8')
  JSON.parse(readFileSync(join(ROOT, 'docs/grafana-dashboard.json'), 'utf8'))
  const used = new Set([...docs.matchAll(/\balmacashnet_[a-z_]+/g)].map(m => m[0]))
  t.ok(used.size >= 8, `the documents use ${used.size} metric names`)
  for (const name of used) t.ok(exposed.has(name), `${name} is exposed`)
  for (const name of ['almacashnet_checkouts', 'almacashnet_oldest_unposted_paid_seconds', 'almacashnet_postbacks_total', 'almacashnet_alma_calls_total', 'almacashnet_receipts_total',
    'almacashnet_posting_seconds', 'almacashnet_postback_ack_seconds']) {
    t.ok(exposed.has(name), `SPEC name ${name} is exposed`)
  }
  t.equal(families.get('almacashnet_posting_seconds'), 'histogram')
  t.equal(families.get('almacashnet_postback_ack_seconds'), 'histogram')
  t.equal(families.get('almacashnet_checkouts'), 'gauge')
  t.equal(families.get('almacashnet_alma_calls_total'), 'counter')
  t.match(readFileSync(join(ROOT, 'docs/monitoring.md'), 'utf8'), /alert: AlmaCashnetPaidNotPosted/)
})
