// The service's own sessions (AUTH_MODE=userobject): kept in memory, one random id per sign-in, carried by a
// signed cookie that has no Max-Age (it dies with the browser). A session ends at the first of: the absolute
// lifetime (SESSION_TTL_MINUTES from sign-in), the idle timeout (SESSION_IDLE_MINUTES since the last request,
// sliding), or sign-out (/logout removes it here, so a copy of the old cookie is worthless at once).
// Kept in memory on purpose: the service runs as one instance, and a restart only sends patrons through
// EZproxy's sign-in again (invisible while their EZproxy session lasts).

import { randomBytes } from 'node:crypto'

export interface SessionState {
  id: string
  username: string
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
  /** no such session: never issued here, signed out, or forgotten at a restart */
  | { kind: 'unknown' }

export const SESSION_ID = /^[A-Za-z0-9_-]{43}$/

export interface SessionStoreOptions {
  ttlMs: number
  idleMs: number
  now?: () => number
  /** at most this many sessions are kept; the one idle longest goes first */
  max?: number
}

export class SessionStore {
  readonly #sessions = new Map<string, SessionState>()
  readonly #ttlMs: number
  readonly #idleMs: number
  readonly #max: number
  #sweptAt = 0
  readonly now: () => number

  constructor (options: SessionStoreOptions) {
    this.#ttlMs = options.ttlMs
    this.#idleMs = options.idleMs
    this.#max = options.max ?? 100_000
    this.now = options.now ?? Date.now
  }

  get size (): number { return this.#sessions.size }
  get idleMs (): number { return this.#idleMs }

  start (username: string, options: SessionStartOptions = {}): SessionState {
    this.#sweep()
    const now = this.now()
    const expires = Math.min(now + this.#ttlMs, options.notAfter ?? Infinity)
    const session: SessionState = { id: randomBytes(32).toString('base64url'), username, startedAt: now, lastSeen: now, expires }
    if (options.payLink !== undefined) session.payLink = options.payLink
    this.#sessions.set(session.id, session)
    return session
  }

  /** Looks a session up without touching it. */
  peek (id: string): SessionLookup {
    const session = this.#sessions.get(id)
    if (session === undefined) return { kind: 'unknown' }
    const now = this.now()
    if (session.expires <= now) return { kind: 'expired', session }
    if (now - session.lastSeen >= this.#idleMs) return { kind: 'idle', session }
    return { kind: 'live', session }
  }

  /** Marks a live session as used now (the idle timeout slides); a session that has ended is forgotten. */
  touch (id: string): void {
    const found = this.peek(id)
    if (found.kind === 'live') {
      // re-inserted so that the map's order is the order of last use, for #sweep
      this.#sessions.delete(id)
      found.session.lastSeen = this.now()
      this.#sessions.set(id, found.session)
    } else if (found.kind !== 'unknown') {
      this.#sessions.delete(id)
    }
  }

  /** Ends a session (sign-out); returns it if it existed. */
  end (id: string): SessionState | undefined {
    const session = this.#sessions.get(id)
    this.#sessions.delete(id)
    return session
  }

  /** Ends every session a pay link opened (the link was revoked); returns how many. */
  endPayLink (linkId: string): number {
    let ended = 0
    for (const [id, session] of this.#sessions) {
      if (session.payLink === linkId) {
        this.#sessions.delete(id)
        ended++
      }
    }
    return ended
  }

  #sweep (): void {
    const now = this.now()
    if (now - this.#sweptAt < 60_000 && this.#sessions.size < this.#max) return
    this.#sweptAt = now
    for (const [id, session] of this.#sessions) {
      if (session.expires <= now || now - session.lastSeen >= this.#idleMs) this.#sessions.delete(id)
    }
    // the map is in order of last use: drop the oldest beyond the cap
    for (const id of this.#sessions.keys()) {
      if (this.#sessions.size < this.#max) break
      this.#sessions.delete(id)
    }
  }
}
