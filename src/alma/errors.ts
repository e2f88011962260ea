// Errors from Alma as values with a kind: business errors carry Alma's errorCode, errorMessage and trackingId;
// transient ones (429, 5xx, timeouts, refused connections) say that a retry may succeed.

export class AlmaError extends Error {
  readonly kind = 'AlmaError'
  constructor (
    readonly status: number,
    readonly errorCode: string,
    readonly errorMessage: string,
    readonly trackingId: string,
    /** true for 429 and 5xx: the call may succeed later; false for business errors. */
    readonly retryable: boolean,
    /** seconds from Alma's Retry-After header, when it sent one */
    readonly retryAfterSeconds?: number
  ) {
    super(`Alma answered ${status}${errorCode !== '' ? ` ${errorCode}` : ''}${errorMessage !== '' ? `: ${errorMessage}` : ''}${trackingId !== '' ? ` (trackingId ${trackingId})` : ''}`)
  }
}

/** Alma did not answer at all: connection refused or reset, DNS, or our timeout. Always retryable. */
export class AlmaUnavailable extends Error {
  readonly kind = 'AlmaUnavailable'
  readonly retryable = true
  readonly status = 0
  readonly errorCode: string
  readonly errorMessage: string
  readonly trackingId = ''
  constructor (readonly reason: string) {
    super(`Alma unreachable: ${reason}`)
    this.errorCode = reason
    this.errorMessage = `no answer from Alma (${reason})`
  }
}

/** Alma answered 2xx with a body we could not read. Not retried blindly: a person must look. */
export class AlmaBadResponse extends Error {
  readonly kind: 'AlmaBadResponse' | 'AlmaResponseTooLarge' = 'AlmaBadResponse'
  readonly retryable = false
  readonly status: number
  readonly errorCode: 'BAD_RESPONSE' | 'RESPONSE_TOO_LARGE' = 'BAD_RESPONSE'
  readonly trackingId = ''
  constructor (status: number, readonly errorMessage: string) {
    super(`Alma answered ${status} with an unreadable body: ${errorMessage}`)
    this.status = status
  }
}

/**
 * Alma's answer was larger than ALMA_MAX_RESPONSE_BYTES (by its Content-Length, or counted as it arrived): we
 * stopped reading and dropped the connection. An unreadable answer like any other (the patron sees the calm
 * "library system not available" page, a posting goes to staff), with its own kind and code for the operator.
 */
export class AlmaResponseTooLarge extends AlmaBadResponse {
  override readonly kind = 'AlmaResponseTooLarge'
  override readonly errorCode = 'RESPONSE_TOO_LARGE'
  constructor (status: number, readonly limitBytes: number, readonly seenBytes: number) {
    super(status, `the answer is larger than ALMA_MAX_RESPONSE_BYTES (${seenBytes} > ${limitBytes} bytes); not read`)
    this.message = `Alma answered ${status} with ${seenBytes} bytes or more, over ALMA_MAX_RESPONSE_BYTES (${limitBytes}): refused unread`
  }
}

export type AlmaFailure = AlmaError | AlmaUnavailable | AlmaBadResponse

export function isAlmaFailure (error: unknown): error is AlmaFailure {
  return error instanceof AlmaError || error instanceof AlmaUnavailable || error instanceof AlmaBadResponse
}

/** Alma's "user not found" codes: 401861 (any id type), 401890 (given id type). */
export const USER_NOT_FOUND_CODES = new Set(['401861', '401890'])

/**
 * A read by primary id (no user_id_type, so Alma's all_unique) answered with another patron: the value is one
 * patron's primary id and another's barcode, campus id or other identifier, and Alma chose the other. Nothing of
 * that answer may be shown or paid; the fix is in Alma (make the identifier unique).
 */
export class AmbiguousPrimaryId extends Error {
  readonly kind = 'AmbiguousPrimaryId'
  constructor (readonly primaryId: string, readonly answeredWith: string) {
    super(`Alma answered a read of primary id "${primaryId}" with patron "${answeredWith}"`)
  }
}

/**
 * Throws AmbiguousPrimaryId when what Alma answered to a read of `primaryId` belongs to another patron: the user,
 * or a fee that names its patron (a fee without that id says nothing either way).
 */
export function requireAnsweredFor (primaryId: string, answer: { user?: { primaryId: string }, fees?: ReadonlyArray<{ userPrimaryId: string }> }): void {
  const other = answer.user !== undefined && answer.user.primaryId !== primaryId
    ? answer.user.primaryId
    : answer.fees?.find(fee => fee.userPrimaryId !== '' && fee.userPrimaryId !== primaryId)?.userPrimaryId
  if (other !== undefined) throw new AmbiguousPrimaryId(primaryId, other)
}
