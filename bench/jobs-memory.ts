// Benchmark (not part of npm test): generates an "Export user blocks" file of N users (default 200,000), runs
// export:holds on it twice as cron would (a first run, then a second day against that snapshot) and prints
// the wall time and peak RSS of each child. Usage: node --import tsx bench/jobs-memory.ts [users]
// NODE_OPTIONS is passed on, e.g. NODE_OPTIONS=--max-semi-space-size=2 to see a smaller young generation.

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { generatedPatrons, writeUsersExport } from '../src/sandbox/users-export.ts'

const users = Number(process.argv[2] ?? 200_000)
const root = resolve(import.meta.dirname, '..')
const dir = mkdtempSync(join(tmpdir(), 'jobs-memory-'))
const TIME = '/usr/bin/time'

async function run (date: string, file: string): Promise<{ seconds: number, peakMb: number }> {
  const args = ['--import', 'tsx', join(root, 'scripts', 'export-holds.ts'), '--users', file, '--out', join(dir, 'out'), '--state', join(dir, 'state'), '--date', date, '--block-types', 'FINES']
  const useTime = existsSync(TIME)
  const started = process.hrtime.bigint()
  const child = spawn(useTime ? TIME : process.execPath, useTime ? ['-v', process.execPath, ...args] : args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: process.env.NODE_OPTIONS ?? '', HOLDS_INSTITUTION: 'BENCH', HOLDS_SRVC_IND_CD: 'LIB', HOLDS_SRVC_IND_REASON: 'FINES', HOLDS_ALLOW_MASS_RELEASE: 'yes' },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const code = await new Promise<number>(resolve => child.on('close', resolve))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  if (code !== 0) throw new Error(`export:holds exited ${code}\n${stderr}`)
  const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1] ?? NaN)
  return { seconds, peakMb: kb / 1024 }
}

try {
  const day1 = join(dir, 'day1.xml')
  const day2 = join(dir, 'day2.xml')
  let t0 = Date.now()
  await writeUsersExport(day1, generatedPatrons(users, 1))
  await writeUsersExport(day2, generatedPatrons(users, 2))
  process.stdout.write(`generated 2 x ${users} users (${(statSync(day1).size / 1048576).toFixed(1)} MB each) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`)
  for (const [date, file] of [['2026-10-01', day1], ['2026-10-02', day2]]) {
    t0 = Date.now()
    const { seconds, peakMb } = await run(date, file)
    process.stdout.write(`export:holds ${date}: ${seconds.toFixed(1)} s, peak RSS ${Number.isNaN(peakMb) ? 'n/a (no /usr/bin/time)' : `${peakMb.toFixed(0)} MB`}\n`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
