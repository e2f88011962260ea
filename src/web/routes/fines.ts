// GET /: the patron's fines, read from Alma with the user and the fees fetched at the same time, and the
// ledger's payments still being recorded, so that a fee already paid is never offered again.

import type { FastifyPluginAsync } from 'fastify'
import { finesPage } from '../views/fines.ts'
import { feesInProgress, whyNotPayable } from '../../payments/payable.ts'
import { payerOwns, payerPaymentsInProgress, readPayerAccount } from '../../payments/checkout.ts'
import { payerOf } from '../plugins/identity.ts'

const fines: FastifyPluginAsync = async (fastify) => {
  const { config, ledger } = fastify
  fastify.get('/', { config: { access: 'patron', root: './' } }, async (request, reply) => {
    const payer = payerOf(request.patron)
    const { user, feeList } = await readPayerAccount(request.alma, payer)
    const payments = await payerPaymentsInProgress(ledger, payer, user.primaryId)
    const inProgress = feesInProgress(payments)
    const fees = feeList.fees
      .map(fee => ({ fee, notPayable: whyNotPayable(fee, config, inProgress) }))
      .sort((a, b) => a.fee.creationTime.localeCompare(b.fee.creationTime) || a.fee.id.localeCompare(b.fee.id))
    return reply.type('text/html; charset=utf-8').send(finesPage({
      branding: config,
      user,
      fees,
      currency: config.currency,
      csrfToken: reply.generateCsrf(),
      minPayment: config.minPayment,
      partialPayments: config.partialPayments,
      // the receipt is shown only to the username that paid (routes/return.ts)
      inProgress: payments.map(checkout => ({ checkout, receipt: payerOwns(payer, checkout) }))
    }))
  })
}

export default fines
