// Group commit, inside the SQLite ledger: a postback must be on disk before its 200 goes out, and one durable
// SQLite commit costs an fsync (3 to 6 ms on the bench machine), so commits one at a time cap the service near
// 200 postbacks per second and queue the rest. Work that arrives in the same turn of the event loop shares one
// transaction (each item in its own savepoint, so one failure does not undo the others) and one fsync; every
// caller is answered only after that commit. A lone postback waits for nothing but the next turn of the loop.

import { LedgerUnavailable } from '../errors.ts'
import { isBusy } from './connection.ts'

/** How long after a lock was met the next batches are refused at once (503) instead of waiting for it again. */
const BUSY_BACKOFF_MS = 250

interface Pending {
  work: () => unknown
  resolve: (value: any) => void
  reject: (error: unknown) => void
}

export class GroupCommit {
  readonly #inTransaction: (work: () => void) => void
  #pending: Pending[] = []
  #scheduled: NodeJS.Immediate | undefined
  /** After a commit met another process's lock, batches until then are refused without waiting again. */
  #busyUntil = 0

  /** `inTransaction` runs work in one transaction with one durable commit, nested writes becoming savepoints. */
  constructor (inTransaction: (work: () => void) => void) {
    this.#inTransaction = inTransaction
  }

  /** Runs work (synchronous store writes) in the next shared transaction; resolves once it is committed. */
  async run<T> (work: () => T): Promise<T> {
    return await new Promise<T>((resolve, reject) => {
      this.#pending.push({ work, resolve, reject })
      this.#scheduled ??= setImmediate(() => { this.flush() })
    })
  }

  /** Commits what is waiting now (the ledger calls this before it closes, so nothing waiting is lost). */
  flush (): void {
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled)
    this.#scheduled = undefined
    const batch = this.#pending
    this.#pending = []
    if (batch.length === 0) return
    const outcomes: Array<{ ok: true, value: unknown } | { ok: false, error: unknown }> = []
    // Each wait for a lock blocks the whole event loop for the busy timeout; postbacks arriving one after another
    // while the lock is held must not each pay it, or the last would miss CashNet's second.
    if (Date.now() < this.#busyUntil) {
      const failure = new LedgerUnavailable('locked by another process a moment ago')
      for (const item of batch) item.reject(failure)
      return
    }
    try {
      this.#inTransaction(() => {
        for (const item of batch) {
          try {
            outcomes.push({ ok: true, value: item.work() })
          } catch (error) {
            outcomes.push({ ok: false, error })
          }
        }
      })
    } catch (error) {
      // The commit itself failed: nothing in the batch is durable, so nobody gets a 200. A lock held by another
      // process (SQLITE_BUSY after the ledger's short busy timeout) becomes LedgerUnavailable, answered 503:
      // CashNet sends the postback again, and by then the lock is usually gone.
      const failure = isBusy(error) ? new LedgerUnavailable(`locked by another process: ${(error as Error).message}`) : error
      if (isBusy(error)) this.#busyUntil = Date.now() + BUSY_BACKOFF_MS
      for (const item of batch) item.reject(failure)
      return
    }
    batch.forEach((item, index) => {
      const outcome = outcomes[index]
      if (outcome.ok) item.resolve(outcome.value)
      else item.reject(outcome.error)
    })
  }
}
