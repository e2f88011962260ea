// Errors from PayPal as values with a kind. Each carries PayPal's debug_id (quote it to PayPal support) and the
// issue PayPal named, so one log line says what happened; only UNAVAILABLE is worth retrying.

export const PAYPAL_ERROR_KINDS = [
  /** 422: the patron's card or bank refused at capture; send them back to the approval link */
  'INSTRUMENT_DECLINED',
  /** 422: this order was captured before; read the order and take its capture */
  'ORDER_ALREADY_CAPTURED',
  /** 404: no such order or capture */
  'NOT_FOUND',
  /** 401 after a fresh token, 403, or the token endpoint refusing our client id and secret */
  'UNAUTHORIZED',
  /** 5xx, 429, timeout, refused or reset connection: the same call (same PayPal-Request-Id) may succeed later */
  'UNAVAILABLE',
  /** 2xx with a body we cannot believe: not JSON, a field missing, an amount that is not an amount */
  'BAD_RESPONSE',
  /** any other 4xx (400 INVALID_REQUEST, 422 ORDER_NOT_APPROVED, ...): `issue` says which */
  'REJECTED'
] as const
export type PayPalErrorKind = typeof PAYPAL_ERROR_KINDS[number]

export class PayPalError extends Error {
  readonly retryable: boolean
  constructor (
    readonly kind: PayPalErrorKind,
    /** what the client was doing: 'token', 'createOrder', 'captureOrder', 'getOrder', 'verifyWebhookSignature', 'searchTransactions' */
    readonly operation: string,
    /** HTTP status, 0 when PayPal did not answer */
    readonly status: number,
    /** PayPal's issue (details[0].issue) or error name; for UNAVAILABLE without an answer, the network error code */
    readonly issue: string,
    /** PayPal's debug_id, '' when there was no answer to take it from */
    readonly debugId: string,
    detail: string
  ) {
    super(`PayPal ${operation}: ${kind}${status !== 0 ? ` (${status}${issue !== '' ? ' ' + issue : ''})` : issue !== '' ? ` (${issue})` : ''}${detail !== '' ? `: ${detail}` : ''}${debugId !== '' ? ` [debug_id ${debugId}]` : ''}`)
    this.name = 'PayPalError'
    this.retryable = kind === 'UNAVAILABLE'
  }
}

export function isPayPalError (error: unknown): error is PayPalError {
  return error instanceof PayPalError
}
