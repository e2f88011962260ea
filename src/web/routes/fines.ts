// GET /: the patron's fines, read from Alma with the user and the fees fetched at the same time.

import type { FastifyPluginAsync } from 'fastify'
import { almaFor } from '../alma-logging.ts'
import { finesPage } from '../views/fines.ts'
import { whyNotPayable } from '../../payments/payable.ts'

const fines: FastifyPluginAsync = async (fastify) => {
  const { config } = fastify
  fastify.get('/', { config: { access: 'patron', root: './' } }, async (request, reply) => {
    const username = (request.patron as { username: string }).username
    const [user, feeList] = await Promise.all([almaFor(request).getUser(username), almaFor(request).listActiveFees(username)])
    const fees = feeList.fees
      .map(fee => ({ fee, notPayable: whyNotPayable(fee, config) }))
      .sort((a, b) => a.fee.creationTime.localeCompare(b.fee.creationTime) || a.fee.id.localeCompare(b.fee.id))
    return reply.type('text/html; charset=utf-8').send(finesPage({
      branding: config,
      user,
      fees,
      currency: config.currency,
      csrfToken: reply.generateCsrf(),
      minPayment: config.minPayment
    }))
  })
}

export default fines
