// The payments ledger (DATABASE_URL, else DATABASE_PATH; a campus's own store, SPEC 12), opened (and migrated) at
// start-up and closed after the posting worker has stopped.

import fp from 'fastify-plugin'
import type { Ledger } from '../../../ledger/ledger.ts'
import { openLedger } from '../../../ledger/open.ts'

declare module 'fastify' {
  interface FastifyInstance {
    ledger: Ledger
  }
}

export default fp(async function ledger (fastify, options: { now?: () => Date }) {
  // a campus of a system deployment (config.campus): its own store (src/ledger/open.ts)
  const ledger = await openLedger(fastify.config, { now: options.now })
  fastify.decorate('ledger', ledger)
  fastify.addHook('onClose', async () => { await ledger.close() })
}, { name: 'ledger', dependencies: ['config'] })
