// Item 6 of the bench until the batch-jobs engineer's bench/jobs-memory.ts exists: export:holds on a generated
// 200,000-user "Export user blocks" file and export:fines on a 200,000-row Analytics report (sandbox, 1000-row
// pages), each run as `npm run`'s own command line in a child process, timed, its peak resident memory read
// by /usr/bin/time (the kernel's maxrss). Prints a table, then one JSON line for bench/run.ts.
// BENCH_BATCH_USERS / BENCH_BATCH_ROWS shrink the inputs (for checking the bench itself).

import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AlmaSandbox } from '../src/sandbox/alma.ts'
import { addAnalytics } from '../src/sandbox/analytics.ts'
import { SANDBOX_API_KEY } from '../src/sandbox/stack.ts'
import { generatedPatrons, writeUsersExport } from '../src/sandbox/users-export.ts'

const USERS = Number(process.env.BENCH_BATCH_USERS ?? 200_000)
const ROWS = Number(process.env.BENCH_BATCH_ROWS ?? 200_000)
const work = mkdtempSync(join(tmpdir(), 'alma-cashnet-batch-'))
const root = new URL('..', import.meta.url).pathname

interface JobFigure { seconds: number, peakRssMb: number, input: string }

/** Runs a script under /usr/bin/time; returns wall seconds and the child's peak resident memory. */
function measured (script: string, args: string[], env: Record<string, string>): { seconds: number, peakRssMb: number } {
  const started = performance.now()
  // As the npm scripts run the jobs: with a 128 MB heap budget (package.json).
  const child = spawnSync('/usr/bin/time', ['-f', 'MAXRSS_KB=%M', process.execPath, '--max-old-space-size=128', script, ...args], {
    cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 240_000, maxBuffer: 64 * 1024 * 1024
  })
  const seconds = (performance.now() - started) / 1000
  const kb = Number(/MAXRSS_KB=(\d+)/.exec(child.stderr ?? '')?.[1] ?? NaN)
  if (child.status !== 0) throw new Error(`${script} exited ${child.status}: ${String(child.stderr).slice(-600)}`)
  return { seconds, peakRssMb: kb / 1024 }
}

const results: Record<string, JobFigure> = {}

// export:holds
const usersFile = join(work, 'users-export.xml')
const written = await writeUsersExport(usersFile, generatedPatrons(USERS))
const holds = measured('dist/scripts/export-holds.js', [
  '--users', usersFile, '--out', join(work, 'holds-out'), '--state', join(work, 'holds-state'), '--date', '2026-12-01',
  '--institution', 'SPRNG', '--srvc-ind-cd', 'LIB', '--srvc-ind-reason', 'FINES'
], {})
results['export:holds'] = { seconds: Math.round(holds.seconds * 10) / 10, peakRssMb: Math.round(holds.peakRssMb), input: `${written} users, ${Math.round(statSync(usersFile).size / 2 ** 20)} MB XML` }

// export:fines against the Analytics sandbox
const alma = new AlmaSandbox({ apiKey: SANDBOX_API_KEY, users: [] })
const analytics = addAnalytics(alma)
const rows: string[][] = []
for (let i = 1; i <= ROWS; i++) rows.push([`9${String(i).padStart(8, '0')}`, `patron${i}`, `${(i % 97) + 1}.${String(i % 100).padStart(2, '0')}`, 'USD'])
analytics.reports.set('/shared/Bench/Fines', { columns: ['Identifier Value', 'Primary Identifier', 'Remaining Amount', 'Currency'], rows })
await alma.start()
mkdirSync(join(work, 'fines-out'), { recursive: true })
try {
  // The sandbox answers in this process, so the child's requests are served while spawnSync waits: run it async.
  const started = performance.now()
  const stderr = await new Promise<string>((resolve, reject) => {
    // As `npm run export:fines` runs it: the heap cap makes V8 collect each page's parse tree instead of keeping
    // 250 MB of it because nothing else wants the memory (live data for 200,000 patrons fits in under 96 MB).
    const child = spawn('/usr/bin/time', ['-f', 'MAXRSS_KB=%M', process.execPath, '--max-old-space-size=128', 'dist/scripts/export-fines.js',
      '--out', join(work, 'fines-out'), '--date', '2026-12-01', '--report', '/shared/Bench/Fines', '--page-size', '1000',
      '--alma-url', alma.baseUrl, '--alma-key', SANDBOX_API_KEY], { cwd: root, env: process.env, stdio: ['ignore', 'ignore', 'pipe'] })
    let text = ''
    child.stderr.on('data', (c) => { text += String(c) })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 240_000)
    child.on('exit', (code) => { clearTimeout(timer); if (code === 0) resolve(text); else reject(new Error(`export:fines exited ${code}: ${text.slice(-600)}`)) })
  })
  const kb = Number(/MAXRSS_KB=(\d+)/.exec(stderr)?.[1] ?? NaN)
  results['export:fines'] = { seconds: Math.round((performance.now() - started) / 100) / 10, peakRssMb: Math.round(kb / 1024), input: `${ROWS} Analytics rows, ${Math.ceil(ROWS / 1000)} pages of 1000` }
} finally {
  await alma.close()
  rmSync(work, { recursive: true, force: true })
}

for (const [job, figure] of Object.entries(results)) {
  process.stdout.write(`${job.padEnd(14)} ${String(figure.seconds).padStart(6)} s  peak ${String(figure.peakRssMb).padStart(4)} MB  (goal ≤ 200 MB) ${figure.peakRssMb <= 200 ? 'pass' : 'MISS'}  ${figure.input}\n`)
}
process.stdout.write(JSON.stringify(results) + '\n')
