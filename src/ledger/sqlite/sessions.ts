// The service's sessions in SQLite, shared by every process on the ledger file (WEB_CONCURRENCY): keyed by the
// SHA-256 of the session id, never the id; times in epoch milliseconds. The meaning is the Ledger interface's
// (createSession, touchSession, endSession, endPayLinkSessions, purgeSessions).

import type { NewSession, SessionKind, SessionRecord, SessionStatus } from '../types.ts'
import type { Connection } from './connection.ts'
import type { Row } from './rows.ts'

export function toSession (r: Row): SessionRecord {
  return {
    username: r.username,
    kind: r.kind as SessionKind,
    payLink: r.pay_link ?? null,
    createdAt: Number(r.created_ms),
    lastSeen: Number(r.last_seen_ms),
    expiresAt: Number(r.expires_ms),
    revokedAt: r.revoked_ms == null ? null : Number(r.revoked_ms)
  }
}

/** live, revoked, expired or idle at `now`: the one rule both ledgers apply to a session read. */
export function sessionState (session: SessionRecord, now: number, idleMs: number): 'live' | 'expired' | 'idle' | 'revoked' {
  if (session.revokedAt !== null) return 'revoked'
  if (session.expiresAt <= now) return 'expired'
  if (now - session.lastSeen >= idleMs) return 'idle'
  return 'live'
}

export class SessionStore {
  readonly #c: Connection

  constructor (connection: Connection) {
    this.#c = connection
  }

  create (session: NewSession): void {
    this.#c.sql('INSERT INTO sessions (id_hash, username, kind, pay_link, created_ms, last_seen_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(session.idHash, session.username, session.kind, session.payLink, session.createdAt, session.createdAt, session.expiresAt)
  }

  /** The read first (no write lock); the write only when a live session's lastSeen is due, its WHERE re-checking the limits. */
  touch (idHash: string, now: number, idleMs: number, touchEveryMs: number): SessionStatus {
    const row = this.#c.sql('SELECT * FROM sessions WHERE id_hash = ?').get(idHash) as Row | undefined
    if (row === undefined) return { found: false }
    const session = toSession(row)
    const state = sessionState(session, now, idleMs)
    if (state !== 'live' || now - session.lastSeen < touchEveryMs) return { found: true, state, session }
    const changed = this.#c.sql(`UPDATE sessions SET last_seen_ms = ?
      WHERE id_hash = ? AND revoked_ms IS NULL AND expires_ms > ? AND last_seen_ms > ? AND last_seen_ms <= ?`)
      .run(now, idHash, now, now - idleMs, now - touchEveryMs).changes
    if (changed === 1) return { found: true, state, session: { ...session, lastSeen: now } }
    // ended or touched by another process meanwhile: read it again
    const again = this.#c.sql('SELECT * FROM sessions WHERE id_hash = ?').get(idHash) as Row | undefined
    if (again === undefined) return { found: false }
    const fresh = toSession(again)
    return { found: true, state: sessionState(fresh, now, idleMs), session: fresh }
  }

  /** A sign-out removes the session; one its revoked pay link ended stays, marked, until its absolute end. */
  end (idHash: string): SessionRecord | undefined {
    const row = this.#c.sql('DELETE FROM sessions WHERE id_hash = ? AND revoked_ms IS NULL RETURNING *').get(idHash) as Row | undefined
    return row === undefined ? undefined : toSession(row)
  }

  /** Marks ended (not deleted) every session a revoked pay link opened: their patron is told why, the record stays. */
  endPayLink (linkId: string, now: number): number {
    return this.#c.sql('UPDATE sessions SET revoked_ms = ? WHERE pay_link = ? AND revoked_ms IS NULL').run(now, linkId).changes
  }

  /** Removes sessions past their absolute end, and idle ones not ended by a revocation (those wait for their end). */
  purge (now: number, idleMs: number): number {
    return this.#c.sql('DELETE FROM sessions WHERE expires_ms <= ? OR (last_seen_ms <= ? AND revoked_ms IS NULL)').run(now, now - idleMs).changes
  }
}
