// The service's own sessions (userobject and primo modes, pay links): one random id per sign-in, carried by a
// signed cookie that has no Max-Age (it dies with the browser), and kept in the ledger, so every process and
// instance of one deployment knows it (SPEC section 11): a patron signed in through one is served by another,
// and a sign-out or a revoked pay link on one ends the session on all. A restart ends no session.
//
// The ledger keeps only the SHA-256 of the id: a copy of the table (a backup) holds no usable cookie.
//
// A session ends at the first of: the absolute lifetime (SESSION_TTL_MINUTES from sign-in, or a pay link's
// expiry if sooner), the idle timeout (SESSION_IDLE_MINUTES since the last request, sliding), or sign-out
// (/logout removes it, so a copy of the old cookie is worthless at once). The last request is written at most
// once a minute per session (TOUCH_EVERY_MS), not once per request: the idle timeout is therefore precise to
// that minute (a session may end up to a minute sooner than SESSION_IDLE_MINUTES after its very last request;
// never later).

import { createHash, randomBytes } from 'node:crypto'
import type { Ledger } from '../ledger/ledger.ts'
import type { SessionKind, SessionRecord } from '../ledger/types.ts'

/** How often a live session's last request is written to the ledger, at most (half the idle limit when shorter). */
export const TOUCH_EVERY_MS = 60_000
/** How often a process removes ended sessions from the ledger, at most. */
const PURGE_EVERY_MS = 60_000

export interface SessionState {
  id: string
  username: string
  kind: SessionKind
  startedAt: number
  lastSeen: number
  /** absolute end: startedAt + SESSION_TTL_MINUTES (a pay link's session ends with the link, if sooner) */
  expires: number
  /** opened by a pay link (/pay/<token>): this patron's pages only, never /admin; ends when the link is revoked */
  payLink?: string
}

export interface SessionStartOptions {
  /** the pay link's id, for a session opened by a pay link */
  payLink?: string
  /** an absolute end earlier than SESSION_TTL_MINUTES from now (a pay link's expiry) */
  notAfter?: number
}

/** What a cookie's session id stands for right now. */
export type SessionLookup =
  | { kind: 'live', session: SessionState }
  | { kind: 'expired', session: SessionState }
  | { kind: 'idle', session: SessionState }
  /** ended because the pay link that opened it was revoked (kept, marked, until its absolute end) */
  | { kind: 'revoked', session: SessionState }
  /** no such session: never issued, signed out, or ended and removed */
  | { kind: 'unknown' }

export const SESSION_ID = /^[A-Za-z0-9_-]{43}$/

/** What the ledger keys a session by: the SHA-256 of its id, hex. */
export function sessionKey (id: string): string {
  return createHash('sha256').update(id).digest('hex')
}

export interface SessionStoreOptions {
  ledger: Ledger
  ttlMs: number
  idleMs: number
  now?: () => number
}

function toState (id: string, record: SessionRecord): SessionState {
  const state: SessionState = { id, username: record.username, kind: record.kind, startedAt: record.createdAt, lastSeen: record.lastSeen, expires: record.expiresAt }
  if (record.payLink !== null) state.payLink = record.payLink
  return state
}

export class SessionStore {
  readonly #ledger: Ledger
  readonly #ttlMs: number
  readonly #idleMs: number
  readonly #touchEveryMs: number
  #purgedAt = 0
  readonly now: () => number

  constructor (options: SessionStoreOptions) {
    this.#ledger = options.ledger
    this.#ttlMs = options.ttlMs
    this.#idleMs = options.idleMs
    this.#touchEveryMs = Math.min(TOUCH_EVERY_MS, Math.floor(options.idleMs / 2))
    this.now = options.now ?? Date.now
  }

  get idleMs (): number { return this.#idleMs }

  async start (username: string, kind: SessionKind, options: SessionStartOptions = {}): Promise<SessionState> {
    const now = this.now()
    if (now - this.#purgedAt >= PURGE_EVERY_MS || now < this.#purgedAt) {
      this.#purgedAt = now
      await this.#ledger.purgeSessions(new Date(now), this.#idleMs)
    }
    const id = randomBytes(32).toString('base64url')
    const expiresAt = Math.min(now + this.#ttlMs, options.notAfter ?? Infinity)
    const payLink = options.payLink ?? null
    await this.#ledger.createSession({ idHash: sessionKey(id), username, kind, payLink, createdAt: now, expiresAt })
    return toState(id, { username, kind, payLink, createdAt: now, lastSeen: now, expiresAt, revokedAt: null })
  }

  /** The session behind a cookie's id; a live one is marked as used now (the idle timeout slides). */
  async lookup (id: string): Promise<SessionLookup> {
    const found = await this.#ledger.touchSession(sessionKey(id), new Date(this.now()), { idleMs: this.#idleMs, touchEveryMs: this.#touchEveryMs })
    if (!found.found) return { kind: 'unknown' }
    return { kind: found.state, session: toState(id, found.session) }
  }

  /** Ends a session (sign-out, or found ended); resolves with it if it existed. */
  async end (id: string): Promise<SessionState | undefined> {
    const record = await this.#ledger.endSession(sessionKey(id))
    return record === undefined ? undefined : toState(id, record)
  }

  /**
   * Ends every session a pay link opened (the link was revoked), on every process, at once: marked ended, not
   * deleted, so their patron's next request is told the link was withdrawn. Resolves with how many.
   */
  async endPayLink (linkId: string): Promise<number> {
    return await this.#ledger.endPayLinkSessions(linkId)
  }
}
