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
}

interface Results {
  ranAt: string
  seconds: number
  machine: { cpu: string, cores: number, memoryGb: number, node: string, sqliteCommitMs: number }
  loadAverages: Array<{ load1: number }>
  rows: Row[]
}

export const START = '<!-- bench:table:start -->'
export const END = '<!-- bench:table:end -->'

export function markdownTable (results: Results): string {
  const loads = results.loadAverages.map(l => l.load1)
  const misses = results.rows.filter(r => r.pass === false).length
  const lines = [
    `Run ${results.ranAt.slice(0, 16).replace('T', ' ')} UTC in ${results.seconds} s: ${results.machine.cpu}, ${results.machine.cores} cores, ` +
      `${results.machine.memoryGb} GB, Node ${results.machine.node.replace(/^v/, '')}, load average ${Math.min(...loads)}–${Math.max(...loads)} ` +
      `during the sections; one durable SQLite commit took ${results.machine.sqliteCommitMs} ms. ${results.rows.length} figures, ${misses} marked miss.`,
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
