// Where the memory of each campus goes (issue 16): the compiled service (bench/lib/service.mjs) started with a
// CAMPUSES_FILE of 1, 10 and 20 campuses (and once with one campus from the environment), measured after a full
// GC (bench/lib/gc-probe.mjs, `--expose-gc`) when idle after start-up and again after a few fines pages per
// campus. It prints each kind (RSS, V8 heap used and total, code space, external, the native rest: SQLite and
// other malloc) and the cost per extra campus, the slope from 1 to 20 campuses.
//
// Run: `npm run build && node --import tsx bench/lib/campus-memory.ts` (CAMPUS_COUNTS=1,20 to choose;
// REPEAT=n runs of each, median; BENCH_HEAP_SNAPSHOT_DIR=dir to also write
// a heap snapshot of each run, <dir>/<run>.heapsnapshot, after its pages).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { SANDBOX_COOKIE_SECRET } from '../../src/sandbox/stack.ts'
import { patrons } from './patrons.ts'
import { forkReady, freePort, startService } from './procs.ts'
import { benchCampusEnv, benchCampusHeaders } from './campus-env.ts'

const counts = (process.env.CAMPUS_COUNTS ?? '1,10,20').split(',').map(Number)
const snapshots = process.env.BENCH_HEAP_SNAPSHOT_DIR
const PAGES_PER_CAMPUS = 5

interface Sample { rss: number, rssAnon: number, heapTotal: number, heapUsed: number, external: number, arrayBuffers: number, spaces: Record<string, { size: number, used: number }> }

const work = mkdtempSync(join(tmpdir(), 'alma-cashnet-campus-memory-'))
const alma = await forkReady(new URL('../../src/sandbox/alma-process.ts', import.meta.url).pathname, { PORT: String(await freePort()) })
await alma.call('faults', { latencyMs: 0, perSecondThreshold: 1e9 })
const users = patrons('campus-memory-', 50, 3)
await alma.call('addUsers', users)

const campus = (id: string): Record<string, string> => benchCampusEnv(alma.url, id)
const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `campus-${String(i + 1).padStart(2, '0')}`)

async function measure (name: string, n: number | null): Promise<{ idle: Sample, pages: Sample }> {
  const dir = join(work, name)
  mkdirSync(dir, { recursive: true })
  const port = await freePort()
  const memoryFile = join(dir, 'memory.json')
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    COOKIE_SECRET: SANDBOX_COOKIE_SECRET,
    LOG_LEVEL: 'info',
    DATABASE_PATH: join(dir, 'payments.sqlite'),
    BENCH_ALMA_RATE_LIMIT: '100000',
    BENCH_MEMORY_FILE: memoryFile
  }
  if (snapshots !== undefined && snapshots !== '') {
    mkdirSync(snapshots, { recursive: true })
    env.BENCH_HEAP_SNAPSHOT = join(snapshots, `${name}.heapsnapshot`)
  }
  if (n === null) Object.assign(env, campus(''))
  else {
    const file = join(dir, 'campuses.json')
    writeFileSync(file, JSON.stringify({ campuses: Object.fromEntries(ids(n).map(id => [id, campus(id)])) }))
    env.CAMPUSES_FILE = file
  }
  const service = await startService(new URL('./service.mjs', import.meta.url).pathname, env, join(dir, 'service.log'),
    ['--expose-gc', '--import', new URL('./gc-probe.mjs', import.meta.url).pathname])
  const sample = async (): Promise<Sample> => {
    rmSync(memoryFile, { force: true })
    service.child.kill('SIGUSR2')
    for (let i = 0; i < 1200 && !existsSync(memoryFile); i++) await sleep(100)
    await sleep(100)
    return JSON.parse(readFileSync(memoryFile, 'utf8'))
  }
  await sleep(1000)
  const idle = await sample()
  let next = 0
  for (const id of n === null ? [''] : ids(n)) {
    for (let i = 0; i < PAGES_PER_CAMPUS; i++) {
      const answer = await fetch(`${service.url}/${id === '' ? '' : `${id}/`}`, { headers: benchCampusHeaders(id, users[next++ % users.length].primaryId) })
      await answer.text()
      if (answer.status !== 200) throw new Error(`${name}: ${id} answered ${answer.status}`)
    }
  }
  await sleep(500)
  const pages = await sample()
  await service.stop()
  if (process.env.VERBOSE === '1') process.stderr.write(`${name}: idle ${JSON.stringify(kinds(idle))}\n${name}: pages ${JSON.stringify(kinds(pages))}\n`)
  return { idle, pages }
}

const kinds = (s: Sample): Record<string, number> => ({
  rss: s.rss,
  heapUsed: s.heapUsed,
  heapTotal: s.heapTotal,
  code: s.spaces.code_space?.used ?? 0,
  external: s.external,
  arrayBuffers: s.arrayBuffers,
  'native rest': Math.round((s.rss - s.heapTotal - s.external) * 100) / 100
})

// each configuration REPEAT times (default 3), interleaved, keeping the median of each figure: the native rest of
// a run (malloc arenas of the threads, how much of the young generation start-up touched) varies by a few MB
const repeat = Number(process.env.REPEAT ?? '3')
const runs: Record<string, Array<{ idle: Sample, pages: Sample }>> = {}
for (let r = 0; r < repeat; r++) {
  (runs.env ??= []).push(await measure(`env-${r}`, null))
  for (const n of counts) (runs[`${n}`] ??= []).push(await measure(`campuses-${n}-${r}`, n))
}
const median = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]
const medianSample = (samples: Sample[]): Sample => {
  const pick = (get: (s: Sample) => number): number => median(samples.map(get))
  const spaces: Sample['spaces'] = {}
  for (const name of Object.keys(samples[0].spaces)) spaces[name] = { size: pick(s => s.spaces[name]?.size ?? 0), used: pick(s => s.spaces[name]?.used ?? 0) }
  return { rss: pick(s => s.rss), rssAnon: pick(s => s.rssAnon), heapTotal: pick(s => s.heapTotal), heapUsed: pick(s => s.heapUsed), external: pick(s => s.external), arrayBuffers: pick(s => s.arrayBuffers), spaces }
}
const results: Record<string, { idle: Sample, pages: Sample }> = {}
for (const [name, list] of Object.entries(runs)) results[name] = { idle: medianSample(list.map(r => r.idle)), pages: medianSample(list.map(r => r.pages)) }
alma.child.disconnect()
rmSync(work, { recursive: true, force: true })

const print = (when: 'idle' | 'pages'): void => {
  const names = Object.keys(results)
  const header = ['kind (MB)', ...names.map(n => n === 'env' ? 'one (env)' : `${n} campuses`)]
  const lo = Math.min(...counts)
  const hi = Math.max(...counts)
  if (hi > lo) header.push('per campus')
  process.stdout.write(`\n${when === 'idle' ? 'idle after start-up' : `after ${PAGES_PER_CAMPUS} fines pages per campus`}, after a full GC\n`)
  process.stdout.write(header.map(h => h.padStart(16)).join('') + '\n')
  for (const kind of Object.keys(kinds(results.env[when]))) {
    const row = [kind, ...names.map(n => kinds(results[n][when])[kind].toFixed(2))]
    if (hi > lo) row.push(((kinds(results[String(hi)][when])[kind] - kinds(results[String(lo)][when])[kind]) / (hi - lo)).toFixed(3))
    process.stdout.write(row.map(c => c.padStart(16)).join('') + '\n')
  }
}
print('idle')
print('pages')
if (process.env.BENCH_JSON === '1') process.stdout.write(JSON.stringify(results) + '\n')
process.exit(0)
