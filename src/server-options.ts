// Fastify's own options for this service (what the server accepts and how it logs a request), in one place
// for the entry point (src/server.ts) and for buildApp, which the tests and the demo use.

import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Config } from './config.ts'

/** The largest request body any route reads (the forms; the postback and the return route ask for less). */
export const BODY_LIMIT = 64 * 1024

/**
 * One line per request, written when the answer has gone, with method, path, status and time together, where
 * Fastify writes two (the request when it arrives, the status when it is answered). Half the lines to write and
 * to read; every other Fastify log line is unchanged.
 */
class OneLinePerRequest extends LogController {
  incomingRequest (): void {}

  requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error !== null && error !== undefined) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}

export function serverOptions (config: Pick<Config, 'trustProxy'>, logger: Logger): FastifyServerOptions {
  return {
    loggerInstance: logger as FastifyBaseLogger,
    trustProxy: config.trustProxy.length > 0 ? [...config.trustProxy] : false,
    bodyLimit: BODY_LIMIT,
    // a slow client may not hold a connection open for minutes (Node's default is 300 s)
    requestTimeout: 30_000,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // our own ids only: a client-chosen id could be made to collide with another request's log lines
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    logController: new OneLinePerRequest(),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 200 }
  }
}
