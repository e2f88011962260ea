// Telling staff when money needs a person: a distinct warn line a log watcher can match, and optionally an
// e-mail through SMTP. Sending never blocks a request or a posting.

import type { Logger } from 'pino'
import type { Checkout } from '../ledger/types.ts'
import { formatDecimal } from '../money.ts'
import { providerOf } from './staff-actions.ts'

export interface AlertSettings {
  smtpUrl: string
  to: string
  from: string
  publicUrl: string
}

export interface Alerts {
  needsAttention (checkout: Checkout, reason: string): void
  stuckPaid (checkout: Checkout, minutes: number): void
}

export function createAlerts (logger: Logger, settings: AlertSettings): Alerts {
  let transport: Promise<{ sendMail: (m: object) => Promise<unknown> }> | undefined
  const mail = (subject: string, text: string): void => {
    if (settings.smtpUrl === '' || settings.to === '') return
    transport ??= import('nodemailer').then(m => m.default.createTransport(settings.smtpUrl))
    transport
      .then(async t => await t.sendMail({ from: settings.from, to: settings.to, subject, text }))
      .catch((error: Error) => { logger.error({ event: 'alert.mail_failed', err: { message: error.message } }, `alert e-mail not sent: ${error.message}; check SMTP_URL`) })
  }
  return {
    needsAttention (checkout, reason) {
      logger.warn({ event: 'payment.needs_attention', checkout: checkout.id, tx: checkout.tx, user: checkout.userId, reason },
        `checkout ${checkout.id} needs attention: ${reason}; see ${settings.publicUrl}/admin/payments/${checkout.id}`)
      mail(`[alma-cashnet] payment needs attention: ${checkout.patronName} ${formatDecimal(checkout.total)}`,
        `Checkout ${checkout.id} (${providerOf(checkout)} tx ${checkout.tx ?? 'none'}) for ${checkout.userId} needs attention:\n${reason}\n\n${settings.publicUrl}/admin/payments/${checkout.id}\n`)
    },
    stuckPaid (checkout, minutes) {
      logger.warn({ event: 'payment.stuck', checkout: checkout.id, tx: checkout.tx, user: checkout.userId, attempts: checkout.attempts, lastError: checkout.lastError },
        `checkout ${checkout.id} paid ${minutes}+ minutes ago and still not posted to Alma (attempts ${checkout.attempts}, last error: ${checkout.lastError ?? 'none'})`)
      mail(`[alma-cashnet] payment not yet in Alma after ${minutes} minutes`,
        `Checkout ${checkout.id} (${providerOf(checkout)} tx ${checkout.tx ?? 'none'}) for ${checkout.userId} was paid but is not yet posted.\nLast error: ${checkout.lastError ?? 'none'}\n\n${settings.publicUrl}/admin/payments/${checkout.id}\n`)
    }
  }
}
