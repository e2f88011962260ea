// The posting worker inside the service: posts PAID checkouts (on start-up too), retries transient Alma
// failures with exponential backoff and jitter (honouring Retry-After), hands a checkout to staff after too
// many attempts, expires stale CREATED checkouts, and never posts one checkout twice at the same time.
//
// Several processes and instances share one ledger (SPEC 11): each posting is claimed under a lease held in the
// ledger (POSTING_LEASE_SECONDS), renewed every third of it while the posting runs and released at its end. Every
// posting write carries the lease's fence; a process that lost its lease (dead, or paused past it) gets LeaseLost
// from its next write or from the check before each payment, and stops that posting at once without writing
// anything more. The next holder resumes with SPEC 7's algorithm (Alma re-read, tx check). The in-process map of
// running postings stays, only so that this process does not ask the ledger for a posting it is already doing.

import type { Logger } from 'pino'
import { LeaseLost } from '../ledger/errors.ts'
import { processHolder } from '../ledger/holder.ts'
import type { Ledger, PostingLease } from '../ledger/ledger.ts'
import type { Checkout } from '../ledger/types.ts'
import type { Alerts } from './alerts.ts'
import { postCheckoutToAlma, type PosterDeps, type PostingOutcome } from './poster.ts'

export interface WorkerSettings {
  maxAttempts: number
  retryBaseMs: number
  retryMaxMs: number
  paidAlertMinutes: number
  /** how often due retries and sweeps are looked for */
  pollMs?: number
  /** how many checkouts are posted at once (Alma calls are rate-limited anyway) */
  concurrency?: number
  /**
   * How long stop() waits for a posting in progress: it stops between two fee payments, so at most one Alma call
   * is in flight; ALMA_TIMEOUT_MS plus a margin bounds it (the app passes that).
   */
  stopWaitMs?: number
  /** how long a posting's lease lasts unless renewed (POSTING_LEASE_SECONDS); renewed every third of it */
  leaseMs?: number
  /** more work for the sweep (once a minute), e.g. asking PayPal about reviews whose webhook never came */
  sweeps?: Array<(now: Date) => Promise<void>>
}

/** Added to ALMA_TIMEOUT_MS for the wait at shutdown: the ledger writes after the last answer, and the rate limiter. */
export const STOP_MARGIN_MS = 3000

const EXPIRY_MS = 24 * 60 * 60 * 1000
/** How long shutdown waits for the ledger to release the leases this process left held. */
const STOP_RELEASE_MS = 2000

export class PostingWorker {
  readonly #deps: Omit<PosterDeps, 'signal'>
  readonly #ledger: Ledger
  readonly #logger: Logger
  readonly #alerts: Alerts
  readonly #settings: Required<WorkerSettings>
  readonly #running = new Map<string, Promise<void>>()
  readonly #again = new Set<string>()
  /** waiting checkouts in arrival order; a Set, because a burst can queue thousands and each is checked on every poll */
  readonly #queue = new Set<string>()
  readonly #alerted = new Set<string>()
  /** postings given up at shutdown: whatever they still do must not touch the closed ledger */
  readonly #abandoned = new Set<string>()
  /**
   * Checkouts on which this process may have left a lease held, with the ledger out of reach: a claim whose answer
   * was lost (it may have been committed), or a release that failed. The next poll that reaches the ledger releases
   * them, so the payment is posted as soon as the database is back, not a whole POSTING_LEASE_SECONDS later; until
   * then this process would take its own lease for another's.
   */
  readonly #leftHeld = new Set<string>()
  readonly #abort = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #lastSweep = 0
  #stopped = false
  #started = false
  /** who holds this process's leases, as the ledger records it: host, process and a random part */
  readonly holder = processHolder()

  constructor (deps: Omit<PosterDeps, 'signal'>, logger: Logger, alerts: Alerts, settings: WorkerSettings) {
    this.#deps = deps
    this.#ledger = deps.ledger
    this.#logger = logger
    this.#alerts = alerts
    // Each default applies to a setting given as undefined too: the app passes every setting it has, so a spread
    // of defaults was overridden by `pollMs: undefined`, and setTimeout(undefined) polled the ledger every
    // millisecond (a thousand queries a second per campus, idle).
    this.#settings = {
      ...settings,
      pollMs: settings.pollMs ?? 1000,
      concurrency: settings.concurrency ?? 8,
      stopWaitMs: settings.stopWaitMs ?? 10_000,
      leaseMs: settings.leaseMs ?? 60_000,
      sweeps: settings.sweeps ?? []
    }
  }

  /** Picks up every PAID checkout left from before (a crash, a restart) and starts polling. */
  start (): void {
    this.#started = true
    this.#tick()
  }

  /** A postback just made this checkout PAID: post it now. */
  schedule (checkoutId: string): void {
    if (this.#stopped || !this.#started) return
    if (this.#running.has(checkoutId)) {
      this.#again.add(checkoutId)
      return
    }
    this.#queue.add(checkoutId)
    this.#drain()
  }

  /**
   * Stops taking work and waits (up to timeoutMs, by default the configured stopWaitMs) for postings in progress
   * to finish or stop between fees. A posting still running after that is abandoned visibly: one operator line
   * per checkout; it stays PAID, its "pay started" event is durable, and the next start resumes it (reading the
   * fee in Alma before paying again). Then the leases this process left held (see #leftHeld) are released, if the
   * ledger answers now, so that the next start need not wait them out. Returns the ids abandoned.
   */
  async stop (timeoutMs = this.#settings.stopWaitMs): Promise<string[]> {
    const abandoned = await this.#stopPostings(timeoutMs)
    await this.#releaseLeftAtStop()
    return abandoned
  }

  async #stopPostings (timeoutMs: number): Promise<string[]> {
    this.#stopped = true
    this.#abort.abort()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#queue.clear()
    const running = [...this.#running.keys()]
    if (running.length === 0) return []
    this.#logger.info({ event: 'worker.stopping', checkouts: running, waitMs: timeoutMs }, `waiting up to ${timeoutMs} ms for ${running.length} posting(s) in progress`)
    let timer: NodeJS.Timeout | undefined
    const finished = await Promise.race([
      Promise.allSettled([...this.#running.values()]).then(() => true),
      new Promise<false>(resolve => { timer = setTimeout(() => { resolve(false) }, timeoutMs) })
    ])
    clearTimeout(timer)
    if (finished) return []
    const abandoned = [...this.#running.keys()]
    for (const id of abandoned) {
      this.#abandoned.add(id)
      this.#logger.error({ event: 'posting.abandoned', checkout: id, waitedMs: timeoutMs },
        `shutdown abandoned the posting of checkout ${id} after ${timeoutMs} ms waiting for Alma; it stays PAID and is resumed at the next start (any fee Alma already took is found by its tx, not paid again)`)
    }
    return abandoned
  }

  /**
   * At shutdown, the leases left held are released if the ledger answers within STOP_RELEASE_MS (it may still be out
   * of reach: then they expire by themselves). Never one of a posting still running (abandoned: it may be at Alma).
   */
  async #releaseLeftAtStop (): Promise<void> {
    const left = [...this.#leftHeld].filter(id => !this.#running.has(id))
    if (left.length === 0) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled(left.map(async id => {
        if (!await this.#ledger.releaseHeldBy(id, this.holder)) return
        this.#leftHeld.delete(id)
        this.#logger.info({ event: 'posting.lease_released', checkout: id }, `the lease this process left held on posting ${id} when the ledger was out of reach is released at shutdown: the next start resumes it at once`)
      })),
      new Promise<void>(resolve => { timer = setTimeout(resolve, STOP_RELEASE_MS) })
    ])
    clearTimeout(timer)
  }

  /** Resolves when nothing is queued or running (tests and the demo use it). */
  async idle (): Promise<void> {
    while (this.#running.size > 0 || this.#queue.size > 0) {
      await Promise.allSettled([...this.#running.values()])
      await new Promise(resolve => setImmediate(resolve))
    }
  }

  #tick (): void {
    if (this.#stopped) return
    void this.#poll().finally(() => {
      if (this.#stopped) return
      this.#timer = setTimeout(() => { this.#tick() }, this.#settings.pollMs)
      this.#timer.unref()
    })
  }

  /** One poll: schedules due postings, and sweeps once a minute; a ledger that cannot be read is logged, not fatal. */
  async #poll (): Promise<void> {
    try {
      await this.#releaseLeft()
      const now = new Date()
      for (const id of await this.#ledger.duePostings(now)) this.schedule(id)
      if (now.getTime() - this.#lastSweep >= 60_000) {
        this.#lastSweep = now.getTime()
        await this.sweep(now)
      }
    } catch (error) {
      this.#logger.error({ event: 'worker.error', err: { message: (error as Error).message } }, `posting worker could not read the ledger: ${(error as Error).message}`)
    }
  }

  /**
   * Releases the leases this process may have left held (see #leftHeld); throws, as the poll's reads do, while the
   * ledger is out of reach. Each is released as if it were a posting of this process, so no claim of the same
   * checkout starts here meanwhile: a lease taken anew cannot be released by mistake.
   */
  async #releaseLeft (): Promise<void> {
    for (const id of [...this.#leftHeld]) {
      if (this.#running.has(id) || this.#stopped) continue
      const release = this.#ledger.releaseHeldBy(id, this.holder)
      this.#running.set(id, release.then(() => undefined, () => undefined))
      let released: boolean
      try {
        released = await release
      } finally {
        this.#running.delete(id)
        if (this.#again.delete(id)) this.schedule(id)
      }
      this.#leftHeld.delete(id)
      if (released) {
        this.#logger.info({ event: 'posting.lease_released', checkout: id }, `the lease this process left held on posting ${id} when the ledger was out of reach is released: the posting resumes now`)
      }
    }
  }

  /**
   * Marks the reviews an instance of an older version left unmarked, runs the extra sweeps, expires CREATED checkouts
   * older than 24 hours, and alerts on PAID ones stuck past the threshold.
   */
  async sweep (now = new Date()): Promise<void> {
    // first: a review marked here is asked about by the PayPal sweep (an extra) and never expired
    for (const id of await this.#ledger.markReviewsFromAudit()) {
      this.#logger.warn({ event: 'checkout.review_marked', checkout: id }, `checkout ${id} is held for a provider's review that an instance of an older version recorded only as an audit event: marked, its fees stay unpayable until the outcome`)
    }
    for (const extra of this.#settings.sweeps) await extra(now)
    for (const id of await this.#ledger.expireCreated(new Date(now.getTime() - EXPIRY_MS))) {
      this.#logger.info({ event: 'checkout.expired', checkout: id }, `checkout ${id} expired unpaid after 24 hours`)
    }
    for (const checkout of await this.#ledger.paidBefore(new Date(now.getTime() - this.#settings.paidAlertMinutes * 60_000))) {
      if (this.#alerted.has(checkout.id)) continue
      this.#alerted.add(checkout.id)
      this.#alerts.stuckPaid(checkout, this.#settings.paidAlertMinutes)
    }
  }

  #drain (): void {
    while (!this.#stopped && this.#queue.size > 0 && this.#running.size < this.#settings.concurrency) {
      const id = this.#queue.values().next().value as string
      this.#queue.delete(id)
      if (this.#running.has(id)) {
        this.#again.add(id)
        continue
      }
      // The ledger out of reach (a server database restarting) fails a posting's own reads and writes: the
      // checkout stays PAID and the next poll after the database is back resumes it (SPEC 7 finds what Alma took).
      const run = this.#post(id).catch((error: unknown) => {
        this.#logger.error({ event: 'worker.error', checkout: id, err: { message: (error as Error)?.message } }, `posting ${id} stopped, the ledger could not be read or written: ${(error as Error)?.message}; it stays PAID and is tried again`)
      }).finally(() => {
        this.#running.delete(id)
        if (this.#again.delete(id)) this.schedule(id)
        this.#drain()
      })
      this.#running.set(id, run)
    }
  }

  #backoffMs (attempt: number, retryAfterSeconds?: number): number {
    const exponential = Math.min(this.#settings.retryMaxMs, this.#settings.retryBaseMs * 2 ** Math.max(0, attempt - 1))
    const jittered = exponential / 2 + Math.random() * exponential / 2
    return Math.max(jittered, (retryAfterSeconds ?? 0) * 1000)
  }

  async #post (checkoutId: string): Promise<void> {
    const before = await this.#ledger.getCheckout(checkoutId)
    // A retry is waiting for its backoff: duplicate postbacks or the poll must not jump the queue.
    if (before?.nextAttemptAt != null && Date.parse(before.nextAttemptAt) > Date.now()) return
    const leaseMs = this.#settings.leaseMs
    let lease: PostingLease | null
    try {
      lease = await this.#ledger.claimPosting(checkoutId, this.holder, leaseMs)
    } catch (error) {
      // the connection lost with the answer: the claim may have been committed, a lease this process does not know
      this.#leftHeld.add(checkoutId)
      throw error
    }
    if (lease === null) {
      this.#logger.debug({ event: 'posting.held_elsewhere', checkout: checkoutId }, `posting ${checkoutId} is held by another process (or no longer PAID)`)
      return
    }
    // claimed: no lease of this process's was left held on it (a claim succeeds only where none is live)
    this.#leftHeld.delete(checkoutId)
    let lost = false
    const renew = async (): Promise<boolean> => {
      if (lost) return false
      if (!await this.#ledger.renewPosting(lease, leaseMs)) lost = true
      return !lost
    }
    const renewal = setInterval(() => {
      renew().catch((error: unknown) => {
        this.#logger.warn({ event: 'posting.renew_failed', checkout: checkoutId, err: { message: (error as Error).message } }, `could not renew the lease on ${checkoutId}: ${(error as Error).message}`)
      })
    }, Math.max(100, Math.floor(leaseMs / 3)))
    renewal.unref()
    try {
      await this.#postHeld(checkoutId, before, lease, renew)
    } catch (error) {
      if (!(error instanceof LeaseLost)) throw error
      lost = true
      this.#logger.warn({ event: 'posting.lease_lost', checkout: checkoutId, fence: lease.fence, tx: before?.tx ?? undefined },
        `the lease on posting ${checkoutId} (fence ${lease.fence}) was lost to another process: this process stops that posting and writes nothing more for it`)
    } finally {
      clearInterval(renewal)
      if (!lost && !this.#abandoned.has(checkoutId)) {
        await this.#ledger.releasePosting(lease).catch((error: unknown) => {
          this.#leftHeld.add(checkoutId)
          this.#logger.warn({ event: 'posting.release_failed', checkout: checkoutId, err: { message: (error as Error).message } }, `could not release the lease on ${checkoutId}: ${(error as Error).message}; it is released at the next poll that reaches the ledger (or expires by itself)`)
        })
      }
    }
  }

  /** Posts a checkout whose lease this process holds; every posting write carries the lease's fence. */
  async #postHeld (checkoutId: string, before: Checkout | undefined, lease: PostingLease, leaseLive: () => Promise<boolean>): Promise<void> {
    let outcome: PostingOutcome
    try {
      const logger = this.#logger.child({ checkout: checkoutId, tx: before?.tx ?? undefined, user: before?.userId })
      outcome = await postCheckoutToAlma({ ...this.#deps, alma: this.#deps.alma.withLogger(logger), signal: this.#abort.signal, fence: lease.fence, leaseLive }, checkoutId)
    } catch (error) {
      if (this.#abandoned.has(checkoutId)) return
      if (error instanceof LeaseLost) throw error
      // A bug or a ledger failure, not Alma: keep the checkout PAID and try again later.
      outcome = { kind: 'RETRY', error: Object.assign(error as Error, { retryable: true }) }
      this.#logger.error({ event: 'worker.error', checkout: checkoutId, err: { message: (error as Error).message, stack: (error as Error).stack } }, `posting ${checkoutId} failed unexpectedly: ${(error as Error).message}`)
    }
    if (this.#abandoned.has(checkoutId)) return
    const checkout = await this.#ledger.getCheckout(checkoutId)
    const log = { checkout: checkoutId, tx: checkout?.tx, user: checkout?.userId }
    switch (outcome.kind) {
      case 'POSTED':
        this.#logger.info({ event: 'payment.posted', ...log, total: outcome.checkout.total }, `checkout ${checkoutId} posted to Alma`)
        return
      case 'NEEDS_ATTENTION':
        this.#alerts.needsAttention(outcome.checkout, outcome.reason)
        return
      case 'SKIPPED':
        this.#logger.debug({ event: 'posting.skipped', ...log, reason: outcome.reason }, `posting ${checkoutId} skipped: ${outcome.reason}`)
        return
      case 'RETRY': {
        if (this.#stopped) return
        const attempts = (checkout?.attempts ?? 0) + 1
        const delay = this.#backoffMs(attempts, outcome.error.retryAfterSeconds)
        const giveUp = attempts >= this.#settings.maxAttempts
        await this.#ledger.recordAttempt(checkoutId, giveUp ? null : new Date(Date.now() + delay), outcome.error.message, lease.fence)
        if (giveUp) {
          const reason = `gave up after ${attempts} attempts; last error: ${outcome.error.message}`
          // Alert only when this change won: a postback may have moved the checkout meanwhile.
          const moved = await this.#ledger.transition({ checkoutId, from: ['PAID'], to: 'NEEDS_ATTENTION', event: 'payment.needs_attention', attentionKind: 'ATTEMPTS_EXHAUSTED', attentionReason: reason, detail: { reason }, messages: this.#deps.messages }, lease.fence)
          const updated = await this.#ledger.getCheckout(checkoutId)
          if (moved && updated !== undefined) this.#alerts.needsAttention(updated, reason)
          return
        }
        this.#logger.warn({ event: 'posting.retry', ...log, attempt: attempts, retryInMs: Math.round(delay), error: outcome.error.message },
          `posting ${checkoutId} failed (${outcome.error.message}); attempt ${attempts} of ${this.#settings.maxAttempts}, retrying in ${Math.round(delay)} ms`)
        const timer = setTimeout(() => { this.schedule(checkoutId) }, delay)
        timer.unref()
      }
    }
  }
}
