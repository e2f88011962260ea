// The payments ledger (DATABASE_PATH), opened at start-up and closed after the posting worker has stopped.

import fp from 'fastify-plugin'
import type { Ledger } from '../../../ledger/ledger.ts'
import { SqliteLedger } from '../../../ledger/sqlite/index.ts'

declare module 'fastify' {
  interface FastifyInstance {
    ledger: Ledger
  }
}

export default fp(async function ledger (fastify) {
  const ledger = new SqliteLedger({ path: fastify.config.databasePath })
  fastify.decorate('ledger', ledger)
  fastify.addHook('onClose', async () => { await ledger.close() })
}, { name: 'ledger', dependencies: ['config'] })
