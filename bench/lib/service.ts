// The service for the bench's "own cost" runs: src/server.ts's start-up (validated configuration, JSON logs to
// stdout, buildApp, listen) with one difference: BENCH_ALMA_RATE_LIMIT may lift the Alma budget above the
// schema's 25 per second, so the figures show the service's overhead rather than the budget's queue. The
// production-configuration runs start src/server.ts itself.

import pino from 'pino'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { loggerOptions } from '../../src/log.ts'

const loaded = loadConfig(process.env)
const lifted = Number(process.env.BENCH_ALMA_RATE_LIMIT ?? '')
const config = Number.isFinite(lifted) && lifted > 0 ? { ...loaded, almaRateLimit: lifted } : loaded
const logger = pino(loggerOptions(config))
const app = await buildApp(config, { logger })
await app.listen({ port: config.port, host: config.host })
logger.info({ event: 'service.started', almaRateLimit: config.almaRateLimit }, `bench service on ${config.host}:${config.port}`)
process.on('SIGTERM', () => { void app.close().finally(() => process.exit(0)) })
