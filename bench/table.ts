// The README's performance table, written from bench/results.json between two markers, so the table a reader
// sees is the one the last full run produced. `npm run bench` calls it at the end of a full run; on its own
// (`node --import tsx bench/table.ts`) it rewrites the README from the results.json that is there.

import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** One figure of the bench: what was measured, its value and goal, and whether it met the goal (null: a reference). */
export interface Row {
  item: string
  measure: string
  value: number | string
  unit: string
  goal: string
  pass: boolean | null
  note?: string
  /** the bench section that measured it (`npm run bench -- --only SECTION` runs it again) */
  section?: string
}

/** A run of some sections only (`--only`): its rows replaced theirs in the last full run's results. */
export interface PartialRun {
  ranAt: string
  only: string[]
  seconds: number
  machine: Record<string, unknown>
  loadAverages: Array<{ section: string, load1: number }>
}

export interface Results {
  ranAt: string
  seconds: number
  machine: { cpu: string, cores: number, memoryGb: number, node: string, sqliteCommitMs: number }
  loadAverages: Array<{ section?: string, load1: number }>
  rows: Row[]
  details?: Record<string, unknown>
  partialRuns?: PartialRun[]
}

/**
 * The results of a run of some sections merged into the last results: each row it measured replaces the row
 * with the same item and measure (or is added), the rows of the sections it ran that it did not measure again
 * go, every other row stays; its details are added; the run itself is listed with its own machine and loads.
 */
export function mergeResults (previous: Results, partial: Results & { machine: Record<string, unknown> }, only: string[]): Results {
  const key = (row: Row): string => `${row.item}\u0000${row.measure}`
  const fresh = new Map(partial.rows.map(row => [key(row), row]))
  const rows: Row[] = []
  for (const row of previous.rows) {
    const again = fresh.get(key(row))
    if (again !== undefined) { rows.push(again); fresh.delete(key(row)) } else if (row.section === undefined || !only.includes(row.section)) rows.push(row)
  }
  rows.push(...fresh.values())
  const run: PartialRun = { ranAt: partial.ranAt, only, seconds: partial.seconds, machine: partial.machine, loadAverages: partial.loadAverages as PartialRun['loadAverages'] }
  // an earlier partial run whose sections were all run again later says nothing about the table any more
  const runs = previous.partialRuns ?? []
  const earlier = runs.filter((p, index) => !p.only.every(section => only.includes(section) || runs.slice(index + 1).some(later => later.only.includes(section))))
  return { ...previous, rows, details: { ...previous.details, ...partial.details }, partialRuns: [...earlier, run] }
}

export const START = '<!-- bench:table:start -->'
export const END = '<!-- bench:table:end -->'

export function markdownTable (results: Results): string {
  const loads = results.loadAverages.map(l => l.load1)
  const misses = results.rows.filter(r => r.pass === false).length
  const lines = [
    `Run ${results.ranAt.slice(0, 16).replace('T', ' ')} UTC in ${results.seconds} s: ${results.machine.cpu}, ${results.machine.cores} cores, ` +
      `${results.machine.memoryGb} GB, Node ${results.machine.node.replace(/^v/, '')}, load average ${Math.min(...loads)}–${Math.max(...loads)} ` +
      `during the sections; one durable SQLite commit took ${results.machine.sqliteCommitMs} ms. ${results.rows.length} figures, ${misses} marked miss.` +
      (results.partialRuns ?? []).map((run, index, runs) => {
        // a section run again later has its rows from the later run
        const still = run.only.filter(section => !runs.slice(index + 1).some(later => later.only.includes(section)))
        if (still.length === 0) return ''
        const partialLoads = run.loadAverages.map(l => l.load1)
        return ` The rows of ${still.join(', ')} are from \`npm run bench -- --only ${run.only.join(',')}\` at ${run.ranAt.slice(0, 16).replace('T', ' ')} UTC ` +
          `(${run.seconds} s, load average ${Math.min(...partialLoads)}–${Math.max(...partialLoads)}).`
      }).join(''),
    '',
    '| item | measure | value | goal | mark |',
    '|---|---|---|---|---|'
  ]
  for (const row of results.rows) {
    const mark = row.pass === null ? 'reference' : row.pass ? 'pass' : '**miss**'
    lines.push(`| ${row.item} | ${row.measure} | ${row.value} ${row.unit}`.trimEnd() + ` | ${row.goal} | ${mark} |`)
  }
  return lines.join('\n')
}

/** Replaces what stands between the markers in the README with the table of these results. */
export function writeReadmeTable (results: Results, readmePath = fileURLToPath(new URL('../README.md', import.meta.url))): void {
  const readme = readFileSync(readmePath, 'utf8')
  const start = readme.indexOf(START)
  const end = readme.indexOf(END)
  if (start === -1 || end < start) throw new Error(`${readmePath} has no ${START} ... ${END} markers for the table`)
  writeFileSync(readmePath, readme.slice(0, start + START.length) + '\n' + markdownTable(results) + '\n' + readme.slice(end))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeReadmeTable(JSON.parse(readFileSync(new URL('./results.json', import.meta.url), 'utf8')) as Results)
  process.stdout.write('README.md: performance table rewritten from bench/results.json\n')
}
