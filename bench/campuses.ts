// The cost of hosting many campuses in one process (issue 16): the fines page of one campus, and the service's
// resident memory, with 20 campuses configured (CAMPUSES_FILE) against one campus from the environment. Goal:
// page latency within 5% and memory within +20 MB. Both runs use the compiled service with the Alma budget
// lifted (bench/lib/service.mjs), the same Alma sandbox process (no latency) and the same patrons; the runs
// alternate one, twenty, one, twenty to spread the shared machine's noise over both.
//
// Memory is the resident set after a full GC (bench/lib/gc-probe.mjs, preloaded by the bench only), idle after
// start-up and again after the run: what the campuses keep. RSS read at an arbitrary moment also counts garbage
// the next collection frees, and twenty campuses' start-up leaves about twenty times the plugin registration's
// garbage, so an uncollected reading compared GC timing more than campuses (the note keeps those readings).
// bench/lib/campus-memory.ts splits the per-campus cost by kind.
//
// Run only this: `node --import tsx bench/campuses.ts` (BENCH_QUICK=1 for a short check; BENCH_NO_BUILD=1 when
// dist/ is current). `npm run bench` runs it too, as its last section (bench/run.ts imports campusesBench).

import { execSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { SANDBOX_COOKIE_SECRET } from '../src/sandbox/stack.ts'
import { cannon, type CannonResult, round } from './lib/load.ts'
import { patrons } from './lib/patrons.ts'
import { forkReady, freePort, procStats, startService } from './lib/procs.ts'
import type { Row } from './table.ts'
import { benchCampusEnv, benchCampusHeaders } from './lib/campus-env.ts'

const CAMPUSES = 20

export async function campusesBench (options: { quick: boolean, record: (row: Row) => void, log: (text: string) => void }): Promise<Record<string, unknown>> {
  const secs = (s: number): number => options.quick ? Math.max(2, Math.round(s / 4)) : s
  const work = mkdtempSync(join(tmpdir(), 'alma-cashnet-bench-campuses-'))
  const alma = await forkReady(new URL('../src/sandbox/alma-process.ts', import.meta.url).pathname, { PORT: String(await freePort()) })
  await alma.call('faults', { latencyMs: 0, perSecondThreshold: 1e9 })
  const users = patrons('bench-campus-', 500, 3)
  await alma.call('addUsers', users)
  let next = 0

  const campus = (id: string): Record<string, string> => benchCampusEnv(alma.url, id)
  const processEnv = (port: number, name: string): Record<string, string> => ({
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    COOKIE_SECRET: SANDBOX_COOKIE_SECRET,
    LOG_LEVEL: 'info',
    DATABASE_PATH: join(work, name, 'payments.sqlite'),
    BENCH_ALMA_RATE_LIMIT: '100000'
  })
  const file = join(work, 'campuses.json')
  writeFileSync(file, JSON.stringify({ campuses: Object.fromEntries(Array.from({ length: CAMPUSES }, (_, i) => { const id = `campus-${String(i + 1).padStart(2, '0')}`; return [id, campus(id)] })) }))

  const configurations = {
    one: { id: '', path: '/', env: (port: number) => ({ ...processEnv(port, 'one'), ...campus('') }) },
    twenty: { id: 'campus-01', path: '/campus-01/', env: (port: number) => ({ ...processEnv(port, 'twenty'), CAMPUSES_FILE: file }) }
  }
  const runs: Record<'one' | 'twenty', Array<{ page: CannonResult, rssMb: number, rssIdleMb: number, rawMb: number, rawIdleMb: number }>> = { one: [], twenty: [] }
  const memoryFile = join(work, 'memory.json')
  // the resident set after a full GC, in MB, written by the preloaded probe on SIGUSR2
  const collected = async (service: { child: { kill: (signal: NodeJS.Signals) => boolean } }): Promise<number> => {
    rmSync(memoryFile, { force: true })
    service.child.kill('SIGUSR2')
    for (let i = 0; i < 300 && !existsSync(memoryFile); i++) await sleep(100)
    await sleep(100)
    return (JSON.parse(readFileSync(memoryFile, 'utf8')) as { rss: number }).rss
  }
  // three pairs: a page costs ~1.5 ms of CPU here, and the machine's noise between two runs of one configuration is
  // of the order of the 5% the goal allows
  for (const name of ['one', 'twenty', 'one', 'twenty', 'one', 'twenty'] as const) {
    const { id, path, env } = configurations[name]
    const user = (): Record<string, string> => benchCampusHeaders(id, users[next++ % users.length].primaryId)
    execSync(`mkdir -p ${join(work, name)}`)
    const port = await freePort()
    const service = await startService(new URL('./lib/service.mjs', import.meta.url).pathname, { ...env(port), BENCH_MEMORY_FILE: memoryFile }, join(work, `${name}.log`),
      ['--expose-gc', '--import', new URL('./lib/gc-probe.mjs', import.meta.url).pathname])
    await sleep(1000)
    const rawIdleMb = procStats(service.child.pid as number).rssMb
    const rssIdleMb = await collected(service)
    await cannon({ url: `${service.url}${path}`, connections: 10, duration: secs(3), headers: user })
    const page = await cannon({ url: `${service.url}${path}`, connections: 10, duration: secs(10), headers: user })
    const rawMb = procStats(service.child.pid as number).rssMb
    const rssMb = await collected(service)
    await service.stop()
    runs[name].push({ page, rssMb, rssIdleMb, rawMb, rawIdleMb })
    options.log(`campuses: ${name === 'one' ? 'one campus' : `${CAMPUSES} campuses`}: ${page.requestsPerSecond} req/s, mean ${page.latency.mean ?? '?'} ms, p50 / p99 ${page.latency.p50} / ${page.latency.p99} ms, non-2xx ${page.non2xx}, RSS after a GC ${round(rssMb, 0)} MB (idle ${round(rssIdleMb, 0)} MB); uncollected ${round(rawMb, 0)} MB (idle ${round(rawIdleMb, 0)} MB)`)
  }
  alma.child.disconnect()
  rmSync(work, { recursive: true, force: true })

  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length
  const p50 = { one: mean(runs.one.map(r => r.page.latency.p50)), twenty: mean(runs.twenty.map(r => r.page.latency.p50)) }
  const p99 = { one: mean(runs.one.map(r => r.page.latency.p99)), twenty: mean(runs.twenty.map(r => r.page.latency.p99)) }
  const rss = { one: mean(runs.one.map(r => r.rssMb)), twenty: mean(runs.twenty.map(r => r.rssMb)) }
  const idle = { one: mean(runs.one.map(r => r.rssIdleMb)), twenty: mean(runs.twenty.map(r => r.rssIdleMb)) }
  const raw = { one: mean(runs.one.map(r => r.rawMb)), twenty: mean(runs.twenty.map(r => r.rawMb)) }
  const rawIdle = { one: mean(runs.one.map(r => r.rawIdleMb)), twenty: mean(runs.twenty.map(r => r.rawIdleMb)) }
  const failures = [...runs.one, ...runs.twenty].reduce((n, r) => n + r.page.non2xx + r.page.errors, 0)
  // the mean, not the p50: autocannon's percentiles are whole milliseconds, and a page takes 14 ms here, so one
  // millisecond of rounding alone is 7%
  const average = { one: mean(runs.one.map(r => r.page.latency.mean ?? r.page.latency.p50)), twenty: mean(runs.twenty.map(r => r.page.latency.mean ?? r.page.latency.p50)) }
  const ratio = round(average.twenty / average.one, 3)
  options.record({ item: '16', measure: `${CAMPUSES} campuses vs one: fines page mean latency (ms), 10 connections`, value: `${round(average.one, 2)} / ${round(average.twenty, 2)} (${ratio}×)`, unit: 'ms', goal: '≤ 1.05×', pass: ratio <= 1.05 && failures === 0, note: `p50 ${round(p50.one)} / ${round(p50.twenty)} ms, p99 ${round(p99.one)} / ${round(p99.twenty)} ms; req/s ${round(mean(runs.one.map(r => r.page.requestsPerSecond)))} / ${round(mean(runs.twenty.map(r => r.page.requestsPerSecond)))}; ${runs.one.length} runs each, alternating; non-2xx and errors ${failures}` })
  const extra = round(rss.twenty - rss.one, 1)
  options.record({ item: '16', measure: `${CAMPUSES} campuses vs one: resident memory after the run and a GC`, value: `${round(rss.one, 0)} / ${round(rss.twenty, 0)} (+${extra})`, unit: 'MB', goal: '≤ +20 MB', pass: extra <= 20, note: `idle after start-up and a GC ${round(idle.one, 0)} / ${round(idle.twenty, 0)} MB; uncollected: after the run ${round(raw.one, 0)} / ${round(raw.twenty, 0)} MB, 1 s after start-up ${round(rawIdle.one, 0)} / ${round(rawIdle.twenty, 0)} MB` })
  return { runs, average, p50, p99, rss, idle, raw, rawIdle }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.env.BENCH_NO_BUILD !== '1') execSync('npm run -s build', { stdio: 'inherit' })
  const rows: Row[] = []
  const details = await campusesBench({
    quick: process.env.BENCH_QUICK === '1',
    record: (row) => { rows.push(row); process.stdout.write(`  ${row.pass === null ? '  ·  ' : row.pass ? ' pass' : ' MISS'}  ${row.item.padEnd(4)} ${row.measure.padEnd(58)} ${String(row.value).padStart(24)} ${row.unit.padEnd(4)} ${row.goal}  ${row.note ?? ''}\n`) },
    log: (text) => { process.stdout.write(`${text}\n`) }
  })
  if (process.env.BENCH_JSON === '1') process.stdout.write(JSON.stringify({ rows, details }) + '\n')
  process.exit(0)
}
