// The payments ledger (DATABASE_URL, else DATABASE_PATH), opened (and migrated) at start-up and closed after the
// posting worker has stopped.

import fp from 'fastify-plugin'
import type { Ledger } from '../../../ledger/ledger.ts'
import { openLedger } from '../../../ledger/open.ts'

declare module 'fastify' {
  interface FastifyInstance {
    ledger: Ledger
  }
}

export default fp(async function ledger (fastify) {
  const ledger = await openLedger(fastify.config)
  fastify.decorate('ledger', ledger)
  fastify.addHook('onClose', async () => { await ledger.close() })
}, { name: 'ledger', dependencies: ['config'] })
