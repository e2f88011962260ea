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
// Alma counts a call when it reads it, somewhere between our writing it and its answer arriving. A margin
// covers ordinary delays, not an Alma (or a sandbox starved of CPU) that stops reading for a while and then
// reads its backlog at once: the calls written before the pause are counted late, beside the calls written
// on time after it (measured: 31 to 40 calls in one second for a limit of 20, test/alma-rate-limit.test.ts).
// So a slot also waits for its answer (the client calls `answered()` when the answer's head arrives): it ends
//
//     a window after the call was written, plus however much longer than the fastest round trip of its
//     method in the last minute this call's round trip took
//
// A call answered as fast as usual ends its slot a window after it was written, as before (the whole
// budget); a call that Alma read late, by the pause, was answered late by as much, and holds its slot that
// much longer, so the calls after it are read a window after it even though it was read late. (Taking off the
// fastest round trip rests on Alma's work on a call and the trips being about as long as the fastest's, to
// within the margin: a call queued behind others at Alma is read a little later than its round trip shows;
// without the margin on this side too, 31 calls in one second were measured.) A call still waiting for its
// answer holds its slot while the fastest round trip is shorter than the window, because its end will come
// after its answer; where the fastest answers take longer (a write under load) it holds from when it is later
// than the fastest by the margin: a stalled Alma stops new calls instead of being handed a second backlog.
// The price: where Alma's answers vary (its work differs from call to call), a call slower than the fastest
// holds its slot longer by the difference, so the budget spent falls below the limit by about the average
// spread (an Alma answering in a steady 300 ms: nothing; answers spread evenly over 200 ms: about 8%). Tried and
// left: the 25th percentile of the last 100 round trips in place of the fastest, which spares that spread, but
// with pauses one after another most recent calls were late and the percentile with them: 40 in one second.
//
// Several processes or instances (SPEC 11): Alma counts calls per institution, so the budget is shared. The
// service injects `reserve`, which asks a store every process shares (the ledger) for one call in the window;
// this module knows nothing of that store. A call first takes a slot of this process's own limiter (so this
// process never writes more than the limit in a window, by socket time), then one reservation of the shared
// budget. The calls waiting in this process queue up in order and one question at a time asks the shared store
// for all of them (waiting the time it is told when none is granted): under load, one write of the store
// grants several calls, so the store's cost per call falls as the load rises.
//
// A reservation must count for the other processes as long as the slot counts here, or the promise fails in the
// second Alma reads its backlog. It used to count a fixed window (1.4 s) from when it was granted, while the slot
// here waits for the answer: a call Alma had not read a window after its reservation (Alma paused, or the
// sandbox starved of CPU; or this process stalled between its reservation and writing the request) had left the
// shared window, the other process was granted the room and wrote, and Alma then read both. Measured before this
// at the sandbox, two services, limit 20: 22 calls in one second with the 0.6-1.1 s pauses beside CPU hogs (40
// once seen on a loaded machine), 27 (SQLite) and 28 (PostgreSQL) with 2 s pauses on a quiet one, 40 (20
// answered 429) with a service stopped during Alma's pause, its reserved calls written when it woke; at unit
// level, limit 10, 20 with Alma paused 2 s and 17 with a process stalled 2 s before writing. The extra
// reservation a late answer took then came after Alma had counted the call, and only when there was room.
//
// So the store keeps each call until it is told over: granted, it counts for a bound (ALMA_TIMEOUT_MS and a
// window: its answer comes no later); when it ends, this process tells the store (with its next question, or
// one of its own) how long before then Alma read it at the latest (the fastest round trip of its kind, as for
// the slot here, and no more than its own round trip), and it counts a window from then. A call answered late
// thus counts a window from its late read for every process; one not yet answered counts for every process
// while it waits. What it costs: one more write when calls end while none is waiting (with calls waiting, the
// ends ride on the question); a call whose end is never told (its process killed, the store unable to hear it)
// holds its share of the budget up to ALMA_TIMEOUT_MS and a window. A process alone keeps its whole budget (the
// store grants a lone process what it asks: ../ledger/alma-budget.ts), and healthy processes together theirs
// (their calls are told over within milliseconds of their answers); a process that was lately beside another
// counts the shared window (1.4 s, not this one's 1.15 s) until the other's calls held then have left it.
// Left as it was: the fastest round trip is taken off each process's own answers (less the time this process
// could not hear them: `heldUpSince`), so the ends assume Alma's own part of an answer (its work and the trips)
// takes about as long as the fastest's, to within the shared window's 0.4 s beyond a second: an Alma that turns
// much faster than in the last minute in the very moment it reads a backlog is not covered.

export interface RateSlot {
  /** The request was written to the socket now (or failed before it could be): the slot starts to age. */
  sent: () => void
  /**
   * The call is over: its answer's head arrived now (`responded`), or it ended without one (an error, a
   * timeout). Implies `sent()`. Only an answer's round trip counts towards the fastest; a call that ended
   * without one holds its slot longer by as much as it took longer than the fastest all the same (Alma may
   * have read it late). With a shared budget, tells the store the call is over.
   */
  answered: (responded?: boolean) => void
}

/** A call's method, the kind whose round trips are compared (a write takes Alma longer than a read). */
export type RateLimiter = (kind?: string) => Promise<RateSlot>

/**
 * The shared budget's answer: how many of the calls asked for may go now; none, ask again after retryInMs. A
 * store that keeps each call until it is told over gives each call granted an id, in order (see CallEnd).
 */
export interface Reservation { granted: number, retryInMs: number, ids?: number[] }
/** A call with an id is over: Alma read it `readAgoMs` before now at the latest; it counts a window from then. */
export interface CallEnd { id: number, readAgoMs: number }
/**
 * Asks the budget shared by every process for `wanted` calls now (its limit and window are bound in by the
 * caller), and tells it which calls are over (`ends`, possibly none wanted: only ends to tell).
 */
export type ReserveCall = (wanted: number, ends: CallEnd[]) => Promise<Reservation>

export const WINDOW_MARGIN_MS = 150
/** how long the shared store may take to answer a reservation before it is asked again */
export const RESERVE_DEADLINE_MS = 2000
/** how long a round trip counts towards the fastest of its kind */
const ROUND_TRIPS_KEPT_MS = 60_000
const ROUND_TRIP_SPAN_MS = 10_000

/** A second and the margin, as the limiter counts them (shorter in tests). */
export interface RateTiming { secondMs?: number, marginMs?: number }

export function createRateLimiter (callsPerSecond: number, timing: RateTiming = {}, reserve?: ReserveCall): RateLimiter {
  const secondMs = timing.secondMs ?? 1000
  const marginMs = timing.marginMs ?? WINDOW_MARGIN_MS
  if (reserve === undefined) return localLimiter(callsPerSecond, secondMs, marginMs)
  const shared = sharedBudget(reserve)
  const local = localLimiter(callsPerSecond, secondMs, marginMs)
  return async (kind) => {
    const slot = await local(kind)
    let id: number | undefined
    try {
      id = await shared.take()
    } catch (error) {
      slot.answered() // nothing will be written: let the slot age out like a call that failed
      throw error
    }
    if (id === undefined) return slot
    // The shared store counts this call until it is told when Alma read it at the latest (its answer, less the
    // fastest round trip of its kind, as the slot here), so a call that Alma reads late, or whose answer never
    // comes, holds the other processes' budget as long as it holds this one's.
    const reservation = id
    return {
      sent: slot.sent,
      answered: (responded?: boolean) => {
        const readAgoMs = slot.answered(responded)
        if (readAgoMs !== undefined) shared.end({ id: reservation, readAgoMs })
      }
    }
  }
}

/**
 * The fastest round trip of each kind over about the last minute (ms, kept in 10 s spans: 60-70 s); null when
 * no answer of that kind came in that time. A minute, not a few calls: pauses that come one after another make
 * every recent call slow, and the fastest of those alone would excuse most of a pause (measured: with the last
 * 50 calls, 40 in one second at the sandbox). Not longer: an Alma that has become slower for good (its load, a
 * new route) holds every slot longer by as much, until the fastest of the minute is one of the slower answers.
 */
function roundTrips (): { add: (kind: string, ms: number, at: number) => void, fastest: (kind: string, at: number) => number | null } {
  /** per kind: the fastest of each 10 s, oldest first */
  const spans = new Map<string, Array<{ from: number, fastest: number }>>()
  const prune = (list: Array<{ from: number }>, at: number): void => {
    while (list.length > 0 && at - list[0].from > ROUND_TRIPS_KEPT_MS) list.shift()
  }
  return {
    add: (kind, ms, at) => {
      const list = spans.get(kind) ?? []
      const last = list.at(-1)
      if (last !== undefined && at - last.from < ROUND_TRIP_SPAN_MS) last.fastest = Math.min(last.fastest, ms)
      else list.push({ from: at, fastest: ms })
      prune(list, at)
      spans.set(kind, list)
    },
    fastest: (kind, at) => {
      const list = spans.get(kind)
      if (list === undefined) return null
      prune(list, at)
      if (list.length === 0) return null
      let fastest = Infinity
      for (const span of list) fastest = Math.min(fastest, span.fastest)
      return fastest
    }
  }
}

/** Time for the limiter: monotonic, so a step of the wall clock neither frees every slot at once nor holds them. */
const clock = (): number => performance.now()

/** How often the event loop's lag is looked at (ms). */
const LAG_TICK_MS = 10
/** A hold-up shorter than this is the timer's own jitter, not kept. */
const LAG_NOTED_MS = 2

/**
 * How long this process's event loop was held up (busy, or the process not running: a starved CPU, a stop). A
 * round trip is measured from when the request was written to when its answer was heard; an answer that arrived
 * while the loop was held waited unheard, and that wait is no part of Alma's speed. Taken for Alma's, it made the
 * fastest round trip of a starved process hundreds of ms, and a call Alma read late and answered at once was then
 * said to have been read that long before its answer: it left the window early, here and in the shared store
 * (measured: 31 calls in one second for a limit of 20, two services beside the test suite and CPU hogs). So each
 * round trip counts towards the fastest less the longest hold-up of the loop while it was in flight. One ticker for
 * the process (a timer every 10 ms, not keeping the process alive), started by the first limiter.
 */
const lags = {
  /** hold-ups of LAG_NOTED_MS or more: when each ended and how long it was, oldest first, from `head` */
  ends: [] as number[],
  lengths: [] as number[],
  head: 0,
  lastTick: 0,
  ticker: undefined as NodeJS.Timeout | undefined
}

function watchLag (): void {
  if (lags.ticker !== undefined) return
  lags.lastTick = clock()
  lags.ticker = setInterval(() => {
    const now = clock()
    const heldMs = now - lags.lastTick - LAG_TICK_MS
    lags.lastTick = now
    if (heldMs < LAG_NOTED_MS) return
    lags.ends.push(now)
    lags.lengths.push(heldMs)
    while (lags.head < lags.ends.length && now - lags.ends[lags.head] > ROUND_TRIPS_KEPT_MS) lags.head++
    if (lags.head > 1024 && lags.head * 2 > lags.ends.length) {
      lags.ends.splice(0, lags.head)
      lags.lengths.splice(0, lags.head)
      lags.head = 0
    }
  }, LAG_TICK_MS)
  lags.ticker.unref()
}

/** The longest the event loop was held up between `from` and `now`, a hold-up still going on (no tick since) included. */
function heldUpSince (from: number, now: number): number {
  let longest = Math.max(0, now - lags.lastTick - LAG_TICK_MS)
  for (let i = lags.ends.length - 1; i >= lags.head && lags.ends[i] >= from; i--) longest = Math.max(longest, lags.lengths[i])
  return longest
}

interface Slot {
  kind: string
  /** when the request was written (or the call ended unwritten); null while neither */
  sentAt: number | null
  /** `sent()` stamped sentAt: only then is the time to an answer a round trip */
  written: boolean
  /** the call is over (its end is in `ended`) */
  over: boolean
}

/** A slot of the local limiter: `answered` says, the first time, how long before now Alma read the call at the latest. */
interface LocalSlot { sent: () => void, answered: (responded?: boolean) => number | undefined }

function localLimiter (callsPerSecond: number, secondMs: number, marginMs: number): (kind?: string) => Promise<LocalSlot> {
  const windowMs = secondMs + marginMs
  const trips = roundTrips()
  watchLag()
  /** slots granted whose request is not written yet: held without an end */
  let unsent = 0
  /** written, no answer yet, in the order they were written */
  const inFlight = new Set<Slot>()
  /** when each call that is over stops holding its slot, earliest first */
  const ended: number[] = []
  const waiting: Array<{ kind: string, resolve: (slot: LocalSlot) => void }> = []
  let timer: NodeJS.Timeout | undefined
  let timerAt = Infinity

  /** How many slots count against the budget now, and when the next of them stops counting by time alone. */
  const held = (now: number): { count: number, next: number } => {
    while (ended.length > 0 && ended[0] <= now) ended.shift()
    let count = unsent + ended.length
    let next = ended.length > 0 ? ended[0] : Infinity
    let i = 0
    /** each kind's fastest, looked up once a pass, only when a call has waited past the window (rare) */
    let fastestOf: Map<string, number | null> | undefined
    for (const slot of inFlight) {
      const sentAt = slot.sentAt as number
      if (now < sentAt + windowMs) {
        // this one and every one written after it are inside the window
        count += inFlight.size - i
        next = Math.min(next, sentAt + windowMs)
        break
      }
      // older than the window and still waiting for Alma's answer
      fastestOf ??= new Map()
      let fastest = fastestOf.get(slot.kind)
      if (fastest === undefined) {
        fastest = trips.fastest(slot.kind, now)
        fastestOf.set(slot.kind, fastest)
      }
      if (fastest === null || fastest < windowMs || now - sentAt > fastest + marginMs) count++
      i++
    }
    return { count, next }
  }

  const grant = (kind: string): LocalSlot => {
    const slot: Slot = { kind, sentAt: null, written: false, over: false }
    unsent++
    const sent = (): void => {
      if (slot.sentAt !== null) return
      slot.sentAt = clock()
      slot.written = true
      unsent--
      inFlight.add(slot)
      pump()
    }
    return {
      sent,
      answered: (responded = false) => {
        if (slot.over) return undefined
        const now = clock()
        if (slot.sentAt === null) {
          slot.sentAt = now
          unsent--
        }
        slot.over = true
        inFlight.delete(slot)
        const roundTrip = now - slot.sentAt
        // an answer before the request was known to be written (an early 4xx) is no round trip; nor is the time its
        // answer may have waited unheard while this process's event loop was held up
        if (responded && slot.written) trips.add(slot.kind, Math.max(0, roundTrip - heldUpSince(slot.sentAt, now)), now)
        const fastest = trips.fastest(slot.kind, now) ?? 0
        const late = roundTrip - fastest
        const endsAt = slot.sentAt + windowMs + Math.max(0, late)
        let at = ended.length
        while (at > 0 && ended[at - 1] > endsAt) at--
        ended.splice(at, 0, endsAt)
        pump()
        // Alma read it no later than the fastest round trip before its answer (and not before it was written)
        return Math.min(fastest, roundTrip)
      }
    }
  }

  const pump = (): void => {
    if (waiting.length === 0) return
    const now = clock()
    let { count, next } = held(now)
    while (waiting.length > 0 && count < callsPerSecond) {
      const call = waiting.shift() as { kind: string, resolve: (slot: LocalSlot) => void }
      call.resolve(grant(call.kind))
      count++
    }
    // Time frees a slot written or over; one not yet written, or waiting for its answer, frees room when that
    // happens (pump again then).
    if (waiting.length > 0 && next !== Infinity && next < timerAt) {
      if (timer !== undefined) clearTimeout(timer)
      timerAt = next
      timer = setTimeout(() => { timer = undefined; timerAt = Infinity; pump() }, Math.max(1, next - now + 1))
    }
  }

  return async (kind = '') => await new Promise<LocalSlot>(resolve => {
    waiting.push({ kind, resolve })
    pump()
  })
}

/**
 * A question to the shared store unanswered after RESERVE_DEADLINE_MS (a database connection gone half-open
 * answers nothing for minutes, and every call of this process waits behind it) counts as none granted: ask
 * again. A reservation that commits after all is only a call's share of the budget wasted, which is safe.
 */
async function withDeadline (asked: Promise<Reservation>): Promise<Reservation | null> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<null>(resolve => { timer = setTimeout(() => { resolve(null) }, RESERVE_DEADLINE_MS) })
  asked.catch(() => {}) // a late failure, after the deadline answered, is nobody's
  try {
    return await Promise.race([asked, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Calls wait in this process's order; one question asks for all of them, so the limit holds across processes,
 * and tells the ends of the calls over since the last question (one write for both). `take` resolves with the
 * call's id when the store gives one.
 */
function sharedBudget (reserve: ReserveCall): { take: () => Promise<number | undefined>, end: (end: CallEnd) => void } {
  const waiting: Array<{ resolve: (id: number | undefined) => void, reject: (error: unknown) => void }> = []
  const ends: CallEnd[] = []
  let asking = false

  const pump = async (): Promise<void> => {
    if (asking) return
    asking = true
    try {
      // the calls starting together (a page's two) ask in one question: wait until the work now running has
      // queued its calls (a synchronous store would otherwise be asked once per call)
      await new Promise(resolve => { process.nextTick(resolve) })
      while (waiting.length > 0 || ends.length > 0) {
        const told = ends.splice(0)
        let answer: Reservation | null
        try {
          answer = await withDeadline(reserve(waiting.length, told))
        } catch (error) {
          // the shared budget cannot be asked: this call fails (a typed failure for its caller), the next asks again;
          // the ends are told again with the next question (told twice, the first the store heard stands)
          ends.unshift(...told)
          if (waiting.length === 0) break
          waiting.shift()?.reject(error)
          continue
        }
        if (answer === null) {
          // no answer by the deadline: none granted, the ends told again (a grant committed after all is a call's
          // share of the budget held until the store's bound for a call never told over: safe)
          ends.unshift(...told)
          await new Promise(resolve => setTimeout(resolve, 1))
          continue
        }
        const granted = Math.min(answer.granted, waiting.length)
        if (granted > 0) {
          waiting.splice(0, granted).forEach((call, i) => { call.resolve(answer.ids?.[i]) })
        } else if (waiting.length > 0 && ends.length === 0) {
          await new Promise(resolve => setTimeout(resolve, Math.max(1, answer.retryInMs)))
        }
      }
    } finally {
      asking = false
    }
  }

  return {
    take: async () => await new Promise<number | undefined>((resolve, reject) => {
      waiting.push({ resolve, reject })
      void pump()
    }),
    end: (end) => {
      ends.push(end)
      void pump()
    }
  }
}
