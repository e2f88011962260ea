// Errors any ledger implementation raises, whatever stores it: callers (the postback use case, the web layer's
// error handler, the jobs) depend on these, never on a database driver's error codes.

/**
 * The ledger cannot take a write just now: a lock held by another process (SQLite), the database restarting or
 * out of reach (a server database). Nothing was written; the caller answers 503 and CashNet sends the postback
 * again. Not a bug: one operator line, no stack trace.
 */
export class LedgerUnavailable extends Error {
  readonly kind = 'LedgerUnavailable'
  readonly statusCode = 503
  constructor (cause: unknown) {
    super(`the ledger cannot take writes just now (${typeof cause === 'string' ? cause : (cause as Error)?.message ?? String(cause)}); nothing was written`)
  }
}

/** The ledger is not one a job can read: missing tables, an older schema, or not safely readable beside the service. */
export class LedgerSchemaError extends Error {
  readonly kind = 'LedgerSchemaError'
}

/**
 * A posting write made under a lease that is no longer this holder's: the checkout's posting fence has moved on
 * (the lease expired and another instance claimed it). Nothing was written; the stale holder stops posting.
 */
export class LeaseLost extends Error {
  readonly kind = 'LeaseLost'
  constructor (readonly checkoutId: string, readonly fence: number) {
    super(`the posting lease on ${checkoutId} (fence ${fence}) was lost to another holder; nothing was written`)
  }
}
