// The service's sessions in PostgreSQL, shared by every instance: the same table and meaning as SQLite's
// (src/ledger/sqlite/sessions.ts). A lookup is one read; a live session's last_seen_ms is written only when a
// touch is due, by an UPDATE whose WHERE re-checks both limits, so it can never revive an ended session.

import type { NewSession, SessionRecord, SessionStatus } from '../types.ts'
import { sessionState, toSession } from '../sqlite/sessions.ts'
import type { Pool } from './pool.ts'

export class PostgresSessions {
  readonly #pool: Pool

  constructor (pool: Pool) {
    this.#pool = pool
  }

  async create (session: NewSession): Promise<void> {
    await this.#pool.run('INSERT INTO sessions (id_hash, username, kind, pay_link, created_ms, last_seen_ms, expires_ms) VALUES ($1, $2, $3, $4, $5, $5, $6)',
      [session.idHash, session.username, session.kind, session.payLink, session.createdAt, session.expiresAt])
  }

  async touch (idHash: string, now: number, idleMs: number, touchEveryMs: number): Promise<SessionStatus> {
    const rows = await this.#pool.query('SELECT * FROM sessions WHERE id_hash = $1', [idHash])
    if (rows.length === 0) return { found: false }
    const session = toSession(rows[0])
    const state = sessionState(session, now, idleMs)
    if (state !== 'live' || now - session.lastSeen < touchEveryMs) return { found: true, state, session }
    const changed = await this.#pool.run(`UPDATE sessions SET last_seen_ms = $2
      WHERE id_hash = $1 AND revoked_ms IS NULL AND expires_ms > $2 AND last_seen_ms > $3 AND last_seen_ms <= $4`, [idHash, now, now - idleMs, now - touchEveryMs])
    if (changed === 1) return { found: true, state, session: { ...session, lastSeen: now } }
    // ended or touched by another instance meanwhile: read it again
    const again = await this.#pool.query('SELECT * FROM sessions WHERE id_hash = $1', [idHash])
    if (again.length === 0) return { found: false }
    const fresh = toSession(again[0])
    return { found: true, state: sessionState(fresh, now, idleMs), session: fresh }
  }

  async end (idHash: string): Promise<SessionRecord | undefined> {
    // as SQLite's: a session its revoked pay link ended stays, marked, until its absolute end
    const rows = await this.#pool.query('DELETE FROM sessions WHERE id_hash = $1 AND revoked_ms IS NULL RETURNING *', [idHash])
    return rows.length === 0 ? undefined : toSession(rows[0])
  }

  async endPayLink (linkId: string, now: number): Promise<number> {
    return await this.#pool.run('UPDATE sessions SET revoked_ms = $2 WHERE pay_link = $1 AND revoked_ms IS NULL', [linkId, now])
  }

  async purge (now: number, idleMs: number): Promise<number> {
    return await this.#pool.run('DELETE FROM sessions WHERE expires_ms <= $1 OR (last_seen_ms <= $2 AND revoked_ms IS NULL)', [now, now - idleMs])
  }
}
