// The e-mail outbox sender against a real SMTP server on an ephemeral port and an in-memory store that keeps the
// interface's promises: while the mail server is down nothing is lost and retries back off; once it is up each
// message is delivered once; a crash between sending and marking sends the same Message-ID again, nothing else.

import t, { type Test } from 'tap'
import pino from 'pino'
import { Writable } from 'node:stream'
import { cents } from '../src/money.ts'
import { createOutboxSender, type NewOutboxMessage, type OutboxMessage, outboxMessageId, type OutboxSenderOptions, type OutboxStore } from '../src/payments/outbox.ts'
import { type ReceiptBranding, receiptMessages, type ReceiptPayment } from '../src/payments/receipts.ts'
import { until } from './helper.ts'
import { mailServer } from './support/mail-server.ts'

interface Row extends OutboxMessage { nextAttemptAt: Date, leaseUntil: Date | null, sentAt: Date | null, gaveUp: boolean, lastError: string | null }

/** The store as the ledger must keep it, in memory. */
class MemoryOutbox implements OutboxStore {
  readonly rows = new Map<string, Row>()

  enqueue (messages: NewOutboxMessage[], now: Date): void {
    for (const m of messages) {
      if (!this.rows.has(m.id)) this.rows.set(m.id, { ...m, attempts: 0, nextAttemptAt: now, leaseUntil: null, sentAt: null, gaveUp: false, lastError: null })
    }
  }

  claimDue (now: Date, limit: number, leaseUntil: Date): OutboxMessage[] {
    const due = [...this.rows.values()]
      .filter(r => r.sentAt === null && !r.gaveUp && r.nextAttemptAt <= now && (r.leaseUntil === null || r.leaseUntil <= now))
      .slice(0, limit)
    for (const r of due) r.leaseUntil = leaseUntil
    return due.map(({ id, from, to, subject, text, html, attempts }) => ({ id, from, to, subject, text, html, attempts }))
  }

  markSent (id: string, at: Date): void {
    const r = this.rows.get(id) as Row
    r.sentAt = at
    r.leaseUntil = null
  }

  markFailed (id: string, failure: { error: string, attempts: number, nextAttemptAt: Date | null }): void {
    const r = this.rows.get(id) as Row
    r.attempts = failure.attempts
    r.lastError = failure.error
    r.leaseUntil = null
    if (failure.nextAttemptAt === null) r.gaveUp = true
    else r.nextAttemptAt = failure.nextAttemptAt
  }
}

function logCapture (): { logger: pino.Logger, lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } })
  return { logger: pino({ level: 'debug' }, stream), lines }
}

function message (id: string, to = `${id}@example.edu`): NewOutboxMessage {
  return { id, from: 'fines@library.example.edu', to, subject: `Receipt ${id}`, text: `plain ${id}`, html: `<p>html ${id}</p>` }
}

function sender (t: Test, store: OutboxStore, smtpPort: number, clock: { now: Date }, options: Partial<OutboxSenderOptions> = {}): ReturnType<typeof createOutboxSender> & { lines: Array<Record<string, any>> } {
  const { logger, lines } = logCapture()
  const s = createOutboxSender({
    store, logger, smtpUrl: `smtp://127.0.0.1:${smtpPort}`, messageIdDomain: 'fines.library.example.edu', smtpTimeoutMs: 2000, now: () => clock.now, ...options
  })
  t.teardown(async () => { await s.stop() })
  return Object.assign(s, { lines })
}

const later = (clock: { now: Date }, ms: number): void => { clock.now = new Date(clock.now.getTime() + ms) }

t.test('the Message-ID is derived from the row id alone: stable, readable, unique', async t => {
  const a = outboxMessageId('receipt-0f75-recorded-patron', 'fines.library.example.edu')
  t.match(a, /^<receipt-0f75-recorded-patron\.[0-9a-f]{12}@fines\.library\.example\.edu>$/)
  t.equal(outboxMessageId('receipt-0f75-recorded-patron', 'fines.library.example.edu'), a, 'the same every time')
  t.not(outboxMessageId('a b', 'x.edu'), outboxMessageId('a.b', 'x.edu'), 'ids that read alike still differ')
  t.match(outboxMessageId('<>@\r\n', 'bad host>'), /^<outbox\.[0-9a-f]{12}@badhost>$/, 'nothing from the id can break the header')
})

t.test('SMTP up: each message delivered once, with its Message-ID, text and HTML; nothing left due', async t => {
  const smtp = await mailServer(t)
  await smtp.start()
  const store = new MemoryOutbox()
  const clock = { now: new Date('2026-03-02T15:00:00Z') }
  store.enqueue([message('m1'), message('m2'), message('m3')], clock.now)
  const s = sender(t, store, smtp.port, clock)
  t.same(await s.runOnce(), { sent: 3, retrying: 0, gaveUp: 0 })
  t.same(await s.runOnce(), { sent: 0, retrying: 0, gaveUp: 0 }, 'a second pass finds nothing')
  t.same(smtp.mails.map(m => m.to), [['m1@example.edu'], ['m2@example.edu'], ['m3@example.edu']])
  t.same(smtp.mails.map(m => m.messageId), ['m1', 'm2', 'm3'].map(id => outboxMessageId(id, 'fines.library.example.edu')))
  t.match(smtp.mails[0].readable, 'plain m1')
  t.match(smtp.mails[0].readable, '<p>html m1</p>')
  t.match(smtp.mails[0].readable, /^Auto-Submitted: auto-generated/m, 'marked automatic, so auto-replies stay away')
  t.ok([...store.rows.values()].every(r => r.sentAt !== null && r.attempts === 0))
  t.same(s.lines.filter(l => l.event === 'outbox.sent').map(l => l.outbox), ['m1', 'm2', 'm3'])
})

t.test('SMTP down for a minute and more, then up: retries back off, then each message is delivered exactly once', async t => {
  const smtp = await mailServer(t)
  const store = new MemoryOutbox()
  const clock = { now: new Date('2026-03-02T15:00:00Z') }
  store.enqueue([message('m1'), message('m2'), message('m3')], clock.now)
  const s = sender(t, store, smtp.port, clock, { retryBaseMs: 30_000 })

  t.same(await s.runOnce(), { sent: 0, retrying: 3, gaveUp: 0 }, 'the server is down')
  const row = (id: string): Row => store.rows.get(id) as Row
  t.equal(row('m1').attempts, 1)
  t.same([row('m2').attempts, row('m3').attempts], [0, 0], 'the rest of the batch was not knocked on the closed door, and not counted')
  t.equal(row('m1').nextAttemptAt.toISOString(), '2026-03-02T15:00:30.000Z', 'first retry after 30 s')
  t.equal(row('m3').nextAttemptAt.toISOString(), '2026-03-02T15:00:30.000Z', 'the others wait as long')
  t.match(row('m1').lastError, /ECONNECTION|ESOCKET|ECONNREFUSED/)

  later(clock, 10_000)
  t.same(await s.runOnce(), { sent: 0, retrying: 0, gaveUp: 0 }, 'not before it is due')
  later(clock, 20_000)
  t.same(await s.runOnce(), { sent: 0, retrying: 3, gaveUp: 0 })
  t.equal(row('m1').attempts, 2)
  t.equal(row('m1').nextAttemptAt.toISOString(), '2026-03-02T15:01:30.000Z', 'then after 60 s')
  later(clock, 60_000)
  await s.runOnce()
  t.equal(row('m1').nextAttemptAt.toISOString(), '2026-03-02T15:03:30.000Z', 'then after 120 s')
  t.equal(smtp.mails.length, 0)
  const retries = s.lines.filter(l => l.event === 'outbox.retry')
  t.ok(retries.length >= 3 && retries.every(l => l.level === 40), 'each failed attempt is a warn line')
  t.match(retries[0].msg, 'check SMTP_URL')

  await smtp.start()
  later(clock, 120_000)
  t.same(await s.runOnce(), { sent: 3, retrying: 0, gaveUp: 0 }, 'the server is back')
  later(clock, 3600_000)
  t.same(await s.runOnce(), { sent: 0, retrying: 0, gaveUp: 0 })
  t.same(smtp.mails.map(m => m.to[0]).sort(), ['m1@example.edu', 'm2@example.edu', 'm3@example.edu'], 'each delivered once')
})

t.test('the running loop rides out an outage on its own and delivers each message once', async t => {
  const smtp = await mailServer(t)
  const store = new MemoryOutbox()
  const clock = { now: new Date() }
  const s = sender(t, store, smtp.port, clock, { now: () => new Date(), pollMs: 50, retryBaseMs: 100, retryMaxMs: 200 })
  store.enqueue([message('m1'), message('m2')], new Date())
  s.start()
  await until(() => (store.rows.get('m1')?.attempts ?? 0) >= 2, 'two failed attempts')
  await smtp.start()
  await until(() => smtp.mails.length === 2, 'both messages')
  store.enqueue([message('m3')], new Date())
  s.wake()
  await until(() => smtp.mails.length === 3, 'the third, woken rather than polled')
  await new Promise(resolve => setTimeout(resolve, 400))
  await s.stop()
  t.same(smtp.mails.map(m => m.to[0]).sort(), ['m1@example.edu', 'm2@example.edu', 'm3@example.edu'], 'each once')
})

t.test('a crash between sending and marking sent: after the lease the same message goes again, same Message-ID, once more only', async t => {
  const smtp = await mailServer(t)
  await smtp.start()
  const store = new MemoryOutbox()
  const clock = { now: new Date('2026-03-02T15:00:00Z') }
  store.enqueue([message('m1')], clock.now)
  // the process dies as it is about to record the delivery
  const dying: OutboxStore = { claimDue: store.claimDue.bind(store), markFailed: store.markFailed.bind(store), markSent: () => { throw new Error('SIGKILL') } }
  const before = sender(t, dying, smtp.port, clock, { leaseMs: 5 * 60_000 })
  await t.rejects(before.runOnce(), /SIGKILL/)
  t.equal(smtp.mails.length, 1, 'the server had taken it')

  const restarted = sender(t, store, smtp.port, clock, { leaseMs: 5 * 60_000 })
  later(clock, 60_000)
  t.same(await restarted.runOnce(), { sent: 0, retrying: 0, gaveUp: 0 }, 'the lease still holds it')
  later(clock, 5 * 60_000)
  t.same(await restarted.runOnce(), { sent: 1, retrying: 0, gaveUp: 0 }, 'the lease ran out: sent again')
  later(clock, 3600_000)
  t.same(await restarted.runOnce(), { sent: 0, retrying: 0, gaveUp: 0 }, 'and never a third time')
  t.equal(smtp.mails.length, 2)
  t.equal(smtp.mails[0].messageId, smtp.mails[1].messageId, 'the duplicate carries the same Message-ID')
})

t.test('two senders on one store never send the same message twice', async t => {
  const smtp = await mailServer(t)
  await smtp.start()
  const store = new MemoryOutbox()
  const clock = { now: new Date('2026-03-02T15:00:00Z') }
  store.enqueue(Array.from({ length: 6 }, (_, i) => message(`m${i}`)), clock.now)
  const a = sender(t, store, smtp.port, clock, { batchSize: 4 })
  const b = sender(t, store, smtp.port, clock, { batchSize: 4 })
  const [ra, rb] = await Promise.all([a.runOnce(), b.runOnce()])
  t.equal(ra.sent + rb.sent, 6)
  t.equal(new Set(smtp.mails.map(m => m.to[0])).size, 6)
  t.equal(smtp.mails.length, 6)
})

t.test('a slow mail server: a batch sends only while its claim outlasts a send; the rest go once, after the claim lapses', async t => {
  const smtp = await mailServer(t)
  await smtp.start()
  const store = new MemoryOutbox()
  const clock = { now: new Date('2026-03-02T15:00:00Z') }
  store.enqueue([message('m1'), message('m2'), message('m3')], clock.now)
  // each message takes the mail server 3 s (the clock moves on as it is marked sent); the claim is 10 s and a
  // send may take 3 x 2 s of SMTP timeouts, so nothing may start later than 4 s into the batch
  const slow: OutboxStore = {
    claimDue: (now, limit, leaseUntil) => store.claimDue(now, limit, leaseUntil),
    markSent: (id, at) => { store.markSent(id, at); later(clock, 3000) },
    markFailed: (id, failure) => { store.markFailed(id, failure) }
  }
  const a = sender(t, slow, smtp.port, clock, { leaseMs: 10_000 })
  const b = sender(t, store, smtp.port, clock, { leaseMs: 10_000 })
  t.same(await a.runOnce(), { sent: 2, retrying: 0, gaveUp: 0 }, 'two sent at 0 s and 3 s; the third would start at 6 s')
  t.match(a.lines.find(l => l.event === 'outbox.deferred'), { messages: 1 }, 'one line says one was left for the next pass')
  t.same(await b.runOnce(), { sent: 0, retrying: 0, gaveUp: 0 }, 'another process finds it still claimed')
  later(clock, 4000)
  t.same(await b.runOnce(), { sent: 1, retrying: 0, gaveUp: 0 }, 'once the claim lapsed, the next pass sends it')
  t.same(smtp.mails.map(m => m.to[0]), ['m1@example.edu', 'm2@example.edu', 'm3@example.edu'], 'each once')
})

t.test('a recipient the server refuses for good is given up at once; the others go', async t => {
  const smtp = await mailServer(t, { refuse: ['gone@example.edu'] })
  await smtp.start()
  const store = new MemoryOutbox()
  const clock = { now: new Date('2026-03-02T15:00:00Z') }
  store.enqueue([message('m1', 'gone@example.edu'), message('m2')], clock.now)
  const s = sender(t, store, smtp.port, clock)
  t.same(await s.runOnce(), { sent: 1, retrying: 0, gaveUp: 1 })
  const gone = store.rows.get('m1') as Row
  t.ok(gone.gaveUp)
  t.equal(gone.attempts, 1)
  t.match(gone.lastError, '550')
  const line = s.lines.find(l => l.event === 'outbox.gave_up')
  t.equal(line?.level, 50)
  t.notMatch(JSON.stringify(s.lines), 'gone@example.edu', 'the log names the row, not the patron\'s address')
  later(clock, 86400_000)
  t.same(await s.runOnce(), { sent: 0, retrying: 0, gaveUp: 0 }, 'not tried again')
})

t.test('after maxAttempts a message is given up, kept in the store for staff', async t => {
  const smtp = await mailServer(t)
  const store = new MemoryOutbox()
  const clock = { now: new Date('2026-03-02T15:00:00Z') }
  store.enqueue([message('m1')], clock.now)
  const s = sender(t, store, smtp.port, clock, { maxAttempts: 3, retryBaseMs: 1000 })
  t.same(await s.runOnce(), { sent: 0, retrying: 1, gaveUp: 0 })
  later(clock, 1000)
  t.same(await s.runOnce(), { sent: 0, retrying: 1, gaveUp: 0 })
  later(clock, 2000)
  t.same(await s.runOnce(), { sent: 0, retrying: 0, gaveUp: 1 })
  t.ok(store.rows.get('m1')?.gaveUp)
  t.equal(store.rows.get('m1')?.attempts, 3)
})

t.test('a receipt and the library copy, end to end through the outbox', async t => {
  const smtp = await mailServer(t)
  await smtp.start()
  const store = new MemoryOutbox()
  const clock = { now: new Date('2026-03-02T15:00:00Z') }
  const branding: ReceiptBranding = { libraryName: 'Hillside University Library', accentColor: '#7a0019', logoUrl: '', publicUrl: 'https://fines.library.example.edu', timeZone: 'America/New_York' }
  const payment: ReceiptPayment = {
    reference: 'c0ffee00c0ffee00c0ffee00c0ffee00',
    outcome: 'recorded',
    patronName: 'Dana Quinn',
    patronId: 'dquinn',
    primaryId: '2900012345',
    paidAt: clock.now,
    currency: 'USD',
    providerTransaction: '810001',
    lines: [{ description: 'Lost item replacement', title: 'Gödel, Escher, Bach', amount: cents(1000), balanceBefore: cents(6500) }]
  }
  const s = sender(t, store, smtp.port, clock)

  store.enqueue(receiptMessages(payment, branding, { patronEmail: 'dana@example.edu', libraryCopyTo: '', from: 'fines@library.example.edu' }), clock.now)
  await s.runOnce()
  t.same(smtp.mails.map(m => m.to), [['dana@example.edu']], 'without LIBRARY_RECEIPT_COPY_TO only the patron')

  const withCopy = receiptMessages({ ...payment, reference: 'c0ffee00c0ffee00c0ffee00c0ffee01' }, branding, { patronEmail: 'dana@example.edu', libraryCopyTo: 'circ@library.example.edu', from: 'fines@library.example.edu' })
  store.enqueue(withCopy, clock.now)
  store.enqueue(withCopy, clock.now) // a retried transaction enqueues the same rows again
  await s.runOnce()
  t.same(smtp.mails.slice(1).map(m => m.to), [['dana@example.edu'], ['circ@library.example.edu']], 'with it, the library copy too, each once')
  const [receipt, copy] = smtp.mails.slice(1)
  t.match(receipt.subject, 'Hillside University Library: receipt for your payment of $10.00')
  t.match(receipt.readable, 'paid $10.00 of $65.00, $55.00 left')
  t.match(receipt.readable, 'March 2, 2026 at 10:00 AM EST')
  t.match(receipt.readable, /Content-Type: text\/plain/)
  t.match(receipt.readable, /Content-Type: text\/html/)
  t.match(copy.subject, 'copy of receipt: Dana Quinn $10.00')
  t.match(copy.readable, 'https://fines.library.example.edu/admin/payments/c0ffee00c0ffee00c0ffee00c0ffee01')
  t.not(receipt.messageId, copy.messageId)
})
