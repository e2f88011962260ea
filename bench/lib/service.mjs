// The service for the bench's "own cost" runs (items 1 and 2): src/server.ts's start-up, compiled (dist/, as
// `npm start` runs it), with one difference: BENCH_ALMA_RATE_LIMIT lifts the Alma budget above the schema's 25
// per second, so the figures show the service's own cost rather than the budget's queue. Plain JavaScript, like
// what it imports: the service under measurement runs without a TypeScript loader. With WEB_CONCURRENCY above 1
// (issue 15) this process becomes the primary of that many service processes through src/cluster.ts, as
// src/server.ts does.

import cluster from 'node:cluster'
import pino from 'pino'
import { buildApp } from '../../dist/src/app.js'
import { loadCampuses } from '../../dist/src/campuses/config.js'
import { runPrimary } from '../../dist/src/cluster.js'
import { loadConfig } from '../../dist/src/config.js'
import { loggerOptions } from '../../dist/src/log.js'

const lifted = Number(process.env.BENCH_ALMA_RATE_LIMIT ?? '')
const lift = (config) => Number.isFinite(lifted) && lifted > 0 ? { ...config, almaRateLimit: lifted } : config
// with CAMPUSES_FILE, every campus as src/server.ts starts them (bench/campuses.ts), each with the budget lifted
const campuses = loadCampuses(process.env)?.map(c => ({ ...c, config: lift(c.config) }))
const config = campuses === undefined ? lift(loadConfig(process.env)) : campuses[0].config
const logger = pino(loggerOptions(config))
if (config.webConcurrency > 1 && cluster.isPrimary) {
  await runPrimary(config.webConcurrency, logger)
} else {
  const app = await buildApp(config, { logger, campuses })
  await app.listen({ port: config.port, host: config.host })
  logger.info({ event: 'service.started', almaRateLimit: config.almaRateLimit }, `bench service on ${config.host}:${config.port}`)
  process.on('SIGTERM', () => { void app.close().finally(() => process.exit(0)) })
}
