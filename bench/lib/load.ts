// Load generators: autocannon for the patron page (closed loop, or a fixed overall rate), and a small open-loop
// generator for things autocannon cannot do here (a chosen source address for CashNet's postbacks, multi-step
// patron journeys). Every run is bounded in count and in time.

import autocannon from 'autocannon'
import { Agent, request as httpRequest } from 'node:http'

export interface Latency {
  samples: number
  p50: number
  p99: number
  max: number
  /** the mean in ms with its fraction (autocannon's percentiles are whole milliseconds); where measured */
  mean?: number
}

export function percentiles (values: number[]): Latency {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number): number => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]
  return { samples: sorted.length, p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted[sorted.length - 1] ?? NaN) }
}

export function round (n: number, digits = 1): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

export interface CannonResult {
  requestsPerSecond: number
  completed: number
  non2xx: number
  errors: number
  timeouts: number
  latency: Latency
}

export interface CannonOptions {
  url: string
  connections: number
  /** seconds; or amount */
  duration?: number
  amount?: number
  overallRate?: number
  headers?: () => Record<string, string>
  timeoutSeconds?: number
  /**
   * Seconds of the same run (the same connections) left out of the figures, which then cover the `duration`
   * after them: autocannon opens every connection at the same instant, so a run's first round is N patrons
   * arriving together, not N patrons back to back; a separate warm-up run would start that way again.
   */
  warmupSeconds?: number
  /** called when the measured part of a run with `warmupSeconds` begins (to read CPU counters there) */
  onMeasureStart?: () => void
}

/** autocannon's request list: a GET of the URL's path with fresh headers for each request (the patron rotates). */
function pageRequests (options: CannonOptions): unknown[] | undefined {
  const headers = options.headers
  if (headers === undefined) return undefined
  return [{ method: 'GET', path: new URL(options.url).pathname, setupRequest: (req: any) => ({ ...req, headers: { ...req.headers, ...headers() } }) }]
}

export async function cannon (options: CannonOptions): Promise<CannonResult> {
  if (options.warmupSeconds !== undefined) return await cannonAfterWarmup(options, options.warmupSeconds)
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.amount === undefined ? options.duration ?? 10 : undefined,
    amount: options.amount,
    overallRate: options.overallRate,
    timeout: options.timeoutSeconds ?? 30,
    requests: pageRequests(options)
  } as any)
  const l = result.latency as any
  return {
    requestsPerSecond: round(result.requests.total / Math.max(0.001, (Date.parse(String(result.finish)) - Date.parse(String(result.start))) / 1000)),
    completed: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latency: { samples: result.requests.total, p50: l.p50, p99: l.p99, max: l.max, mean: round(Number(l.average), 2) }
  }
}

/** One autocannon run of warm-up plus duration; the figures from the answers that arrive after the warm-up. */
async function cannonAfterWarmup (options: CannonOptions, warmupSeconds: number): Promise<CannonResult> {
  const measured: number[] = []
  let non2xx = 0
  let measuring = false
  let startedAt = 0
  const timer = setTimeout(() => { measuring = true; startedAt = performance.now(); options.onMeasureStart?.() }, warmupSeconds * 1000)
  const result = await new Promise<any>((resolve, reject) => {
    const instance = (autocannon as any)({
      url: options.url,
      connections: options.connections,
      duration: warmupSeconds + (options.duration ?? 10),
      timeout: options.timeoutSeconds ?? 30,
      requests: pageRequests(options)
    }, (error: Error | null, done: unknown) => { if (error !== null && error !== undefined) reject(error); else resolve(done) })
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (!measuring) return
      measured.push(responseTime)
      if (statusCode < 200 || statusCode >= 300) non2xx++
    })
  })
  clearTimeout(timer)
  const seconds = Math.max(0.001, (performance.now() - startedAt) / 1000)
  const latency = percentiles(measured)
  return {
    requestsPerSecond: round(measured.length / seconds),
    completed: measured.length,
    non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latency: { ...latency, mean: round(measured.reduce((a, b) => a + b, 0) / Math.max(1, measured.length), 2) }
  }
}

export interface HttpAnswer { status: number, headers: Record<string, string | string[] | undefined>, body: string, ms: number }

/** One request over a keep-alive agent (which fixes the source address), timed. */
export async function send (agent: Agent, url: string, options: { method?: string, headers?: Record<string, string>, body?: string, timeoutMs?: number } = {}): Promise<HttpAnswer> {
  const target = new URL(url)
  const started = performance.now()
  return await new Promise<HttpAnswer>((resolve) => {
    const req = httpRequest({
      agent,
      host: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      method: options.method ?? 'GET',
      headers: {
        ...(options.body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(options.body)) } : {}),
        ...options.headers
      }
    }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: performance.now() - started }) })
    })
    req.setTimeout(options.timeoutMs ?? 30_000, () => { req.destroy(new Error('timeout')) })
    req.on('error', (error) => { resolve({ status: 0, headers: {}, body: error.message, ms: performance.now() - started }) })
    req.end(options.body)
  })
}

export function agentFrom (localAddress: string, maxSockets = 256): Agent {
  return new Agent({ keepAlive: true, maxSockets, localAddress } as any)
}

/**
 * Open loop: starts task(i) at a fixed rate for `count` tasks (or until `seconds` pass), whatever the earlier
 * ones are doing, so a slow answer cannot slow the arrivals (no coordinated omission). Waits for all to settle.
 */
export async function openLoop (ratePerSecond: number, count: number, seconds: number, task: (i: number) => Promise<void>): Promise<{ started: number, elapsedMs: number }> {
  const started = performance.now()
  const running: Array<Promise<void>> = []
  let i = 0
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const elapsed = performance.now() - started
      const due = Math.min(count, Math.floor(elapsed * ratePerSecond / 1000) + 1)
      while (i < due) running.push(task(i++).catch(() => {}))
      if (i >= count || elapsed >= seconds * 1000) { resolve(); return }
      setTimeout(tick, Math.max(1, Math.min(20, 1000 / ratePerSecond / 2)))
    }
    tick()
  })
  await Promise.all(running)
  return { started: i, elapsedMs: performance.now() - started }
}

/** Closed loop: `concurrency` workers run tasks back to back until `count` are done or `seconds` pass. */
export async function closedLoop (concurrency: number, count: number, seconds: number, task: (i: number) => Promise<void>): Promise<{ done: number, elapsedMs: number }> {
  const started = performance.now()
  let next = 0
  let done = 0
  const worker = async (): Promise<void> => {
    while (next < count && performance.now() - started < seconds * 1000) {
      const i = next++
      await task(i).catch(() => {})
      done++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { done, elapsedMs: performance.now() - started }
}
