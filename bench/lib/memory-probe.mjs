// Preloaded into the service by the bench only (`node --import`): every second it writes the process's memory
// by kind to BENCH_MEMORY_FILE, so item 7 can say what the resident memory is made of. The service itself carries
// no bench code. Plain JavaScript because the service runs compiled, without a TypeScript loader.

import { writeFileSync } from 'node:fs'
import { getHeapSpaceStatistics } from 'node:v8'

const file = process.env.BENCH_MEMORY_FILE
const mb = (bytes) => Math.round(bytes / 2 ** 20 * 10) / 10

function sample () {
  const usage = process.memoryUsage()
  const spaces = {}
  for (const space of getHeapSpaceStatistics()) spaces[space.space_name] = { size: mb(space.space_size), used: mb(space.space_used_size) }
  writeFileSync(file, JSON.stringify({ at: Date.now(), rss: mb(usage.rss), heapTotal: mb(usage.heapTotal), heapUsed: mb(usage.heapUsed), external: mb(usage.external), arrayBuffers: mb(usage.arrayBuffers), spaces }))
}

if (file !== undefined && file !== '') setInterval(sample, 1000).unref()
