// One process-wide budget of Alma calls per second (Alma allows 25 per institution): every call, from pages,
// the posting worker or a job, waits for a slot in the same sliding window.
//
// Hand-written on purpose: p-throttle (strict) releases calls by their planned times, so when the event loop is
// busy (synchronous ledger commits during a burst of postbacks) several timers fire together and Alma sees a
// bunch: measured 21 and then 24 calls in one second for a limit of 20. Here each release is stamped with the
// real clock, and the window is a little longer than a second so delays in flight cannot bunch arrivals.

export type RateLimiter = () => Promise<void>

export const WINDOW_MARGIN_MS = 150

export function createRateLimiter (callsPerSecond: number, windowMs = 1000 + WINDOW_MARGIN_MS): RateLimiter {
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
