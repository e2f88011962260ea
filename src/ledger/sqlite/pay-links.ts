// Pay links in SQLite: the links issued (who for, who by, until when, revoked by whom), and their audit events,
// which go to audit_events beside the checkouts' (no checkout; the detail names the link).

import type { AuditEvent, NewPayLink, PayLinkEntry } from '../types.ts'
import type { Connection } from './connection.ts'
import { type Row, toEvent, toPayLink } from './rows.ts'

export class PayLinkStore {
  readonly #c: Connection

  constructor (connection: Connection) {
    this.#c = connection
  }

  record (link: NewPayLink, detail: Record<string, unknown>): void {
    this.#c.transaction(() => {
      this.#c.sql('INSERT INTO pay_links (link_id, patron_id, primary_id, issued_by, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(link.linkId, link.patronId, link.primaryId, link.issuedBy, link.issuedAt.toISOString(), link.expiresAt.toISOString())
      this.#c.event(null, 'paylink.issued', null, null, { linkId: link.linkId, patron: link.patronId, primaryId: link.primaryId, by: link.issuedBy, expiresAt: link.expiresAt.toISOString(), ...detail })
    })
  }

  get (linkId: string): PayLinkEntry | undefined {
    const row = this.#c.sql('SELECT * FROM pay_links WHERE link_id = ?').get(linkId) as Row | undefined
    return row === undefined ? undefined : toPayLink(row)
  }

  forPatron (primaryId: string, limit: number): PayLinkEntry[] {
    return (this.#c.sql('SELECT * FROM pay_links WHERE primary_id = ? ORDER BY issued_at DESC, link_id LIMIT ?').all(primaryId, Math.max(0, Math.floor(limit))) as Row[]).map(toPayLink)
  }

  revoke (linkId: string, by: string): boolean {
    return this.#c.transaction(() => {
      const changed = this.#c.sql('UPDATE pay_links SET revoked_by = ?, revoked_at = ? WHERE link_id = ? AND revoked_at IS NULL').run(by, this.#c.iso(), linkId).changes
      if (changed === 1) this.#c.event(null, 'paylink.revoked', null, null, { linkId, by })
      return changed === 1
    })
  }

  events (linkId: string): AuditEvent[] {
    // the detail is JSON written by us; the link id is base64url, whose '_' LIKE would read as a wildcard
    const pattern = `%"linkId":"${linkId.replace(/[\\%_]/g, c => '\\' + c)}"%`
    return (this.#c.sql("SELECT * FROM audit_events WHERE checkout_id IS NULL AND event LIKE 'paylink.%' AND detail LIKE ? ESCAPE '\\' ORDER BY id").all(pattern) as Row[]).map(toEvent)
  }
}
