// The use case "record a postback" (SPEC 6): read CashNet's fields, mask anything card-like, let the postback
// rules decide, commit the record and the decision in one durable ledger transaction, tell staff if the payment
// needs a person, and hand a newly PAID checkout to the posting worker. No HTTP here: the route checks who
// sent it, reads the body and turns the answer into a status; a test can call this with plain values.
//
// Card numbers: whatever a field holds, what reaches the ledger (raw body, tx, reference, the reason text) and
// the log lines is masked to its last four digits (src/mask.ts).

import { type FormBody, maskCardNumbers, parsePostback, type Postback, PostbackRejected } from '../providers/cashnet/postback.ts'
import type { Ledger } from '../ledger/ledger.ts'
import type { ComposeMessages } from '../ledger/types.ts'
import { maskCardLike, maskIdentifier } from '../mask.ts'
import type { Alerts } from './alerts.ts'
import { decidePostback } from './postback-rules.ts'

/** The two log levels the use case writes at (pino's and Fastify's loggers both fit). */
export interface PostbackLogger {
  info (object: Record<string, unknown>, message: string): void
  warn (object: Record<string, unknown>, message: string): void
}

export interface PostbackDeps {
  ledger: Ledger
  /** posts a checkout the postback just made PAID (the posting worker's schedule) */
  schedule: (checkoutId: string) => void
  alerts: Pick<Alerts, 'needsAttention'>
  /** CASHNET_REF_TYPE: the reference field that carries the checkout id */
  refType: string
  /** the key of the digests kept beside masked identifiers (COOKIE_SECRET) */
  maskKey: string
  logger: PostbackLogger
  /** told of each postback's outcome and, when it was readable, the seconds its record took: the service's metrics */
  observe?: (outcome: string, seconds?: number) => void
  /** RECEIPT_EMAIL: the e-mails written to the outbox when the postback hands the payment to staff */
  messages?: ComposeMessages
}

export interface IncomingRequest {
  /** the postback's fields (query string and form body together) */
  fields: FormBody
  /** the body as received, kept for staff once masked */
  rawBody: string
  /** who sent it */
  peer: string
}

/** What to answer CashNet: 200 once the record is durable; 400 for a postback that could not be read (recorded). */
export type PostbackAnswer = { status: 200 } | { status: 400, reason: string }

/**
 * The postback as the ledger and the logs may see it: every free-text and id field masked. The two identifiers
 * the rules compare (tx, reference) keep a keyed digest beside the mask, so distinct values stay distinct.
 */
export function maskedPostback (postback: Postback, key: string): Postback {
  return {
    ...postback,
    tx: maskIdentifier(postback.tx, key),
    checkoutId: maskIdentifier(postback.checkoutId, key),
    respmessage: maskCardLike(postback.respmessage),
    custcode: maskCardLike(postback.custcode),
    batchno: maskCardLike(postback.batchno),
    ccerrorcode: maskCardLike(postback.ccerrorcode)
  }
}

/**
 * Records one postback durably and acts on the decision. Resolves once the record is committed; rejects with
 * LedgerUnavailable when the ledger cannot take it now (nothing recorded: answer 503, CashNet sends it again).
 */
export async function recordPostback (deps: PostbackDeps, request: IncomingRequest): Promise<PostbackAnswer> {
  const { ledger, logger } = deps
  const started = performance.now()
  const raw = maskCardNumbers(request.rawBody)
  let parsed: Postback
  try {
    parsed = maskedPostback(parsePostback(request.fields, deps.refType), deps.maskKey)
  } catch (error) {
    if (!(error instanceof PostbackRejected)) throw error
    const checkoutId = error.checkoutId === null ? null : maskCardLike(error.checkoutId)
    const reason = maskCardLike(error.reason)
    await ledger.recordPostback({ checkoutId, peer: request.peer, result: '', tx: '', rawBody: raw }, () => ({ outcome: 'REJECTED', reason }))
    logger.warn({ event: 'postback.rejected', checkout: checkoutId ?? undefined, peer: request.peer, reason }, `postback refused: ${reason}; raw body kept for staff`)
    deps.observe?.('REJECTED')
    return { status: 400, reason }
  }
  const recorded = await ledger.recordPostback(
    { checkoutId: parsed.checkoutId, peer: request.peer, result: String(parsed.result), tx: parsed.tx, rawBody: raw, items: parsed.items },
    (checkout, earlier, elsewhere) => {
      const decision = decidePostback(checkout, earlier, parsed, elsewhere)
      return { ...decision, reason: maskCardLike(decision.reason) }
    },
    deps.messages
  )
  const { outcome, reason } = recorded.decision
  deps.observe?.(outcome, (performance.now() - started) / 1000)
  const log = { event: 'postback.received', checkout: parsed.checkoutId, tx: parsed.tx || undefined, result: parsed.result, outcome, user: recorded.checkout?.userId }
  if (outcome === 'ORPHAN' || outcome === 'MISMATCH' || outcome === 'DOUBLE_CHARGE' || outcome === 'TX_REUSED') {
    logger.warn(log, `postback ${outcome.toLowerCase()}: ${reason}`)
  } else {
    logger.info(log, `postback for ${parsed.checkoutId}: ${outcome.toLowerCase()}`)
  }
  if (recorded.decision.to === 'NEEDS_ATTENTION' && recorded.checkout !== undefined) deps.alerts.needsAttention(recorded.checkout, reason)
  // after the answer is on its way: the posting never delays CashNet's 200
  if (outcome === 'PAID') setImmediate(() => { deps.schedule(parsed.checkoutId) })
  return { status: 200 }
}
