// GET /assets/*: the stylesheet and the small scripts, read once at start-up and served from memory.

import { readFileSync, readdirSync } from 'node:fs'
import { extname, join } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'

const TYPES: Record<string, string> = { '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8' }
const FOLDER = join(import.meta.dirname, '..', 'assets')

const assets: FastifyPluginAsync = async (fastify) => {
  const files = new Map<string, { type: string, body: Buffer }>()
  for (const name of readdirSync(FOLDER)) {
    const type = TYPES[extname(name)]
    if (type !== undefined) files.set(name, { type, body: readFileSync(join(FOLDER, name)) })
  }
  fastify.get<{ Params: { name: string } }>('/assets/:name', {
    config: { access: 'public' },
    schema: { params: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } }
  }, async (request, reply) => {
    const file = files.get(request.params.name)
    if (file === undefined) return reply.code(404).type('text/plain; charset=utf-8').send('not found\n')
    return reply.type(file.type).header('cache-control', 'public, max-age=3600').send(file.body)
  })
}

export default assets
