// GET /history: the signed-in patron's own payments from the ledger (by their username, or a pay-link session's
// primary id, exactly and never the one for the other), newest first.

import type { FastifyPluginAsync } from 'fastify'
import { historyPage } from '../views/history.ts'
import { payerOwns, userIdKindOf } from '../../payments/checkout.ts'
import { differencesOf } from '../../payments/receipts.ts'
import { payerOf } from '../plugins/identity.ts'

/** More than any patron pays online in years; the page stays one page. */
const HISTORY_LIMIT = 200

const history: FastifyPluginAsync = async (fastify) => {
  const { config, ledger } = fastify
  fastify.get('/history', { config: { access: 'patron', root: './' } }, async (request, reply) => {
    const payer = payerOf(request.patron)
    const payments = (await ledger.patronPayments(payer.username, HISTORY_LIMIT, userIdKindOf(payer))).filter(checkout => payerOwns(payer, checkout))
    // what the provider reported collecting, where it is not what was due (as the receipts say)
    const differences = await differencesOf(ledger, payments)
    return reply.type('text/html; charset=utf-8').send(historyPage(config, payments, config.timeZone, differences))
  })
}

export default history
