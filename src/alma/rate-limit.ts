// One process-wide budget of Alma calls per second (Alma allows 25 per institution): every call, from pages,
// the posting worker or a job, waits for a slot in the same sliding window.

import pThrottle from 'p-throttle'

export type RateLimiter = () => Promise<void>

export function createRateLimiter (callsPerSecond: number): RateLimiter {
  const throttle = pThrottle({ limit: callsPerSecond, interval: 1000, strict: true })
  return throttle(async () => {})
}
