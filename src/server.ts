// Entry point: configuration from the environment, the logger, Fastify with the service's options and the
// application, listen, and a graceful shutdown on SIGTERM/SIGINT (stop taking requests, let the posting worker
// finish or stop between two fees, close the ledger). With WEB_CONCURRENCY above 1 this process becomes the
// primary of that many service processes (src/cluster.ts), each of which runs the rest of this file.

import cluster from 'node:cluster'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import pino from 'pino'
import application from './app.ts'
import { runPrimary } from './cluster.ts'
import { type Campus, loadCampuses } from './campuses/config.ts'
import { type Config, ConfigError, loadConfig } from './config.ts'
import { loggerOptions } from './log.ts'
import { STOP_MARGIN_MS } from './payments/worker.ts'
import { serverOptions } from './server-options.ts'

let config: Config
// CAMPUSES_FILE: every campus validated at start-up; the process's own variables read from the first campus's
// configuration (they come from the environment only)
let campuses: Campus[] | null
try {
  campuses = loadCampuses(process.env)
  config = campuses === null ? loadConfig(process.env) : campuses[0].config
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`alma-cashnet: ${error.message}\n`)
    process.exit(78)
  }
  throw error
}

// Pretty lines for a person at a terminal, JSON lines for everything else (journald, a log shipper).
const options = loggerOptions(config, campuses?.map(c => c.config))
const logger = process.stdout.isTTY
  ? pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:standard', ignore: 'pid,hostname,service' } } })
  : pino(options)

if (config.webConcurrency > 1 && cluster.isPrimary) {
  await runPrimary(config.webConcurrency, logger)
} else {
  await serve()
}

async function serve (): Promise<void> {
  const app = Fastify(serverOptions(config, logger))
  await app.register(application, { config, campuses: campuses ?? undefined })

  // The posting worker may wait ALMA_TIMEOUT_MS plus a margin for an Alma call in flight; the forced exit comes later.
  closeWithGrace({ delay: config.almaTimeoutMs + STOP_MARGIN_MS + 5000, logger }, async ({ signal, err }) => {
    if (err !== undefined) logger.error({ event: 'service.crashed', err: { message: err.message, stack: err.stack } }, `stopping after an unexpected error: ${err.message}`)
    logger.info({ event: 'service.stopping', signal }, `stopping (${signal ?? 'error'}): finishing requests and postings in progress`)
    await app.close()
  })

  try {
    await app.listen({ port: config.port, host: config.host })
    logger.info({ event: 'service.started', pid: process.pid, port: config.port, host: config.host, authMode: config.authMode, campuses: campuses?.map(c => c.id) }, campuses === null
      ? `alma-cashnet listening on ${config.host}:${config.port} for ${config.publicUrl}`
      : `alma-cashnet listening on ${config.host}:${config.port} for ${campuses.length} campuses: ${campuses.map(c => `${c.id} (${c.config.publicUrl})`).join(', ')}`)
  } catch (error) {
    logger.fatal({ event: 'service.failed', err: { message: (error as Error).message } }, `could not listen on ${config.host}:${config.port}: ${(error as Error).message}`)
    process.exit(1)
  }
}
