// Receipt e-mails (RECEIPT_EMAIL=on): the composer the posting and the postback hand to the ledger, which writes
// a payment's receipt to its outbox in the same transaction as the change to POSTED or NEEDS_ATTENTION; and the
// outbox sender, which delivers it through SMTP_URL. The sender starts when the app is ready and stops on close,
// before the ledger closes (onClose hooks run last-registered first). Off: no composer, no sender, no e-mail.

import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import type { Ledger } from '../../../ledger/ledger.ts'
import type { ComposeMessages } from '../../../ledger/types.ts'
import { createOutboxSender, type OutboxSender, type OutboxStore } from '../../../payments/outbox.ts'
import { receiptComposer } from '../../../payments/receipts.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** what a state change writes to the outbox; undefined when RECEIPT_EMAIL is off */
    receiptMessages: ComposeMessages | undefined
    /** the outbox sender; undefined when RECEIPT_EMAIL is off */
    outboxSender: OutboxSender | undefined
  }
}

export interface ReceiptSenderOptions {
  /** how often the outbox is looked at (default 5000 ms; tests make it short) */
  outboxPollMs?: number
  /** first retry after a failed delivery, doubling up to outboxRetryMaxMs (defaults 30 s and 1 hour) */
  outboxRetryBaseMs?: number
  outboxRetryMaxMs?: number
}

/** The ledger as the sender's store. */
export function ledgerOutbox (ledger: Ledger): OutboxStore {
  return {
    claimDue: async (now, limit, leaseUntil) => await ledger.claimDueMessages(now, limit, leaseUntil),
    markSent: async (id, at) => { await ledger.markMessageSent(id, at) },
    markFailed: async (id, failure) => { await ledger.markMessageFailed(id, failure) }
  }
}

export default fp(async function receipts (fastify, options: ReceiptSenderOptions) {
  const { config, ledger } = fastify
  if (!config.receiptEmail) {
    fastify.decorate('receiptMessages', undefined)
    fastify.decorate('outboxSender', undefined)
    return
  }
  const publicUrl = new URL(config.publicUrl)
  fastify.decorate('receiptMessages', receiptComposer({
    branding: {
      libraryName: config.libraryName,
      accentColor: config.accentColor,
      logoUrl: config.libraryLogoUrl,
      publicUrl: config.publicUrl,
      timeZone: config.timeZone
    },
    from: config.receiptEmailFrom,
    libraryCopyTo: config.libraryReceiptCopyTo,
    provider: config.paymentProvider,
    payLinkUrl: config.payLinkUrl
  }))
  const sender = createOutboxSender({
    store: ledgerOutbox(ledger),
    smtpUrl: config.smtpUrl,
    logger: (fastify.log as unknown as Logger).child({ component: 'outbox' }),
    messageIdDomain: publicUrl.hostname,
    pollMs: options.outboxPollMs,
    retryBaseMs: options.outboxRetryBaseMs ?? config.receiptRetryBaseMs,
    retryMaxMs: options.outboxRetryMaxMs ?? config.receiptRetryMaxMs,
    onRun: (result) => { fastify.metrics.receipts(result) }
  })
  fastify.decorate('outboxSender', sender)
  fastify.addHook('onReady', async () => { sender.start() })
  fastify.addHook('onClose', async () => { await sender.stop() })
}, { name: 'receipts', dependencies: ['config', 'ledger', 'metrics'] })
