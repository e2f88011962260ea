// The Alma client: one for the process (its connection pool and the ALMA_RATE_LIMIT budget are shared), and
// per request a view of it whose alma.call log lines carry the request's id and patron. The ALMA_RATE_LIMIT
// budget is reserved through the ledger, so every process and instance on it shares one budget per
// institution (SPEC 11): the key is the Alma API URL and a hash of the API key, never the key itself.

import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { AlmaClient } from '../../../alma/client.ts'
import { type CallEnd, RESERVE_DEADLINE_MS, type ReserveCall } from '../../../alma/rate-limit.ts'
import { LedgerUnavailable } from '../../../ledger/errors.ts'
import { processHolder } from '../../../ledger/holder.ts'
import type { Ledger } from '../../../ledger/ledger.ts'

/** A busy ledger (another process's write lock) is no refusal: ask again shortly. */
const BUSY_RETRY_MS = 10
/**
 * The shared window is longer than one process's (WINDOW_MARGIN_MS): between a reservation and its call reaching
 * Alma, a process may be descheduled or busy with a commit, and processes delayed differently bunch arrivals.
 * Measured at the sandbox with three processes on two busy cores: 30 calls in one second for a limit of 25 with
 * the 150 ms margin.
 */
export const SHARED_WINDOW_MS = 1400

/** The budget key of one institution: its API URL and a hash of its API key. */
export function almaBudgetKey (apiUrl: string, apiKey: string): string {
  return `${apiUrl.replace(/\/+$/, '')}#${createHash('sha256').update(apiKey).digest('hex').slice(0, 16)}`
}

/**
 * Alma calls reserved in the ledger under ALMA_RATE_LIMIT per SHARED_WINDOW_MS, for this process (`holder`). Each
 * call counts until this process tells the ledger when Alma read it at the latest (src/alma/rate-limit.ts); one
 * never told over (this process died, or the ledger failed to hear it) counts `openMs`: ALMA_TIMEOUT_MS, the
 * longest a call waits for its answer, and a window.
 */
export function ledgerReserve (ledger: Ledger, key: string, limit: number, holder = processHolder(), timeoutMs = 15_000): ReserveCall {
  const openMs = timeoutMs + SHARED_WINDOW_MS
  /** ends the ledger was too busy to hear: told with the next question */
  let untold: CallEnd[] = []
  /** when each call still held was granted (by this clock) */
  const grantedAt = new Map<number, number>()
  // An end told once its call's bound may have passed would move a call of the same id, if SQLite has given its
  // row's id to a newer one: such an end is left untold (the call has counted its whole bound, or nearly). The
  // bound runs from the ledger's grant, which was up to the deadline of a question before this clock's.
  const tellableMs = openMs - RESERVE_DEADLINE_MS - SHARED_WINDOW_MS
  return async (wanted, ends) => {
    const now = performance.now()
    const told: CallEnd[] = []
    for (const end of [...untold, ...ends]) {
      const at = grantedAt.get(end.id)
      if (at !== undefined && now - at < tellableMs) told.push(end)
      else grantedAt.delete(end.id)
    }
    untold = []
    try {
      const answer = await ledger.reserveAlmaCalls(key, limit, SHARED_WINDOW_MS, wanted, holder, { openMs, ends: told })
      for (const end of told) grantedAt.delete(end.id)
      // ids granted to a question the limiter stopped waiting for (its deadline) are never told: forget them
      if (grantedAt.size > 4 * limit + 100) for (const [id, at] of grantedAt) if (now - at >= openMs) grantedAt.delete(id)
      const at = performance.now()
      for (const id of answer.ids ?? []) grantedAt.set(id, at)
      return answer
    } catch (error) {
      if (error instanceof LedgerUnavailable) {
        untold = told
        return { granted: 0, retryInMs: BUSY_RETRY_MS }
      }
      throw error
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    alma: AlmaClient
  }
  interface FastifyRequest {
    /** the process's Alma client, logging through this request's logger */
    alma: AlmaClient
  }
}

export default fp(async function almaClient (fastify) {
  const { config, ledger } = fastify
  const alma = new AlmaClient({
    baseUrl: config.almaApiUrl,
    apiKey: config.almaApiKey,
    userIdType: config.almaUserIdType,
    rateLimit: config.almaRateLimit,
    timeoutMs: config.almaTimeoutMs,
    maxResponseBytes: config.almaMaxResponseBytes,
    logger: (fastify.log as unknown as Logger).child({ component: 'alma' }),
    reserve: ledgerReserve(ledger, almaBudgetKey(config.almaApiUrl, config.almaApiKey), config.almaRateLimit, processHolder(), config.almaTimeoutMs),
    onCall: (call, waitedMs) => { fastify.metrics.almaCall(call, waitedMs) }
  })
  fastify.decorate('alma', alma)
  fastify.decorateRequest('alma', {
    getter () { return alma.withLogger(this.log as unknown as Logger) }
  })
  // onClose hooks run last-registered first: the posting worker has stopped before the pool closes, the pool
  // before the ledger
  fastify.addHook('onClose', async () => { await alma.close() })
}, { name: 'alma', dependencies: ['config', 'ledger', 'metrics'] })
