// The rule of the Alma budget shared through the ledger (SPEC 11: ALMA_RATE_LIMIT holds for every process
// together), the same for both stores; each store keeps, per budget key, the reservations in the window, their
// count, which process reserved last and until when the window is shared.
//
// Every process takes a slot of its own limiter first (src/alma/rate-limit.ts: at most the limit in any 1.15 s
// by the time each request is written), then asks here, and every grant counts the window's reservations,
// whoever made them, against the limit: the window is longer than a second, so neither processes delayed
// differently nor an Alma (or sandbox) that reads a backlog of requests at once can bunch more than the limit
// into one of its seconds. A process alone on the key is counted the same way. (Letting it be bounded by its own
// 1.15 s limiter alone gave one instance 20 calls in 1.15 s instead of 1.4 s, but the 500-patrons-at-once test
// then saw 32 calls in one second at a sandbox starved of CPU, and 12 answers 429: the margin is kept.)
// Once a second process asks, granted or not, the window counts as shared until a whole window has passed
// without one, and a grant then takes at most half of the room left, so two processes whose refusals end at the
// same moment both get calls (the first to ask would otherwise take it all, every time).
//
// The count is kept beside the rows so that a grant costs the same however many rows the window holds. A count
// that no longer matches the rows (an operator's DELETE, an older version of the service during a rolling
// upgrade) would refuse everyone or let too many through: the stores count the rows again whenever the answer
// depends on it (`recount`: a refusal or a partial grant, and the moment the window becomes shared) and decide
// again with the rows' count.

export interface BudgetState {
  /** reservations still in the window */
  inWindow: number
  /** the process that was last granted a call, null before any */
  lastHolder: string | null
  /** until when (epoch ms) the window counts as shared */
  sharedUntilMs: number
}

export interface BudgetAsk {
  limit: number
  windowMs: number
  wanted: number
  holder: string
  now: number
}

/** How long a refused process waits: until the oldest reservation leaves the window (now, when none is left), never longer. */
export function retryInMs (oldestMs: number | null, ask: Pick<BudgetAsk, 'windowMs' | 'now'>): number {
  return Math.min(ask.windowMs, Math.max(1, (oldestMs ?? ask.now) + ask.windowMs - ask.now))
}

export function decideReservation (state: BudgetState, ask: BudgetAsk): { granted: number, state: BudgetState, recount: boolean } {
  const wanted = Math.max(0, Math.floor(ask.wanted))
  // another process's reservations may be in the window: it is shared for a whole window from now
  const someoneElse = state.inWindow > 0 && state.lastHolder !== ask.holder
  const becomesShared = someoneElse && ask.now >= state.sharedUntilMs
  const sharedUntilMs = someoneElse ? Math.max(state.sharedUntilMs, ask.now + ask.windowMs) : state.sharedUntilMs
  const shared = ask.now < sharedUntilMs
  const room = Math.max(0, ask.limit - state.inWindow)
  const granted = Math.min(wanted, shared ? Math.ceil(room / 2) : room)
  return {
    granted,
    state: {
      inWindow: state.inWindow + granted,
      lastHolder: granted > 0 ? ask.holder : state.lastHolder,
      sharedUntilMs
    },
    recount: becomesShared || granted < wanted
  }
}
