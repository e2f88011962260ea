// The read side in PostgreSQL for staff and jobs: the admin list, counts and CSV pages, a checkout's history,
// unmatched postbacks, and what reconciliation and the GL journal read. The same answers as the SQLite queries
// (src/ledger/sqlite/queries.ts); `seq` plays SQLite's rowid as the tie-breaker. No writes here.

import type { PageCursor } from '../ledger.ts'
import type { Checkout, CheckoutFilter, CheckoutHistory, CheckoutState, CheckoutSummary, MoneyRecord, PostbackRecord, RecordedRefund } from '../types.ts'
import { CHECKOUT_STATES, UNMATCHED_OUTCOMES } from '../types.ts'
import { toAlmaCall, toEvent, toPostback, toRefund, toSummary } from '../sqlite/rows.ts'
import type { Pool } from './pool.ts'
import { getCheckout, moneyRecord, refunds, reports } from './store.ts'

const UNMATCHED_IN = `(${UNMATCHED_OUTCOMES.map(o => `'${o}'`).join(', ')})`

export class PostgresQueries {
  readonly #pool: Pool

  constructor (pool: Pool) {
    this.#pool = pool
  }

  /** The WHERE clause and parameters of a list filter (states, unresolved, search); placeholders numbered from 1. */
  #where (filter: CheckoutFilter): { where: string[], params: unknown[] } {
    const where: string[] = []
    const params: unknown[] = []
    const p = (value: unknown): string => { params.push(value); return `$${params.length}` }
    if (filter.states !== undefined && filter.states.length > 0) where.push(`state = ANY(${p(filter.states)}::text[])`)
    if (filter.unresolved === true) where.push('resolved_at IS NULL')
    const search = filter.search?.trim() ?? ''
    if (search !== '') {
      const s = p(search)
      // ILIKE: SQLite's LIKE ignores ASCII case, and the list must find the same patrons on both
      const like = p('%' + search.replace(/[\\%_]/g, c => '\\' + c) + '%')
      where.push(`(id = ${s} OR tx = ${s} OR user_id = ${s} OR primary_id = ${s} OR patron_name ILIKE ${like} ESCAPE '\\' OR id IN (SELECT checkout_id FROM postbacks WHERE tx = ${s}))`)
    }
    return { where, params }
  }

  async #checkouts (ids: Array<{ id: string }>): Promise<Checkout[]> {
    return await Promise.all(ids.map(async r => await getCheckout(this.#pool, r.id) as Checkout))
  }

  async listCheckouts (filter: CheckoutFilter): Promise<{ checkouts: Checkout[], total: number }> {
    const { where, params } = this.#where(filter)
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    const total = (await this.#pool.query(`SELECT COUNT(*) AS n FROM checkouts ${clause}`, params))[0].n as number
    if (filter.limit === 0) return { checkouts: [], total }
    const n = params.length
    const rows = await this.#pool.query(`SELECT id FROM checkouts ${clause} ORDER BY created_at DESC, seq DESC LIMIT $${n + 1} OFFSET $${n + 2}`,
      [...params, filter.limit ?? 50, filter.offset ?? 0])
    return { checkouts: await this.#checkouts(rows as Array<{ id: string }>), total }
  }

  async countCheckouts (search: string): Promise<{ byState: Record<CheckoutState, number>, openAttention: number }> {
    const { where, params } = this.#where({ search })
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    const rows = await this.#pool.query(`SELECT state, COUNT(*) AS n, COUNT(*) FILTER (WHERE state = 'NEEDS_ATTENTION' AND resolved_at IS NULL) AS open
        FROM checkouts ${clause} GROUP BY state`, params)
    const byState = Object.fromEntries(CHECKOUT_STATES.map(state => [state, 0])) as Record<CheckoutState, number>
    let openAttention = 0
    for (const row of rows) {
      if (row.state in byState) byState[row.state as CheckoutState] = row.n
      openAttention += row.open ?? 0
    }
    return { byState, openAttention }
  }

  /** Keyset paging on (created_at, seq). */
  async checkoutPage (filter: CheckoutFilter, after: PageCursor | null, limit: number): Promise<Array<CheckoutSummary & { cursor: PageCursor }>> {
    const { where, params } = this.#where(filter)
    if (after !== null) {
      params.push(after.createdAt, after.seq)
      where.push(`(created_at, seq) < ($${params.length - 1}::timestamptz, $${params.length})`)
    }
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    params.push(limit)
    return (await this.#pool.query(`SELECT * FROM checkouts ${clause} ORDER BY created_at DESC, seq DESC LIMIT $${params.length}`, params))
      .map(r => ({ ...toSummary(r), cursor: { createdAt: r.created_at as string, seq: r.seq as number } }))
  }

  async history (checkoutId: string): Promise<CheckoutHistory | undefined> {
    const checkout = await getCheckout(this.#pool, checkoutId)
    if (checkout === undefined) return undefined
    const [postbacks, almaCalls, events] = await Promise.all([
      this.#pool.query('SELECT * FROM postbacks WHERE checkout_id = $1 ORDER BY id', [checkoutId]),
      this.#pool.query('SELECT * FROM alma_calls WHERE checkout_id = $1 ORDER BY id', [checkoutId]),
      this.#pool.query('SELECT * FROM audit_events WHERE checkout_id = $1 ORDER BY id', [checkoutId])
    ])
    return {
      checkout,
      postbacks: postbacks.map(toPostback),
      almaCalls: almaCalls.map(toAlmaCall),
      events: events.map(toEvent),
      reports: await reports(this.#pool, checkoutId),
      refunds: await refunds(this.#pool, checkoutId)
    }
  }

  async unmatchedPostbacks (since?: Date, limit?: number): Promise<PostbackRecord[]> {
    // a negative limit, as SQLite takes it, means no limit (LIMIT NULL)
    return (await this.#pool.query(`SELECT * FROM postbacks WHERE outcome IN ${UNMATCHED_IN} AND received_at >= $1 ORDER BY id DESC LIMIT $2`,
      [(since ?? new Date(0)).toISOString(), limit === undefined || limit < 0 ? null : limit])).map(toPostback)
  }

  async countUnmatchedPostbacks (): Promise<number> {
    return (await this.#pool.query(`SELECT COUNT(*) AS n FROM postbacks WHERE outcome IN ${UNMATCHED_IN}`))[0].n as number
  }

  async checkoutsTouchedSince (since: Date): Promise<Checkout[]> {
    const rows = await this.#pool.query(`SELECT id FROM checkouts WHERE paid_at >= $1 OR updated_at >= $1
        OR id IN (SELECT checkout_id FROM postbacks WHERE received_at >= $1 AND checkout_id IS NOT NULL) ORDER BY created_at, seq`, [since.toISOString()])
    return await this.#checkouts(rows as Array<{ id: string }>)
  }

  async openAttention (): Promise<Checkout[]> {
    const rows = await this.#pool.query("SELECT id FROM checkouts WHERE state = 'NEEDS_ATTENTION' AND resolved_at IS NULL ORDER BY created_at, seq")
    return await this.#checkouts(rows as Array<{ id: string }>)
  }

  async postbacksWithTx (tx: string): Promise<PostbackRecord[]> {
    return (await this.#pool.query('SELECT * FROM postbacks WHERE tx = $1 ORDER BY id', [tx])).map(toPostback)
  }

  async postedLines (from: Date, to: Date): Promise<Array<{ checkout: Checkout, lineNo: number }>> {
    const rows = await this.#pool.query(`SELECT checkout_id, line_no FROM checkout_lines WHERE posted_at >= $1 AND posted_at < $2 AND posted_cents > 0
        ORDER BY posted_at, checkout_id COLLATE "C", line_no`, [from.toISOString(), to.toISOString()])
    const cache = new Map<string, Checkout>()
    const result: Array<{ checkout: Checkout, lineNo: number }> = []
    for (const r of rows) {
      let checkout = cache.get(r.checkout_id)
      if (checkout === undefined) {
        checkout = await getCheckout(this.#pool, r.checkout_id) as Checkout
        cache.set(r.checkout_id, checkout)
      }
      result.push({ checkout, lineNo: r.line_no })
    }
    return result
  }

  /** Refunds recorded within [from, to), oldest first, each with its checkout's money record. */
  async refundsRecorded (from: Date, to: Date): Promise<RecordedRefund[]> {
    const rows = await this.#pool.query('SELECT * FROM refunds WHERE at >= $1 AND at < $2 ORDER BY at, id', [from.toISOString(), to.toISOString()])
    const cache = new Map<string, MoneyRecord>()
    const result: RecordedRefund[] = []
    for (const r of rows) {
      const refund = toRefund(r)
      let record = cache.get(refund.checkoutId)
      if (record === undefined) {
        record = await moneyRecord(this.#pool, refund.checkoutId) as MoneyRecord
        cache.set(refund.checkoutId, record)
      }
      result.push({ ...record, refund })
    }
    return result
  }

  /** Checkouts CashNet reported paid within [from, to), whatever their state now, oldest first. */
  async paidBetween (from: Date, to: Date): Promise<Checkout[]> {
    const rows = await this.#pool.query('SELECT id FROM checkouts WHERE paid_at >= $1 AND paid_at < $2 ORDER BY paid_at, seq', [from.toISOString(), to.toISOString()])
    return await this.#checkouts(rows as Array<{ id: string }>)
  }
}
