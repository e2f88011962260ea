// The framework's limit on this machine: a bare Fastify 5 route, no plugins, no logging, in its own process
// like the service, loaded by the same autocannon client.

import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.get('/', async () => ({ hello: 'world' }))
const url = await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
process.send?.({ ready: url })
process.on('disconnect', () => { void app.close().finally(() => process.exit(0)) })
