// Group commit: a postback must be on disk before its 200 goes out, and one durable SQLite commit costs an
// fsync (3 to 6 ms on the bench machine), so commits one at a time cap the service near 200 postbacks per
// second and queue the rest. Work that arrives in the same turn of the event loop shares one transaction
// (each item in its own savepoint, so one failure does not undo the others) and one fsync; every caller is
// answered only after that commit. A lone postback waits for nothing but the next turn of the loop.

import type { Ledger } from './ledger.ts'
import { isBusy, LedgerBusy } from './sqlite.ts'

/** How long after a lock was met the next batches are refused at once (503) instead of waiting for it again. */
const BUSY_BACKOFF_MS = 250

interface Pending {
  work: () => unknown
  resolve: (value: any) => void
  reject: (error: unknown) => void
}

export class GroupCommit {
  readonly #ledger: Pick<Ledger, 'inTransaction'>
  #pending: Pending[] = []
  #scheduled = false
  /** After a commit met another process's lock, batches until then are refused without waiting again. */
  #busyUntil = 0

  constructor (ledger: Pick<Ledger, 'inTransaction'>) {
    this.#ledger = ledger
  }

  /** Runs work (synchronous ledger calls) in the next shared transaction; resolves once it is committed. */
  async run<T> (work: () => T): Promise<T> {
    return await new Promise<T>((resolve, reject) => {
      this.#pending.push({ work, resolve, reject })
      if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(() => { this.#flush() })
      }
    })
  }

  #flush (): void {
    this.#scheduled = false
    const batch = this.#pending
    this.#pending = []
    const outcomes: Array<{ ok: true, value: unknown } | { ok: false, error: unknown }> = []
    // Each wait for a lock blocks the whole event loop for the busy timeout; postbacks arriving one after another
    // while the lock is held must not each pay it, or the last would miss CashNet's second.
    if (Date.now() < this.#busyUntil) {
      const failure = new LedgerBusy('still locked a moment ago')
      for (const item of batch) item.reject(failure)
      return
    }
    try {
      this.#ledger.inTransaction(() => {
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
      // process (SQLITE_BUSY after the ledger's short busy timeout) becomes LedgerBusy, answered 503: CashNet
      // sends the postback again, and by then the lock is usually gone.
      const failure = isBusy(error) ? new LedgerBusy(error) : error
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
