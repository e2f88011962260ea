// One process-wide budget of Alma calls per second (Alma allows 25 per institution): every call, from pages,
// the posting worker or a job, waits for a slot in the same sliding window.
//
// Hand-written on purpose: p-throttle (strict) releases calls by their planned times, so when the event loop is
// busy (synchronous ledger commits during a burst of postbacks) several timers fire together and Alma sees a
// bunch: measured 21 and then 24 calls in one second for a limit of 20. Here each release is stamped with the
// real clock, and the window is a little longer than a second so delays in flight cannot bunch arrivals.
//
// Several processes or instances (SPEC 11): Alma counts calls per institution, so the budget is shared. The
// service injects `reserve`, which asks a store every process shares (the ledger) for one call in the window;
// this module knows nothing of that store. The calls waiting in this process queue up here in order, and only the
// first of them asks the shared store at a time (waiting the time it is told when refused), so a burst costs
// the store one question per call, not one per waiting call.

export type RateLimiter = () => Promise<void>

/** The shared budget's answer: the call may go now, or ask again after retryInMs. */
export type Reservation = { granted: true } | { granted: false, retryInMs: number }
/** Asks the budget shared by every process for one call now (its limit and window are bound in by the caller). */
export type ReserveCall = () => Promise<Reservation>

export const WINDOW_MARGIN_MS = 150

export function createRateLimiter (callsPerSecond: number, windowMs = 1000 + WINDOW_MARGIN_MS, reserve?: ReserveCall): RateLimiter {
  if (reserve !== undefined) return sharedLimiter(reserve)
  const released: number[] = []
  const waiting: Array<() => void> = []
  let timer: NodeJS.Timeout | undefined

  const pump = (): void => {
    const now = Date.now()
    while (released.length > 0 && released[0] <= now - windowMs) released.shift()
    while (waiting.length > 0 && released.length < callsPerSecond) {
      released.push(now)
      ;(waiting.shift() as () => void)()
    }
    if (waiting.length > 0 && timer === undefined) {
      timer = setTimeout(() => { timer = undefined; pump() }, Math.max(1, released[0] + windowMs - now + 1))
    }
  }

  return async () => {
    await new Promise<void>(resolve => {
      waiting.push(resolve)
      pump()
    })
  }
}

/** Calls wait in this process's order; the first asks the shared budget, so the limit holds across processes. */
function sharedLimiter (reserve: ReserveCall): RateLimiter {
  const waiting: Array<{ resolve: () => void, reject: (error: unknown) => void }> = []
  let asking = false

  const pump = async (): Promise<void> => {
    if (asking) return
    asking = true
    try {
      while (waiting.length > 0) {
        let answer: Reservation
        try {
          answer = await reserve()
        } catch (error) {
          // the shared budget cannot be asked: this call fails (a typed failure for its caller), the next asks again
          waiting.shift()?.reject(error)
          continue
        }
        if (answer.granted) (waiting.shift() as { resolve: () => void }).resolve()
        else await new Promise(resolve => setTimeout(resolve, Math.max(1, answer.retryInMs)))
      }
    } finally {
      asking = false
    }
  }

  return async () => {
    await new Promise<void>((resolve, reject) => {
      waiting.push({ resolve, reject })
      void pump()
    })
  }
}
