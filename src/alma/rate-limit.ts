// One process-wide budget of Alma calls per second (Alma allows 25 per institution): every call, from pages,
// the posting worker or a job, takes a slot in the same sliding window.
//
// A slot counts from the moment its request is written to the socket, not from the moment it was granted:
// the client calls `sent()` when the request has left (got's request 'finish'). Until then the slot is held
// and counts against the budget without an end, so a burst whose requests wait for a connection, or for an
// event loop busy with 500 arriving pages, cannot bunch at Alma: the 21st call of a window is written no
// earlier than 1.15 s after the 1st was written (measured before this: 38 calls in one second at the sandbox
// for a limit of 20, because slots were stamped when granted and the requests left up to a second later).
// The window is a little longer than a second so that delays between our socket and Alma's clock (the
// network, Alma's own load balancer) cannot bunch arrivals either.
//
// Several processes or instances (SPEC 11): Alma counts calls per institution, so the budget is shared. The
// service injects `reserve`, which asks a store every process shares (the ledger) for one call in the window;
// this module knows nothing of that store. A call first takes a slot of this process's own limiter (so this
// process never writes more than the limit in a window, by socket time), then one reservation of the shared
// budget. The calls waiting in this process queue up in order and one question at a time asks the shared store
// for all of them (waiting the time it is told when none is granted): under load, one write of the store
// grants several calls, so the store's cost per call falls as the load rises.

export interface RateSlot {
  /** The request was written to the socket now (or failed before it could be): the slot starts to age. */
  sent: () => void
}

export type RateLimiter = () => Promise<RateSlot>

/** The shared budget's answer: how many of the calls asked for may go now; none, ask again after retryInMs. */
export interface Reservation { granted: number, retryInMs: number }
/** Asks the budget shared by every process for `wanted` calls now (its limit and window are bound in by the caller). */
export type ReserveCall = (wanted: number) => Promise<Reservation>

export const WINDOW_MARGIN_MS = 150

export function createRateLimiter (callsPerSecond: number, windowMs = 1000 + WINDOW_MARGIN_MS, reserve?: ReserveCall): RateLimiter {
  const local = localLimiter(callsPerSecond, windowMs)
  if (reserve === undefined) return local
  const shared = sharedBudget(reserve)
  return async () => {
    const slot = await local()
    try {
      await shared()
    } catch (error) {
      slot.sent() // nothing will be written: let the slot age out like a sent one
      throw error
    }
    return slot
  }
}

function localLimiter (callsPerSecond: number, windowMs: number): RateLimiter {
  /** when each of the slots granted in the window was written, oldest first */
  const sentAt: number[] = []
  /** slots granted whose request is not written yet */
  let unsent = 0
  const waiting: Array<(slot: RateSlot) => void> = []
  let timer: NodeJS.Timeout | undefined

  const grant = (): RateSlot => {
    unsent++
    let done = false
    return {
      sent: () => {
        if (done) return
        done = true
        unsent--
        sentAt.push(Date.now())
        pump()
      }
    }
  }

  const pump = (): void => {
    const now = Date.now()
    while (sentAt.length > 0 && sentAt[0] <= now - windowMs) sentAt.shift()
    while (waiting.length > 0 && sentAt.length + unsent < callsPerSecond) {
      ;(waiting.shift() as (slot: RateSlot) => void)(grant())
    }
    // Only a slot that was sent can free room by ageing; an unsent one frees room when it is sent (pump again).
    if (waiting.length > 0 && timer === undefined && sentAt.length > 0 && sentAt.length + unsent >= callsPerSecond) {
      timer = setTimeout(() => { timer = undefined; pump() }, Math.max(1, sentAt[0] + windowMs - now + 1))
    }
  }

  return async () => await new Promise<RateSlot>(resolve => {
    waiting.push(resolve)
    pump()
  })
}

/** Calls wait in this process's order; one question asks for all of them, so the limit holds across processes. */
function sharedBudget (reserve: ReserveCall): () => Promise<void> {
  const waiting: Array<{ resolve: () => void, reject: (error: unknown) => void }> = []
  let asking = false

  const pump = async (): Promise<void> => {
    if (asking) return
    asking = true
    try {
      while (waiting.length > 0) {
        let answer: Reservation
        try {
          answer = await reserve(waiting.length)
        } catch (error) {
          // the shared budget cannot be asked: this call fails (a typed failure for its caller), the next asks again
          waiting.shift()?.reject(error)
          continue
        }
        const granted = Math.min(answer.granted, waiting.length)
        if (granted > 0) for (const call of waiting.splice(0, granted)) call.resolve()
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
