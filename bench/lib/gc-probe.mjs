// Preloaded into the service by bench/lib/campus-memory.ts only (`node --expose-gc --import`): on SIGUSR2 it runs
// a full garbage collection and writes the process's memory by kind to BENCH_MEMORY_FILE (and, with
// BENCH_HEAP_SNAPSHOT set, a V8 heap snapshot there), so the cost of each campus can be split into V8 heap,
// external and native (SQLite, malloc) memory. The service itself carries no bench code. Plain JavaScript
// because the service runs compiled, without a TypeScript loader.

import { readFileSync, writeFileSync } from 'node:fs'
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8'

const file = process.env.BENCH_MEMORY_FILE
const snapshot = process.env.BENCH_HEAP_SNAPSHOT
const mb = (bytes) => Math.round(bytes / 2 ** 20 * 100) / 100

function sample () {
  for (let i = 0; i < 3; i++) globalThis.gc()
  const usage = process.memoryUsage()
  const status = readFileSync('/proc/self/status', 'utf8')
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)
  const spaces = {}
  for (const space of getHeapSpaceStatistics()) spaces[space.space_name] = { size: mb(space.space_size), used: mb(space.space_used_size) }
  if (snapshot !== undefined && snapshot !== '') writeHeapSnapshot(snapshot)
  writeFileSync(file, JSON.stringify({ rss: mb(usage.rss), rssAnon: kb('RssAnon') / 1024, heapTotal: mb(usage.heapTotal), heapUsed: mb(usage.heapUsed), external: mb(usage.external), arrayBuffers: mb(usage.arrayBuffers), spaces }))
}

if (file !== undefined && file !== '' && typeof globalThis.gc === 'function') process.on('SIGUSR2', sample)
