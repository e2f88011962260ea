// The Alma client seen from one request: its alma.call lines carry the request's reqId and patron.

import type { FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { AlmaClient } from '../alma/client.ts'

export function almaFor (request: FastifyRequest): AlmaClient {
  return request.server.alma.withLogger(request.log as unknown as Logger)
}
