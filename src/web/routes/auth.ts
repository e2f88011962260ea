// Placeholder registered by app.ts; its owner replaces this file.

import type { FastifyPluginAsync } from 'fastify'

const plugin: FastifyPluginAsync = async () => {}

export default plugin
