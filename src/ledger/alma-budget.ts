// The rule of the Alma budget shared through the ledger (SPEC 11: ALMA_RATE_LIMIT holds for every process
// together), the same for both stores; each store keeps, per budget key, the reservations in the window, their
// count, which process reserved last and until when the window is shared.
//
// Every process takes a slot of its own limiter first (src/alma/rate-limit.ts: at most the limit in any 1.15 s
// by the time each request is written, and a call answered later than the fastest holds its slot longer by as
// much, so an Alma that stops reading and then reads its backlog at once is not handed a second one), then
// asks here. A process alone on the key (nobody else has reserved within the window) is granted what it asks
// for: its own limiter is the bound, so one instance keeps the whole budget. Once another process asks, granted
// or not, the window is shared until a whole window has passed without a second process: then every grant
// counts the window's reservations, whoever made them, against the limit (the window is longer than a second:
// processes delayed differently cannot bunch their calls at Alma), and takes at most half of the room left, so
// two processes whose refusals end at the same moment both get calls (the first to ask would otherwise take it
// all, every time). Every grant is recorded either way, so a newcomer counts what the process alone has spent
// and waits for room.
//
// A call held until told over (src/alma/rate-limit.ts: Alma may read it long after it was reserved) is a
// reservation whose time is put ahead, to its bound less a window, and moved back when the call's end is told,
// to when Alma read it at the latest: the window counts it until a window after that. Never moved later than it
// was put, so a process that asks of a window shared with another counts it shared until every reservation in it,
// held ones too, has left it (`latestAtMs`): the other process may not ask again before its held calls are over
// (stalled, or waiting for a paused Alma), and would not make the window shared again by asking.
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
  /**
   * the latest reservation time in the window (epoch ms; a call held until told over is put ahead: see the
   * stores): read only when another process may have reservations in it (`othersMayHold`)
   */
  latestAtMs?: number | null
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

/** Another process's reservations may be in the window: the store reads the latest reservation time for the decision. */
export function othersMayHold (state: BudgetState, holder: string): boolean {
  return state.inWindow > 0 && state.lastHolder !== holder
}

export function decideReservation (state: BudgetState, ask: BudgetAsk): { granted: number, state: BudgetState, recount: boolean } {
  const wanted = Math.max(0, Math.floor(ask.wanted))
  // Another process's reservations may be in the window: it is shared for a whole window from now, and until
  // every reservation in it has left it (a call held until it is told over may count far longer than a window;
  // its process may not ask again before then, stalled, or waiting for Alma's answers).
  const someoneElse = othersMayHold(state, ask.holder)
  const becomesShared = someoneElse && ask.now >= state.sharedUntilMs
  const sharedUntilMs = someoneElse ? Math.max(state.sharedUntilMs, ask.now + ask.windowMs, (state.latestAtMs ?? 0) + ask.windowMs) : state.sharedUntilMs
  const shared = ask.now < sharedUntilMs
  const room = Math.max(0, ask.limit - state.inWindow)
  const granted = shared ? Math.min(wanted, Math.ceil(room / 2)) : wanted
  return {
    granted,
    state: {
      ...state,
      inWindow: state.inWindow + granted,
      lastHolder: granted > 0 ? ask.holder : state.lastHolder,
      sharedUntilMs
    },
    recount: becomesShared || (shared && granted < wanted)
  }
}
