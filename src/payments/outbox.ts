// The durable outbox's sender: e-mails are rows written in the same transaction as the event they tell of (a
// payment recorded in Alma), and this loop delivers them through SMTP_URL, retrying with backoff while the mail
// server is down. The store is a small interface the ledger implements; nothing here knows its tables.
//
// Delivery is at least once, and at most twice in one narrow window: a row is claimed (leased), sent, then marked
// sent. If the process dies after the SMTP server accepted a message and before the mark is written, the lease
// runs out and the message is sent again. Every message carries a Message-ID derived only from its row id, so a
// second copy is the same message to any mail system or person that looks (and many clients fold it away).

import { createHash } from 'node:crypto'
import nodemailer from 'nodemailer'
import type SMTPTransport from 'nodemailer/lib/smtp-transport'
import type { Logger } from 'pino'

import type { NewOutboxMessage, OutboxMessage } from '../ledger/types.ts'

// the message types belong to the ledger, which stores them; re-exported for the sender's users
export type { NewOutboxMessage, OutboxMessage }

/**
 * What the sender needs from the store. Implementations may be synchronous (SQLite) or not (PostgreSQL).
 * - `claimDue` returns up to `limit` unsent messages whose next attempt time has come and that no live lease
 *   holds, and leases them until `leaseUntil` in the same transaction (`SELECT … FOR UPDATE SKIP LOCKED` in
 *   PostgreSQL, an UPDATE … RETURNING in SQLite), so two senders never hold the same row at once.
 * - `markSent` records the delivery; the row is never claimed again.
 * - `markFailed` releases the lease and stores `attempts` and the last error; with `nextAttemptAt` null the
 *   store gives up on the row (kept for staff to see), otherwise it becomes due at that time.
 */
export interface OutboxStore {
  claimDue: (now: Date, limit: number, leaseUntil: Date) => OutboxMessage[] | Promise<OutboxMessage[]>
  markSent: (id: string, at: Date) => void | Promise<void>
  markFailed: (id: string, failure: { error: string, attempts: number, nextAttemptAt: Date | null }) => void | Promise<void>
}

export interface OutboxSenderOptions {
  store: OutboxStore
  smtpUrl: string
  logger: Logger
  /** the host part of Message-IDs (PUBLIC_URL's host) */
  messageIdDomain: string
  /** how often to look for due messages (default 5000 ms) */
  pollMs?: number
  /** messages per claim (default 20) */
  batchSize?: number
  /** how long a claim is held: longer than any SMTP exchange can take (default 5 minutes) */
  leaseMs?: number
  /** first retry after this long, doubling up to retryMaxMs (defaults 30 s and 1 hour) */
  retryBaseMs?: number
  retryMaxMs?: number
  /** attempts before giving up on a message (default 30: about a day at the default backoff) */
  maxAttempts?: number
  /** SMTP connection, greeting and socket timeouts (default 15000 ms) */
  smtpTimeoutMs?: number
  /** told what each pass of the loop did (the service's receipts counter) */
  onRun?: (result: RunResult) => void
  now?: () => Date
}

export interface RunResult { sent: number, retrying: number, gaveUp: number }

export interface OutboxSender {
  /** one pass: claim what is due and try each; what the loop calls every pollMs */
  runOnce: () => Promise<RunResult>
  /** look now rather than at the next poll (after enqueueing, once the transaction has committed) */
  wake: () => void
  start: () => void
  /** stops polling and waits for a pass in progress */
  stop: () => Promise<void>
}

/** `<receipt-abc-recorded-patron.1f2e3d4c5b6a@library.example.edu>`: readable where it can be, unique always. */
export function outboxMessageId (id: string, domain: string): string {
  const readable = id.replace(/[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+/g, '.').replace(/^\.+|\.+$/g, '').slice(0, 120)
  const digest = createHash('sha256').update(id).digest('hex').slice(0, 12)
  const host = domain.replace(/[^A-Za-z0-9.-]/g, '') || 'alma-cashnet.invalid'
  return `<${readable === '' ? 'outbox' : readable}.${digest}@${host}>`
}

interface SmtpError extends Error { code?: string, responseCode?: number }

/** The server refused this message for good (a 5xx to the envelope or the data): retrying would only repeat it. */
function isPermanent (error: SmtpError): boolean {
  if (error.code !== 'EENVELOPE' && error.code !== 'EMESSAGE') return false
  return error.responseCode === undefined || (error.responseCode >= 500 && error.responseCode < 600)
}

/** The mail server could not be reached at all: nothing else in this batch will get through either. */
function isUnreachable (error: SmtpError): boolean {
  return ['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ETLS', 'ECONNREFUSED', 'EPROXY'].includes(error.code ?? '')
}

export function createOutboxSender (options: OutboxSenderOptions): OutboxSender {
  const { store, logger } = options
  const pollMs = options.pollMs ?? 5000
  const batchSize = options.batchSize ?? 20
  const leaseMs = options.leaseMs ?? 5 * 60_000
  const retryBaseMs = options.retryBaseMs ?? 30_000
  const retryMaxMs = options.retryMaxMs ?? 3600_000
  const maxAttempts = options.maxAttempts ?? 30
  const timeout = options.smtpTimeoutMs ?? 15_000
  const now = options.now ?? (() => new Date())
  const transport = nodemailer.createTransport({
    url: options.smtpUrl,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    // our HTML is our own, but nothing in a message should ever make the sender read a file or fetch a URL
    disableFileAccess: true,
    disableUrlAccess: true
  } satisfies SMTPTransport.Options)

  const backoff = (attempts: number): number => Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(attempts - 1, 30))

  async function send (message: OutboxMessage): Promise<void> {
    await transport.sendMail({
      from: message.from,
      to: message.to,
      subject: message.subject,
      text: message.text,
      html: message.html,
      messageId: outboxMessageId(message.id, options.messageIdDomain),
      headers: { 'Auto-Submitted': 'auto-generated' }
    })
  }

  async function runOnce (): Promise<RunResult> {
    const result: RunResult = { sent: 0, retrying: 0, gaveUp: 0 }
    const claimedAt = now()
    const messages = await store.claimDue(claimedAt, batchSize, new Date(claimedAt.getTime() + leaseMs))
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]
      // The batch's claim must outlast the send: past its end another process may claim the rest and send them
      // too. A send may take the three SMTP timeouts (connection, greeting, socket), so once less than that is
      // left the rest wait for the claim to lapse and are sent by the next pass, here or elsewhere.
      if (now().getTime() + 3 * timeout > claimedAt.getTime() + leaseMs) {
        logger.info({ event: 'outbox.deferred', messages: messages.length - i }, `${messages.length - i} e-mail(s) left for the next pass: this batch's claim is running out (a slow mail server)`)
        break
      }
      try {
        await send(message)
      } catch (err) {
        const error = err as SmtpError
        const attempts = message.attempts + 1
        const detail = `${error.code ?? 'error'}${error.responseCode !== undefined ? ` ${error.responseCode}` : ''}: ${error.message}`
        if (isPermanent(error) || attempts >= maxAttempts) {
          await store.markFailed(message.id, { error: detail, attempts, nextAttemptAt: null })
          result.gaveUp++
          logger.error({ event: 'outbox.gave_up', outbox: message.id, attempts, err: { message: detail } },
            `e-mail ${message.id} not sent and given up after ${attempts} attempt(s): ${detail}`)
          continue
        }
        const nextAttemptAt = new Date(now().getTime() + backoff(attempts))
        await store.markFailed(message.id, { error: detail, attempts, nextAttemptAt })
        result.retrying++
        logger.warn({ event: 'outbox.retry', outbox: message.id, attempts, nextAttemptAt: nextAttemptAt.toISOString(), err: { message: detail } },
          `e-mail ${message.id} not sent (${detail}); trying again at ${nextAttemptAt.toISOString()}; check SMTP_URL if this goes on`)
        if (isUnreachable(error)) {
          // Do not knock on a closed door once per message: the rest of the batch waits as long, its attempts uncounted.
          for (const rest of messages.slice(i + 1)) {
            await store.markFailed(rest.id, { error: `not tried: ${detail}`, attempts: rest.attempts, nextAttemptAt })
            result.retrying++
          }
          break
        }
        continue
      }
      // The window: a crash here, after the server took the message and before this write, sends it again later.
      await store.markSent(message.id, now())
      result.sent++
      logger.info({ event: 'outbox.sent', outbox: message.id, attempts: message.attempts + 1 }, `e-mail ${message.id} sent`)
    }
    return result
  }

  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> | undefined
  let again = false
  let stopped = true

  function pass (): void {
    if (running !== undefined) { again = true; return }
    running = runOnce()
      .then(result => { options.onRun?.(result) })
      .catch((error: Error) => {
        logger.error({ event: 'outbox.store_failed', err: { message: error.message } }, `the e-mail outbox could not be read or updated: ${error.message}`)
      })
      .finally(() => {
        running = undefined
        if (again && !stopped) { again = false; pass() }
      })
  }

  return {
    runOnce,
    wake () { if (!stopped) pass() },
    start () {
      if (!stopped) return
      stopped = false
      timer = setInterval(pass, pollMs)
      timer.unref()
      pass()
    },
    async stop () {
      stopped = true
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
      await running
      transport.close()
    }
  }
}
