// Migration 3 (issue 13) on a ledger written by the previous version: the kind of attention is read from the
// recorded reason (UNKNOWN, which allows no posting, when it cannot be), what CashNet reported is read from the
// kept raw postback bodies, and an open double charge remembers the state it came from.

import t from 'tap'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MIGRATIONS, SqliteLedger } from '../src/ledger/sqlite/index.ts'
import { verdicts } from '../src/payments/staff-actions.ts'

t.test('rows from before kinds existed get a kind, their CashNet amounts, and only safe actions', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'alma-cashnet-migrate-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'old.sqlite')
  const db = new Database(path)
  for (const m of MIGRATIONS.slice(0, 2)) db.exec(m as string)
  db.pragma('user_version = 2')
  const checkout = db.prepare(`INSERT INTO checkouts (id, user_id, primary_id, patron_name, email, state, total_cents, currency, created_at, updated_at, tx, attention_reason)
    VALUES (?, 'u', 'u', 'U', '', ?, 750, 'USD', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', ?, ?)`)
  const line = db.prepare(`INSERT INTO checkout_lines (checkout_id, line_no, fee_id, fee_type, fee_type_desc, owner, owner_desc, title, item_code, amount_cents, posted_cents, posted_at)
    VALUES (?, 1, 'f1', 'T', 'T', 'M', 'M', '', 'LIB-FINE', 750, ?, ?)`)
  const postback = db.prepare('INSERT INTO postbacks (checkout_id, received_at, peer, result, tx, outcome, reason, raw_body) VALUES (?, \'2026-01-01T00:00:00Z\', \'p\', \'0\', ?, ?, \'\', ?)')
  const cases: Array<[string, string, string | null, string]> = [
    ['mismatch', 'NEEDS_ATTENTION', '11', 'paid amounts differ from the checkout: item 1 amount 0.03 differs from 7.50'],
    ['double', 'NEEDS_ATTENTION', '21', 'second CashNet transaction 22 for checkout already paid by 21: refund one of them'],
    ['unapplied', 'NEEDS_ATTENTION', '31', '7.50 could not be applied in Alma (refund or credit it): fee f1 closed'],
    ['alma', 'NEEDS_ATTENTION', '41', 'Alma refused: 60101 General Error'],
    ['gaveup', 'NEEDS_ATTENTION', '51', 'gave up after 10 attempts; last error: 503'],
    ['odd', 'NEEDS_ATTENTION', '61', 'something nobody wrote down'],
    ['posted', 'POSTED', '71', 'an earlier reason']
  ]
  for (const [id, state, tx, reason] of cases) {
    checkout.run(id, state, tx, reason)
    line.run(id, state === 'POSTED' || id === 'double' ? 750 : null, state === 'POSTED' || id === 'double' ? '2026-01-01T00:00:00Z' : null)
  }
  postback.run('mismatch', '11', 'MISMATCH', 'result=0&tx=11&itemcnt=1&itemcode1=LIB-FINE&amount1=0.03&ref1type1=ALMACHECKOUT&ref1val1=mismatch')
  postback.run('double', '21', 'PAID', 'result=0&tx=21&itemcnt=1&amount1=7.50')
  postback.run('double', '22', 'DOUBLE_CHARGE', 'result=0&tx=22&itemcnt=1&amount1=7.50')
  postback.run('alma', '41', 'PAID', 'result=0&tx=41&itemcnt=1&amount1=7.5x')
  db.prepare("INSERT INTO audit_events (checkout_id, at, event, from_state, to_state, detail) VALUES ('double', '2026-01-01T00:00:00Z', 'postback.double_charge', 'POSTED', 'NEEDS_ATTENTION', '{}')").run()
  db.close()

  const ledger = new SqliteLedger({ path })
  t.teardown(async () => { await ledger.close() })
  const kinds = Object.fromEntries(await Promise.all(cases.map(async ([id]) => [id, (await ledger.getCheckout(id))?.attentionKind])))
  t.same(kinds, { mismatch: 'MISMATCH', double: 'DOUBLE_CHARGE', unapplied: 'UNAPPLIED', alma: 'ALMA_ERROR', gaveup: 'ATTEMPTS_EXHAUSTED', odd: 'UNKNOWN', posted: null })

  const mismatch = await ledger.moneyRecord('mismatch')
  t.same(mismatch?.reports.map(r => ({ tx: r.tx, total: r.total, items: r.items.map(i => i.amount) })), [{ tx: '11', total: 3, items: [3] }], 'amounts read from the raw body')
  t.equal((await ledger.moneyRecord('alma'))?.reports.length, 0, 'an unreadable amount is not taken as confirmed')
  const odd = verdicts(await ledger.moneyRecord('odd') as never)
  t.notOk(odd.retry.allowed, 'UNKNOWN: no retry')
  t.notOk(odd['post-confirmed'].allowed, 'UNKNOWN: no posting')
  t.ok(odd.settle.allowed, 'UNKNOWN: can be settled')
  t.notOk(verdicts(await ledger.moneyRecord('mismatch') as never).retry.allowed, 'a migrated mismatch is not retried')

  const refund = await ledger.recordRefund({ checkoutId: 'double', tx: '22', amount: 750 as never, reference: 'R', note: 'n', by: 'staff' }, { refuse: () => null, effect: () => 'restore' })
  t.equal(refund.recorded && refund.checkout.state, 'POSTED', 'the migrated double charge goes back to the state its audit event recorded')
})

t.test('the provider migration (issue 17): checkouts recorded before providers existed are CashNet\'s; new ones say theirs', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'alma-cashnet-migrate-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'old.sqlite')
  const db = new Database(path)
  // the ledger as it was just before the migration that added the provider column
  const before = MIGRATIONS.findIndex(m => typeof m === 'string' && m.includes('ADD COLUMN provider'))
  t.ok(before > 0, 'the provider migration is found')
  for (const m of MIGRATIONS.slice(0, before)) {
    if (typeof m === 'string') db.exec(m)
    else m(db)
  }
  db.pragma(`user_version = ${before}`)
  t.notOk((db.prepare('PRAGMA table_info(checkouts)').all() as Array<{ name: string }>).some(c => c.name === 'provider'), 'the old schema has no provider')
  db.prepare(`INSERT INTO checkouts (id, user_id, primary_id, patron_name, email, state, total_cents, currency, created_at, updated_at, tx)
    VALUES ('old', 'u', 'u', 'U', '', 'POSTED', 750, 'USD', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '7001')`).run()
  db.close()

  const ledger = new SqliteLedger({ path })
  t.teardown(async () => { await ledger.close() })
  t.equal((await ledger.getCheckout('old'))?.provider, 'cashnet', 'an existing row is CashNet\'s')
  const created = await ledger.createCheckout({ id: 'new', userId: 'u', primaryId: 'u', patronName: 'U', email: '', provider: 'paypal', currency: 'USD', lines: [{ lineNo: 1, feeId: 'f', feeType: 'T', feeTypeDesc: 'T', owner: 'M', ownerDesc: 'M', title: '', itemCode: 'LIB-FINE', amount: 500 as never }] })
  t.equal(created.provider, 'paypal')
})

t.test('the refund reference migration: repeats recorded before it are kept as booked; from then on a reference is recorded once', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'alma-cashnet-migrate-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'old.sqlite')
  const db = new Database(path)
  const before = MIGRATIONS.findIndex(m => typeof m === 'string' && m.includes('refunds_reference'))
  t.ok(before > 0, 'the migration is found')
  for (const m of MIGRATIONS.slice(0, before)) {
    if (typeof m === 'string') db.exec(m)
    else m(db)
  }
  db.pragma(`user_version = ${before}`)
  db.prepare(`INSERT INTO checkouts (id, user_id, primary_id, patron_name, email, state, total_cents, currency, created_at, updated_at, tx, attention_kind)
    VALUES ('c1', 'u', 'u', 'U', '', 'NEEDS_ATTENTION', 6275, 'USD', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '7001', 'UNAPPLIED')`).run()
  const refund = db.prepare('INSERT INTO refunds (checkout_id, tx, amount_cents, reference, note, by, at) VALUES (\'c1\', \'7001\', ?, ?, \'n\', \'staff\', \'2026-01-02T00:00:00Z\')')
  refund.run(3000, 'RF-1')
  refund.run(3000, 'RF-1')
  refund.run(275, 'RF-2')
  db.close()

  const ledger = new SqliteLedger({ path })
  t.teardown(async () => { await ledger.close() })
  t.same((await ledger.moneyRecord('c1'))?.refunds.map(r => [r.reference, r.amount]), [['RF-1', 3000], ['RF-1', 3000], ['RF-2', 275]], 'the ledger opens with every refund it had')
  const again = await ledger.recordRefund({ checkoutId: 'c1', tx: '7001', amount: 3000 as never, reference: 'RF-1', note: 'n', by: 'staff' }, { refuse: () => null, effect: () => 'none' })
  t.match(again, { recorded: false, reason: /RF-1 is already recorded/ }, 'a reference recorded before is not recorded again')
  t.ok((await ledger.recordRefund({ checkoutId: 'c1', tx: '7001', amount: 100 as never, reference: 'RF-3', note: 'n', by: 'staff' }, { refuse: () => null, effect: () => 'none' })).recorded, 'a new one is')
})

t.test('the review migration: a checkout already waiting on a PayPal review is marked from its audit event; one decided since is not', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'alma-cashnet-migrate-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'old.sqlite')
  const db = new Database(path)
  const before = MIGRATIONS.findIndex(m => typeof m === 'string' && m.includes('review_tx'))
  t.ok(before > 0, 'the migration is found')
  for (const m of MIGRATIONS.slice(0, before)) {
    if (typeof m === 'string') db.exec(m)
    else m(db)
  }
  db.pragma(`user_version = ${before}`)
  const checkout = db.prepare(`INSERT INTO checkouts (id, user_id, primary_id, patron_name, email, provider, state, total_cents, currency, created_at, updated_at)
    VALUES (?, 'u', 'P-u', 'U', '', 'paypal', ?, 500, 'USD', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`)
  const line = db.prepare(`INSERT INTO checkout_lines (checkout_id, line_no, fee_id, fee_type, fee_type_desc, owner, owner_desc, title, item_code, amount_cents)
    VALUES (?, 1, ?, 'OVERDUEFINE', 'Overdue fine', 'MAIN', 'Main', 't', 'LIB-FINE', 500)`)
  const pending = db.prepare('INSERT INTO audit_events (checkout_id, at, event, detail) VALUES (?, \'2026-01-01T00:01:00Z\', \'paypal.capture_pending\', ?)')
  for (const [id, state] of [['waiting', 'CREATED'], ['expired', 'EXPIRED'], ['denied', 'DECLINED'], ['plain', 'CREATED']]) {
    checkout.run(id, state)
    line.run(id, `fee-${id}`)
    if (id !== 'plain') pending.run(id, JSON.stringify({ tx: `CAP-${id}`, amount: 500, currency: 'USD', reason: 'PENDING_REVIEW' }))
  }
  db.close()

  const ledger = new SqliteLedger({ path })
  t.teardown(async () => { await ledger.close() })
  t.same(await Promise.all(['waiting', 'expired', 'denied', 'plain'].map(async id => (await ledger.getCheckout(id))?.reviewTx)), ['CAP-waiting', 'CAP-expired', null, null])
  t.same((await ledger.paymentsInProgress('u', 'P-u')).map(c => c.id), ['waiting', 'expired'], 'those still waiting are payments in progress')
  t.same(await ledger.expireCreated(new Date('2026-02-01T00:00:00Z')), ['plain'], 'and do not expire')
})

t.test('the payer-kind migration: a checkout made in a pay-link session before kinds were kept is recognised as paid by primary id', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'alma-cashnet-migrate-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'old.sqlite')
  const db = new Database(path)
  const before = MIGRATIONS.findIndex(m => typeof m === 'string' && m.includes('user_id_kind'))
  t.ok(before > 0, 'the migration is found')
  for (const m of MIGRATIONS.slice(0, before)) {
    if (typeof m === 'string') db.exec(m)
    else m(db)
  }
  db.pragma(`user_version = ${before}`)
  const link = db.prepare('INSERT INTO pay_links (link_id, patron_id, primary_id, issued_by, issued_at, expires_at, revoked_at) VALUES (?, ?, ?, \'staff\', ?, ?, ?)')
  link.run('L1', 'alice', 'alice', '2026-01-01T00:00:00.000Z', '2026-01-04T00:00:00.000Z', null)
  link.run('L2', 'dora', 'dora', '2026-01-01T00:00:00.000Z', '2026-01-04T00:00:00.000Z', '2026-01-02T00:00:00.000Z')
  const checkout = db.prepare(`INSERT INTO checkouts (id, user_id, primary_id, patron_name, email, state, total_cents, currency, created_at, updated_at)
    VALUES (?, ?, ?, 'P', '', 'POSTED', 500, 'USD', ?, ?)`)
  const cases: Array<[id: string, userId: string, primaryId: string, createdAt: string, kind: string, why: string]> = [
    ['by-link', 'alice', 'alice', '2026-01-02T10:00:00.000Z', 'primary-id', 'made while alice\'s link was usable, under her primary id'],
    ['zed', 'alice', 'zed', '2026-01-02T11:00:00.000Z', 'username', 'username "alice" whose primary id is zed: EZproxy'],
    ['before-link', 'alice', 'alice', '2025-12-31T10:00:00.000Z', 'username', 'before any link'],
    ['after-expiry', 'alice', 'alice', '2026-01-05T10:00:00.000Z', 'username', 'after the link expired'],
    ['dora-by-link', 'dora', 'dora', '2026-01-01T10:00:00.000Z', 'primary-id', 'before dora\'s link was revoked'],
    ['dora-after-revoke', 'dora', 'dora', '2026-01-03T10:00:00.000Z', 'username', 'after it was revoked'],
    ['carol', 'carol', 'carol', '2026-01-02T10:00:00.000Z', 'username', 'no link for carol']
  ]
  for (const [id, userId, primaryId, createdAt] of cases) checkout.run(id, userId, primaryId, createdAt, createdAt)
  db.close()

  const ledger = new SqliteLedger({ path })
  t.teardown(async () => { await ledger.close() })
  for (const [id, , , , kind, why] of cases) t.equal((await ledger.getCheckout(id))?.userIdKind, kind, `${id}: ${why}`)
  t.same((await ledger.patronPayments('alice', 50)).map(c => c.id), ['after-expiry', 'zed', 'before-link'], 'EZproxy\'s "alice" keeps only the username\'s')
  t.same((await ledger.patronPayments('alice', 50, 'primary-id')).map(c => c.id), ['by-link'], 'alice\'s pay link sees hers')
})
