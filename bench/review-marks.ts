// Measures what a held PayPal review costs the fines page (Ledger.paymentsInProgress) and the posting worker's
// sweep (markReviewsFromAudit, expireCreated) on a ledger of realistic size: mostly abandoned (EXPIRED) and POSTED
// checkouts, three audit events each, a few PayPal reviews, some written by an instance from before migration 12
// (the audit event only). Usage: node --import tsx bench/review-marks.ts [checkouts] [postgres url]

import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Ledger } from '../src/ledger/ledger.ts'
import { PostgresLedger } from '../src/ledger/postgres/index.ts'
import { SqliteLedger } from '../src/ledger/sqlite/index.ts'

const N = Number(process.argv[2] ?? 200_000)
const url = process.argv[3]
const REVIEWS_EVERY = 500 // one checkout in 500 was held for review; a quarter of those by an old instance

function rows (): { checkouts: unknown[][], lines: unknown[][], events: unknown[][] } {
  const checkouts: unknown[][] = []
  const lines: unknown[][] = []
  const events: unknown[][] = []
  for (let i = 0; i < N; i++) {
    const id = `c${i}`
    const user = `u${i % 20_000}`
    const at = new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString()
    const reviewed = i % REVIEWS_EVERY === 0
    const oldInstance = reviewed && i % (REVIEWS_EVERY * 4) === 0
    const state = reviewed ? 'CREATED' : i % 3 === 0 ? 'POSTED' : 'EXPIRED'
    checkouts.push([id, user, `P-${user}`, state, at, reviewed && !oldInstance ? `CAP-${i}` : null])
    lines.push([id, `f${i}`, state === 'POSTED' ? at : null])
    events.push([id, at, 'checkout.created', '{}'], [id, at, state === 'POSTED' ? 'posting.done' : 'checkout.expired', '{}'])
    if (reviewed) events.push([id, at, 'paypal.capture_pending', JSON.stringify({ tx: `CAP-${i}`, amount: 500 })])
  }
  return { checkouts, lines, events }
}

async function fillSqlite (path: string): Promise<void> {
  await (new SqliteLedger({ path })).close()
  const db = new Database(path)
  const { checkouts, lines, events } = rows()
  const c = db.prepare(`INSERT INTO checkouts (id, user_id, primary_id, patron_name, email, state, total_cents, currency, created_at, updated_at, review_tx, provider)
    VALUES (?, ?, ?, 'P', '', ?, 500, 'USD', ?, ?, ?, 'paypal')`)
  const l = db.prepare(`INSERT INTO checkout_lines (checkout_id, line_no, fee_id, fee_type, fee_type_desc, owner, owner_desc, title, item_code, amount_cents, posted_at)
    VALUES (?, 1, ?, 'F', 'F', 'MAIN', 'Main', 't', 'X', 500, ?)`)
  const e = db.prepare('INSERT INTO audit_events (checkout_id, at, event, detail) VALUES (?, ?, ?, ?)')
  db.transaction(() => {
    for (const r of checkouts) c.run(r[0], r[1], r[2], r[3], r[4], r[4], r[5])
    for (const r of lines) l.run(...r)
    for (const r of events) e.run(...r)
  })()
  db.close()
}

async function fillPostgres (ledger: PostgresLedger): Promise<void> {
  const { checkouts, lines, events } = rows()
  const chunk = 5000
  for (let i = 0; i < checkouts.length; i += chunk) {
    const part = checkouts.slice(i, i + chunk)
    await ledger.pool.query(`INSERT INTO checkouts (id, user_id, primary_id, patron_name, email, state, total_cents, currency, created_at, updated_at, review_tx, provider)
      SELECT id, u, p, 'P', '', s, 500, 'USD', a::timestamptz, a::timestamptz, r, 'paypal' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS t(id, u, p, s, a, r)`,
    [0, 1, 2, 3, 4, 5].map(k => part.map(r => r[k])))
    const ls = lines.slice(i, i + chunk)
    await ledger.pool.query(`INSERT INTO checkout_lines (checkout_id, line_no, fee_id, fee_type, fee_type_desc, owner, owner_desc, title, item_code, amount_cents, posted_at)
      SELECT c, 1, f, 'F', 'F', 'MAIN', 'Main', 't', 'X', 500, p::timestamptz FROM unnest($1::text[], $2::text[], $3::text[]) AS t(c, f, p)`, [0, 1, 2].map(k => ls.map(r => r[k])))
  }
  for (let i = 0; i < events.length; i += chunk * 2) {
    const part = events.slice(i, i + chunk * 2)
    await ledger.pool.query(`INSERT INTO audit_events (checkout_id, at, event, detail)
      SELECT c, a::timestamptz, e, d FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(c, a, e, d)`, [0, 1, 2, 3].map(k => part.map(r => r[k])))
  }
  await ledger.pool.query('ANALYZE')
}

async function time (label: string, times: number, work: () => Promise<unknown>): Promise<void> {
  await work()
  const started = performance.now()
  for (let i = 0; i < times; i++) await work()
  const ms = (performance.now() - started) / times
  console.log(`${label.padEnd(58)} ${ms.toFixed(3)} ms`)
}

async function measure (name: string, ledger: Ledger): Promise<void> {
  console.log(`${name}, ${N} checkouts, ${Math.ceil(N / REVIEWS_EVERY)} reviews`)
  // u0 has the first review (c0, by an old instance); u7 none
  await time('paymentsInProgress, patron with an old-instance review', 200, async () => await ledger.paymentsInProgress('u0', 'P-u0'))
  await time('paymentsInProgress, patron with none', 200, async () => await ledger.paymentsInProgress('u7', 'P-u7'))
  const held = (await ledger.paymentsInProgress('u0', 'P-u0')).map(c => `${c.id}:${c.reviewTx ?? '-'}`)
  console.log(`  u0 in progress: ${held.join(' ')}`)
  if ('markReviewsFromAudit' in ledger) {
    const started = performance.now()
    const marked = await (ledger as any).markReviewsFromAudit() as string[]
    console.log(`${'markReviewsFromAudit, first sweep'.padEnd(58)} ${(performance.now() - started).toFixed(3)} ms (${marked.length} marked)`)
    await time('markReviewsFromAudit, nothing left to mark', 20, async () => await (ledger as any).markReviewsFromAudit())
  }
  await time('expireCreated, nothing to expire', 20, async () => await ledger.expireCreated(new Date('2024-01-01T00:00:00Z')))
}

const dir = mkdtempSync(join(tmpdir(), 'review-bench-'))
try {
  const path = join(dir, 'ledger.sqlite')
  await fillSqlite(path)
  const sqlite = new SqliteLedger({ path })
  await measure('SQLite', sqlite)
  await sqlite.close()
  if (url !== undefined) {
    const pg = await PostgresLedger.open({ url, poolSize: 2 })
    await pg.pool.query('TRUNCATE checkouts, checkout_lines, audit_events CASCADE')
    await fillPostgres(pg)
    await measure('PostgreSQL', pg)
    await pg.pool.query('TRUNCATE checkouts, checkout_lines, audit_events CASCADE')
    await pg.close()
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
