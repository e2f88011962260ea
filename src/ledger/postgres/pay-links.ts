// Pay links in PostgreSQL: the same meaning as the SQLite store (src/ledger/sqlite/pay-links.ts). The links
// issued (who for, who by, until when, revoked by whom) in pay_links; their audit events in audit_events beside
// the checkouts' (no checkout; the detail names the link).

import type { AuditEvent, NewPayLink, PayLinkEntry } from '../types.ts'
import { toEvent, toPayLink } from '../sqlite/rows.ts'
import type { Pool, Queries } from './pool.ts'

export class PostgresPayLinks {
  readonly #pool: Pool
  readonly #now: () => Date

  constructor (pool: Pool, now: () => Date) {
    this.#pool = pool
    this.#now = now
  }

  async #event (q: Queries, event: string, detail: Record<string, unknown>): Promise<void> {
    await q.run('INSERT INTO audit_events (checkout_id, at, event, from_state, to_state, detail) VALUES (NULL, $1, $2, NULL, NULL, $3)',
      [this.#now().toISOString(), event, JSON.stringify(detail)])
  }

  async record (link: NewPayLink, detail: Record<string, unknown>): Promise<void> {
    await this.#pool.transaction(async q => {
      await q.run('INSERT INTO pay_links (link_id, patron_id, primary_id, issued_by, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)',
        [link.linkId, link.patronId, link.primaryId, link.issuedBy, link.issuedAt.toISOString(), link.expiresAt.toISOString()])
      await this.#event(q, 'paylink.issued', { linkId: link.linkId, patron: link.patronId, primaryId: link.primaryId, by: link.issuedBy, expiresAt: link.expiresAt.toISOString(), ...detail })
    })
  }

  async get (linkId: string): Promise<PayLinkEntry | undefined> {
    const rows = await this.#pool.query('SELECT * FROM pay_links WHERE link_id = $1', [linkId])
    return rows.length === 0 ? undefined : toPayLink(rows[0])
  }

  /** Newest first; ties in the order SQLite gives them (link ids compared byte by byte). */
  async forPatron (primaryId: string, limit: number): Promise<PayLinkEntry[]> {
    return (await this.#pool.query('SELECT * FROM pay_links WHERE primary_id = $1 ORDER BY issued_at DESC, link_id COLLATE "C" LIMIT $2',
      [primaryId, Math.max(0, Math.floor(limit))])).map(toPayLink)
  }

  async revoke (linkId: string, by: string): Promise<boolean> {
    return await this.#pool.transaction(async q => {
      const changed = await q.run('UPDATE pay_links SET revoked_by = $1, revoked_at = $2 WHERE link_id = $3 AND revoked_at IS NULL',
        [by, this.#now().toISOString(), linkId])
      if (changed === 1) await this.#event(q, 'paylink.revoked', { linkId, by })
      return changed === 1
    })
  }

  async events (linkId: string): Promise<AuditEvent[]> {
    // the detail is JSON written by us; the link id is base64url, whose '_' LIKE would read as a wildcard
    const pattern = `%"linkId":${JSON.stringify(linkId).replace(/[\\%_]/g, c => '\\' + c)}%`
    return (await this.#pool.query("SELECT * FROM audit_events WHERE checkout_id IS NULL AND event LIKE 'paylink.%' AND detail LIKE $1 ESCAPE '\\' ORDER BY id",
      [pattern])).map(toEvent)
  }
}
