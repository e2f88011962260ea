// npm run migrate (scripts/migrate.ts), run as an operator would: it creates the schema of whichever ledger is
// configured, and `--from FILE.sqlite` copies a single-instance ledger with every kind of row into an empty
// PostgreSQL one: each payment's whole history reads the same from both, ids go on after the highest copied,
// and a non-empty target is refused with nothing written.

import { join } from 'node:path'
import t from 'tap'
import type { Ledger } from '../../src/ledger/ledger.ts'
import { PostgresLedger, SCHEMA_VERSION } from '../../src/ledger/postgres/index.ts'
import { SqliteLedger } from '../../src/ledger/sqlite/index.ts'
import type { IncomingPostback, NewCheckout, NewOutboxMessage, PostbackDecision } from '../../src/ledger/types.ts'
import type { Cents } from '../../src/money.ts'
import { runScript, tempDir } from '../jobs/cli.ts'
import { freshDatabase } from '../support/postgres.ts'

const newCheckout = (id: string, amounts: number[], userId = 'alice'): NewCheckout => ({
  id,
  userId,
  primaryId: `P-${userId}`,
  patronName: `${userId} O'Brien`,
  email: `${userId}@example.edu`,
  currency: 'USD',
  lines: amounts.map((amount, i) => ({ lineNo: i + 1, feeId: `${id}-f${i + 1}`, feeType: 'OVERDUEFINE', feeTypeDesc: 'Overdue fine', owner: 'MAIN', ownerDesc: 'Main', title: `Book ${i + 1}`, itemCode: 'LIB-FINE', amount: amount as Cents }))
})
const incoming = (id: string | null, tx: string, amounts: number[] | null, result = '0'): IncomingPostback => ({
  checkoutId: id, peer: '127.0.0.9', result, tx, rawBody: `result=${result}&tx=${tx}&ref=${id ?? ''}`, ...(amounts === null ? {} : { items: amounts.map(a => ({ itemCode: 'LIB-FINE', amount: a as Cents, qty: 1 })) })
})
const paid = (tx: string): PostbackDecision => ({ outcome: 'PAID', reason: 'paid', to: 'PAID', payment: { tx, batchno: 'B7', effdate: '2026-03-02', pmtcode: 'VISA' } })

const mail = (id: string): NewOutboxMessage => ({ id, from: 'fines@example.edu', to: 'bob@example.edu', subject: `Receipt ${id}`, text: `text ${id}`, html: `<p>${id}</p>` })

/**
 * A ledger with a row of every kind: each state, posted and unposted lines, a part payment's balance, items, orphans, Alma calls, refunds, attention
 * kinds, a settled case, pay links (one revoked), outbox messages sent, failed and waiting, given up, and one still leased.
 */
async function fill (ledger: Ledger, at: (iso: string) => void): Promise<void> {
  at('2026-03-01T09:00:00.000Z')
  await ledger.createCheckout(newCheckout('created', [100]))
  const part = newCheckout('posted', [500, 250], 'bob')
  part.lines[0].balance = 6500 as Cents
  await ledger.createCheckout(part)
  await ledger.recordPostback(incoming('posted', '9001', [500, 250]), () => paid('9001'))
  at('2026-03-01T09:00:01.250Z')
  await ledger.recordAlmaCall({ checkoutId: 'posted', at: '2026-03-01T09:00:01.250Z', method: 'POST', path: '/users/P-bob/fees/posted-f1', status: 200, errorCode: '', errorMessage: '', trackingId: 'T1', durationMs: 87 })
  await ledger.markLinePosted('posted', 1, 500 as Cents, { by: 'worker' })
  await ledger.markLinePosted('posted', 2, 250 as Cents, { by: 'worker' })
  await ledger.transition({ checkoutId: 'posted', from: ['PAID'], to: 'POSTED', event: 'posting.done', messages: c => [mail(`receipt-${c.id}-${c.state}`)] })
  await ledger.createCheckout(newCheckout('paid', [1999]))
  await ledger.recordPostback(incoming('paid', '9002', [1999]), () => paid('9002'))
  await ledger.recordAttempt('paid', new Date('2026-03-01T09:05:00.000Z'), 'Alma 503')
  await ledger.createCheckout(newCheckout('declined', [300]))
  await ledger.recordPostback(incoming('declined', '', null, '1'), () => ({ outcome: 'DECLINED', reason: 'card declined', to: 'DECLINED' }))
  await ledger.createCheckout(newCheckout('cancelled', [300]))
  await ledger.transition({ checkoutId: 'cancelled', from: ['CREATED'], to: 'CANCELLED', event: 'checkout.cancelled' })
  at('2026-03-02T09:00:00.000Z')
  await ledger.expireCreated(new Date('2026-03-01T12:00:00.000Z'))
  await ledger.createCheckout(newCheckout('mismatch', [700]))
  await ledger.recordPostback(incoming('mismatch', '9003', [600]), () => ({ outcome: 'MISMATCH', reason: 'paid amounts differ from the checkout', to: 'NEEDS_ATTENTION', attentionKind: 'MISMATCH', payment: { tx: '9003', batchno: 'B7', effdate: '2026-03-02', pmtcode: 'VISA' } }))
  await ledger.resolveAttention('mismatch', 'staff1', 'refunded by phone', () => null)
  await ledger.createCheckout(newCheckout('double', [400], 'carol'))
  await ledger.recordPostback(incoming('double', '9004', [400]), () => paid('9004'))
  await ledger.recordPostback(incoming('double', '9005', [400]), () => ({ outcome: 'DOUBLE_CHARGE', reason: 'second CashNet transaction 9005', to: 'NEEDS_ATTENTION', attentionKind: 'DOUBLE_CHARGE' }))
  await ledger.recordRefund({ checkoutId: 'double', tx: '9005', amount: 400 as Cents, reference: 'R-1', note: 'the extra charge', by: 'staff1' }, { refuse: () => null, effect: () => 'restore' })
  await ledger.createCheckout(newCheckout('unapplied', [900]))
  await ledger.recordPostback(incoming('unapplied', '9006', [900]), () => paid('9006'))
  await ledger.markLinePosted('unapplied', 1, 600 as Cents, {})
  await ledger.transition({ checkoutId: 'unapplied', from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'posting.unapplied', attentionReason: '3.00 could not be applied in Alma', attentionKind: 'UNAPPLIED', unapplied: 300 as Cents })
  await ledger.recordPostback(incoming(null, '9100', [100]), () => ({ outcome: 'ORPHAN', reason: 'no such checkout' }))
  await ledger.recordPostback(incoming('nope', '', null), () => ({ outcome: 'REJECTED', reason: 'unreadable' }))
  await ledger.audit(null, 'staff.export', { by: 'staff1' })
  await ledger.recordPayLink({ linkId: 'AAAAAAAAAAAAAAAAAAAA_1', patronId: 'alice', primaryId: 'P-alice', issuedBy: 'staff1', issuedAt: new Date('2026-03-02T09:00:00.000Z'), expiresAt: new Date('2026-03-05T09:00:00.000Z') }, { to: 'alice@example.edu' })
  await ledger.recordPayLink({ linkId: 'AAAAAAAAAAAAAAAAAAAAx1', patronId: 'alice', primaryId: 'P-alice', issuedBy: 'staff2', issuedAt: new Date('2026-03-02T09:30:00.000Z'), expiresAt: new Date('2026-03-05T09:30:00.000Z') }, {})
  at('2026-03-02T10:00:00.000Z')
  await ledger.revokePayLink('AAAAAAAAAAAAAAAAAAAA_1', 'staff2')
  await ledger.audit(null, 'paylink.used', { linkId: 'AAAAAAAAAAAAAAAAAAAAx1', peer: '192.0.2.1' })
  await ledger.enqueueMessages(['failed', 'gaveup', 'leased'].map(mail))
  await ledger.claimDueMessages(new Date('2026-03-02T10:00:00.000Z'), 10, new Date('2026-03-02T10:05:00.000Z'))
  await ledger.markMessageSent('receipt-posted-POSTED', new Date('2026-03-02T10:00:02.000Z'))
  await ledger.markMessageFailed('failed', { error: 'ECONNECTION: refused', attempts: 1, nextAttemptAt: new Date('2026-03-02T10:00:30.000Z') })
  await ledger.markMessageFailed('gaveup', { error: 'EENVELOPE 550: no such mailbox', attempts: 1, nextAttemptAt: null })
}

const MESSAGES = ['receipt-posted-POSTED', 'failed', 'gaveup', 'leased']

const LINKS = ['AAAAAAAAAAAAAAAAAAAA_1', 'AAAAAAAAAAAAAAAAAAAAx1']

const IDS = ['created', 'posted', 'paid', 'declined', 'cancelled', 'mismatch', 'double', 'unapplied']

t.test('--from copies an SQLite ledger with every kind of row; both read the same; a second copy is refused', async t => {
  const url = await freshDatabase(t)
  if (url === null) return
  const dir = tempDir(t)
  const path = join(dir, 'payments.sqlite')
  let clock = new Date()
  const sqlite = new SqliteLedger({ path, now: () => clock })
  await fill(sqlite, iso => { clock = new Date(iso) })
  await sqlite.close()

  const run = await runScript('migrate.ts', ['--from', path], { DATABASE_URL: url })
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, `PostgreSQL ledger at schema version ${SCHEMA_VERSION}`)
  t.match(run.stdout, 'checkouts: 8 row(s) copied')
  t.match(run.stdout, 'refunds: 1 row(s) copied')
  t.match(run.stdout, 'pay_links: 2 row(s) copied')
  t.match(run.stdout, 'outbox: 4 row(s) copied')
  t.match(run.stdout, 'counts and totals match the source')

  const source = new SqliteLedger({ path, readOnly: true })
  const target = await PostgresLedger.open({ url, readOnly: true })
  t.teardown(async () => { await source.close(); await target.close() })
  for (const id of IDS) t.same(await target.history(id), await source.history(id), `${id}: the same history, ids, times and amounts`)
  t.same(await target.unmatchedPostbacks(), await source.unmatchedPostbacks(), 'orphans and refused postbacks')
  t.same(await target.countCheckouts(''), await source.countCheckouts(''))
  t.same(await target.listCheckouts({ limit: 100 }), await source.listCheckouts({ limit: 100 }), 'the same order')
  t.same(await target.checkoutPage({}, null, 100), await source.checkoutPage({}, null, 100), 'the CSV pages, cursors too')
  t.same(await target.postedLines(new Date(0), new Date('2030-01-01')), await source.postedLines(new Date(0), new Date('2030-01-01')), 'the GL journal\'s lines')
  const always = [new Date(0), new Date('2030-01-01')] as const
  t.same(await target.refundsRecorded(...always), await source.refundsRecorded(...always), 'the refunds, with their checkouts')
  t.equal((await target.refundsRecorded(...always)).length, 1, 'the refund came along')
  t.same(await target.paidBetween(...always), await source.paidBetween(...always), 'the payments by the time CashNet took them')
  for (const user of ['alice', 'bob', 'carol']) t.same(await target.patronPayments(user, 50), await source.patronPayments(user, 50), `${user}'s payment history`)
  t.same(await target.payLinksFor('P-alice', 10), await source.payLinksFor('P-alice', 10), 'the pay links, revocation too')
  t.equal((await target.payLinksFor('P-alice', 10)).length, 2, 'both pay links came along')
  t.match(await target.getPayLink(LINKS[0]), { revokedBy: 'staff2', revokedAt: '2026-03-02T10:00:00.000Z' })
  for (const link of LINKS) t.same(await target.payLinkEvents(link), await source.payLinkEvents(link), `${link}: its events`)
  t.same((await target.getCheckout('posted'))?.lines.map(l => l.balance), [6500, null], 'the part payment\'s balance came along')
  for (const id of MESSAGES) t.same(await target.outboxMessage(id), await source.outboxMessage(id), `outbox ${id}: the same message and delivery state`)
  t.match(await target.outboxMessage('receipt-posted-POSTED'), { sentAt: '2026-03-02T10:00:02.000Z' })
  t.match(await target.outboxMessage('gaveup'), { gaveUpAt: '2026-03-02T10:00:00.000Z', lastError: 'EENVELOPE 550: no such mailbox' })
  t.match(await target.outboxMessage('leased'), { leaseUntil: '2026-03-02T10:05:00.000Z', sentAt: null })
  const beforeEvents = (await source.history('posted'))!.events
  t.ok(beforeEvents.length > 3, 'the audit trail came along')

  const service = await PostgresLedger.open({ url })
  t.teardown(async () => { await service.close() })
  t.same((await service.claimDueMessages(new Date('2026-03-02T10:00:30.000Z'), 10, new Date('2026-03-02T10:06:00.000Z'))).map(m => [m.id, m.attempts]), [['failed', 1]],
    'PostgreSQL\'s sender goes on with the copied outbox: the failed message when due; the sent and the given-up never, the leased one not before its lease ends')
  await service.createCheckout(newCheckout('after', [100]))
  const next = await service.recordPostback(incoming('after', '9200', [100]), () => paid('9200'))
  const highest = Math.max(...(await source.postbacksWithTx('9100')).map(p => p.id), ...(await Promise.all(IDS.map(async id => (await source.history(id))!.postbacks.map(p => p.id)))).flat())
  t.ok(next.id > highest, `new postback ids go on after the copied ones (${next.id} > ${highest})`)
  const page = await service.checkoutPage({}, null, 1)
  t.equal(page[0].id, 'after', 'a new checkout sorts after the copied ones')

  const again = await runScript('migrate.ts', ['--from', path], { DATABASE_URL: url })
  t.equal(again.code, 2, 'a non-empty target is refused')
  t.match(again.stderr, 'already has rows in checkouts')
  t.equal((await service.listCheckouts({ limit: 0 })).total, 9, 'nothing was copied twice')
})

t.test('npm run migrate creates the configured schema; --from needs DATABASE_URL; a bad DATABASE_URL is named, its password never shown', async t => {
  const url = await freshDatabase(t)
  if (url === null) return
  const created = await runScript('migrate.ts', [], { DATABASE_URL: url })
  t.equal(created.code, 0, created.stderr)
  const ledger = await PostgresLedger.open({ url, readOnly: true })
  t.teardown(async () => { await ledger.close() })
  t.equal((await ledger.listCheckouts({})).total, 0, 'an empty ledger a job can read')

  const dir = tempDir(t)
  const sqlite = await runScript('migrate.ts', [], { DATABASE_PATH: join(dir, 'new.sqlite') })
  t.equal(sqlite.code, 0, sqlite.stderr)
  t.match(sqlite.stdout, 'new SQLite ledger at schema version')
  const noTarget = await runScript('migrate.ts', ['--from', join(dir, 'new.sqlite')], { DATABASE_PATH: join(dir, 'new.sqlite') })
  t.equal(noTarget.code, 2)
  t.match(noTarget.stderr, 'set DATABASE_URL')
  const bad = await runScript('migrate.ts', [], { DATABASE_URL: 'mysql://root:hunter2@db/payments' })
  t.equal(bad.code, 2)
  t.match(bad.stderr, 'DATABASE_URL')
  t.notMatch(bad.stderr, 'hunter2')
  const down = await runScript('migrate.ts', [], { DATABASE_URL: 'postgres://payments:hunter2@127.0.0.1:1/payments' })
  t.equal(down.code, 2)
  t.match(down.stderr, 'cannot be reached')
  t.notMatch(down.stderr, 'hunter2')
})
