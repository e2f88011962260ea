// The payments ledger (DATABASE_PATH; a campus's own, SPEC 12), opened at start-up and closed after the posting worker has stopped.

import fp from 'fastify-plugin'
import type { Ledger } from '../../../ledger/ledger.ts'
import { openLedger } from '../../../ledger/open.ts'

declare module 'fastify' {
  interface FastifyInstance {
    ledger: Ledger
  }
}

export default fp(async function ledger (fastify) {
  // a campus of a system deployment: its own store (src/ledger/open.ts)
  const ledger = openLedger(fastify.config, fastify.config.campus)
  fastify.decorate('ledger', ledger)
  fastify.addHook('onClose', async () => { await ledger.close() })
}, { name: 'ledger', dependencies: ['config'] })
