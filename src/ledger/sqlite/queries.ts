// The read side for staff and jobs: the admin list, counts and CSV pages, a checkout's full history, unmatched
// postbacks, and what reconciliation and the GL journal read. No writes here.

import type { PageCursor } from '../ledger.ts'
import type { Checkout, CheckoutFilter, CheckoutHistory, CheckoutState, CheckoutSummary, MoneyRecord, PostbackRecord, RecordedRefund } from '../types.ts'
import { CHECKOUT_STATES, UNMATCHED_OUTCOMES } from '../types.ts'
import type { Connection } from './connection.ts'
import { type Row, toAlmaCall, toEvent, toPostback, toRefund, toSummary } from './rows.ts'
import type { CheckoutStore } from './store.ts'

const UNMATCHED_IN = `(${UNMATCHED_OUTCOMES.map(o => `'${o}'`).join(', ')})`

export class LedgerQueries {
  readonly #c: Connection
  readonly #store: CheckoutStore

  constructor (connection: Connection, store: CheckoutStore) {
    this.#c = connection
    this.#store = store
  }

  /** The WHERE clause and parameters of a list filter (states, unresolved, search). */
  #where (filter: CheckoutFilter): { where: string[], params: unknown[] } {
    const where: string[] = []
    const params: unknown[] = []
    if (filter.states !== undefined && filter.states.length > 0) {
      where.push(`state IN (${filter.states.map(() => '?').join(', ')})`)
      params.push(...filter.states)
    }
    if (filter.unresolved === true) where.push('resolved_at IS NULL')
    const search = filter.search?.trim() ?? ''
    if (search !== '') {
      where.push('(id = ? OR tx = ? OR user_id = ? OR primary_id = ? OR patron_name LIKE ? ESCAPE \'\\\' OR id IN (SELECT checkout_id FROM postbacks WHERE tx = ?))')
      const like = '%' + search.replace(/[\\%_]/g, c => '\\' + c) + '%'
      params.push(search, search, search, search, like, search)
    }
    return { where, params }
  }

  listCheckouts (filter: CheckoutFilter): { checkouts: Checkout[], total: number } {
    const { where, params } = this.#where(filter)
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    const total = (this.#c.sql(`SELECT COUNT(*) AS n FROM checkouts ${clause}`).get(...params) as Row).n as number
    if (filter.limit === 0) return { checkouts: [], total }
    const rows = this.#c.sql(`SELECT id FROM checkouts ${clause} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`)
      .all(...params, filter.limit ?? 50, filter.offset ?? 0) as Row[]
    return { checkouts: rows.map(r => this.#store.getCheckout(r.id) as Checkout), total }
  }

  countCheckouts (search: string): { byState: Record<CheckoutState, number>, openAttention: number } {
    const { where, params } = this.#where({ search })
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    const rows = this.#c.sql(`SELECT state, COUNT(*) AS n, SUM(CASE WHEN state = 'NEEDS_ATTENTION' AND resolved_at IS NULL THEN 1 ELSE 0 END) AS open
        FROM checkouts ${clause} GROUP BY state`).all(...params) as Row[]
    const byState = Object.fromEntries(CHECKOUT_STATES.map(state => [state, 0])) as Record<CheckoutState, number>
    let openAttention = 0
    for (const row of rows) {
      if (row.state in byState) byState[row.state as CheckoutState] = row.n
      openAttention += row.open ?? 0
    }
    return { byState, openAttention }
  }

  /** Keyset paging on (created_at, rowid): the cursor's seq is the SQLite rowid. */
  checkoutPage (filter: CheckoutFilter, after: PageCursor | null, limit: number): Array<CheckoutSummary & { cursor: PageCursor }> {
    const { where, params } = this.#where(filter)
    if (after !== null) {
      where.push('(created_at, rowid) < (?, ?)')
      params.push(after.createdAt, after.seq)
    }
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    return (this.#c.sql(`SELECT rowid AS row_id, * FROM checkouts ${clause} ORDER BY created_at DESC, rowid DESC LIMIT ?`).all(...params, limit) as Row[])
      .map(r => ({ ...toSummary(r), cursor: { createdAt: r.created_at as string, seq: r.row_id as number } }))
  }

  history (checkoutId: string): CheckoutHistory | undefined {
    const checkout = this.#store.getCheckout(checkoutId)
    if (checkout === undefined) return undefined
    return {
      checkout,
      postbacks: (this.#c.sql('SELECT * FROM postbacks WHERE checkout_id = ? ORDER BY id').all(checkoutId) as Row[]).map(toPostback),
      almaCalls: (this.#c.sql('SELECT * FROM alma_calls WHERE checkout_id = ? ORDER BY id').all(checkoutId) as Row[]).map(toAlmaCall),
      events: (this.#c.sql('SELECT * FROM audit_events WHERE checkout_id = ? ORDER BY id').all(checkoutId) as Row[]).map(toEvent),
      reports: this.#store.reports(checkoutId),
      refunds: this.#store.refunds(checkoutId)
    }
  }

  unmatchedPostbacks (since?: Date, limit = -1): PostbackRecord[] {
    return (this.#c.sql(`SELECT * FROM postbacks WHERE outcome IN ${UNMATCHED_IN} AND received_at >= ? ORDER BY id DESC LIMIT ?`)
      .all((since ?? new Date(0)).toISOString(), limit) as Row[]).map(toPostback)
  }

  countUnmatchedPostbacks (): number {
    return (this.#c.sql(`SELECT COUNT(*) AS n FROM postbacks WHERE outcome IN ${UNMATCHED_IN}`).get() as Row).n as number
  }

  checkoutsTouchedSince (since: Date): Checkout[] {
    const at = since.toISOString()
    return (this.#c.sql(`SELECT id FROM checkouts WHERE paid_at >= ? OR updated_at >= ?
        OR id IN (SELECT checkout_id FROM postbacks WHERE received_at >= ? AND checkout_id IS NOT NULL) ORDER BY created_at, rowid`)
      .all(at, at, at) as Row[]).map(r => this.#store.getCheckout(r.id) as Checkout)
  }

  openAttention (): Checkout[] {
    return (this.#c.sql("SELECT id FROM checkouts WHERE state = 'NEEDS_ATTENTION' AND resolved_at IS NULL ORDER BY created_at, rowid")
      .all() as Row[]).map(r => this.#store.getCheckout(r.id) as Checkout)
  }

  postbacksWithTx (tx: string): PostbackRecord[] {
    return (this.#c.sql('SELECT * FROM postbacks WHERE tx = ? ORDER BY id').all(tx) as Row[]).map(toPostback)
  }

  postedLines (from: Date, to: Date): Array<{ checkout: Checkout, lineNo: number }> {
    const rows = this.#c.sql('SELECT checkout_id, line_no FROM checkout_lines WHERE posted_at >= ? AND posted_at < ? AND posted_cents > 0 ORDER BY posted_at, checkout_id, line_no')
      .all(from.toISOString(), to.toISOString()) as Row[]
    const cache = new Map<string, Checkout>()
    return rows.map(r => {
      let checkout = cache.get(r.checkout_id)
      if (checkout === undefined) {
        checkout = this.#store.getCheckout(r.checkout_id) as Checkout
        cache.set(r.checkout_id, checkout)
      }
      return { checkout, lineNo: r.line_no }
    })
  }

  refundsRecorded (from: Date, to: Date): RecordedRefund[] {
    const rows = this.#c.sql('SELECT * FROM refunds WHERE at >= ? AND at < ? ORDER BY at, id').all(from.toISOString(), to.toISOString()) as Row[]
    const cache = new Map<string, MoneyRecord>()
    return rows.map(r => {
      const refund = toRefund(r)
      let record = cache.get(refund.checkoutId)
      if (record === undefined) {
        record = this.#store.moneyRecord(refund.checkoutId) as MoneyRecord
        cache.set(refund.checkoutId, record)
      }
      return { ...record, refund }
    })
  }

  paidBetween (from: Date, to: Date): Checkout[] {
    return (this.#c.sql('SELECT id FROM checkouts WHERE paid_at >= ? AND paid_at < ? ORDER BY paid_at, rowid').all(from.toISOString(), to.toISOString()) as Row[])
      .map(r => this.#store.getCheckout(r.id) as Checkout)
  }
}
