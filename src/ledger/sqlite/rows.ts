// Row mapping: SQLite rows (snake_case columns, integer cents) to the ledger's types.

import type { Cents } from '../../money.ts'
import type {
  AlmaCallEntry, AttentionKind, AuditEvent, CashnetReport, Checkout, CheckoutLine, CheckoutSummary, OutboxRecord, PayLinkEntry, PostbackRecord, RefundRecord
} from '../types.ts'

/** A row as better-sqlite3 returns it. */
export type Row = Record<string, any>

export function toCheckout (row: Row, lines: Row[]): Checkout {
  return { ...toSummary(row), lines: lines.map(toLine) }
}

export function toLine (l: Row): CheckoutLine {
  return {
    lineNo: l.line_no,
    feeId: l.fee_id,
    feeType: l.fee_type,
    feeTypeDesc: l.fee_type_desc,
    owner: l.owner,
    ownerDesc: l.owner_desc,
    title: l.title,
    itemCode: l.item_code,
    amount: l.amount_cents as Cents,
    postedAmount: l.posted_cents as Cents | null,
    postedAt: l.posted_at,
    balance: (l.balance_cents ?? null) as Cents | null
  }
}

export function toSummary (row: Row): CheckoutSummary {
  return {
    id: row.id,
    userId: row.user_id,
    userIdKind: row.user_id_kind ?? 'username',
    primaryId: row.primary_id,
    patronName: row.patron_name,
    email: row.email,
    provider: row.provider ?? 'cashnet',
    state: row.state,
    total: row.total_cents as Cents,
    currency: row.currency,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    paidAt: row.paid_at,
    postedAt: row.posted_at,
    tx: row.tx,
    batchno: row.batchno,
    effdate: row.effdate,
    pmtcode: row.pmtcode,
    attentionReason: row.attention_reason,
    attentionKind: (row.attention_kind ?? null) as AttentionKind | null,
    unapplied: row.unapplied_cents as Cents,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    resolvedAt: row.resolved_at ?? null,
    resolvedBy: row.resolved_by ?? null,
    resolution: row.resolution ?? null,
    reviewTx: row.review_tx ?? null
  }
}

export function toPostback (row: Row): PostbackRecord {
  return {
    id: row.id,
    checkoutId: row.checkout_id,
    receivedAt: row.received_at,
    peer: row.peer,
    result: row.result,
    tx: row.tx,
    outcome: row.outcome,
    reason: row.reason,
    rawBody: row.raw_body,
    total: (row.total_cents ?? null) as Cents | null
  }
}

export function toRefund (r: Row): RefundRecord {
  return { id: r.id, checkoutId: r.checkout_id, tx: r.tx, amount: r.amount_cents as Cents, reference: r.reference, note: r.note, by: r.by, at: r.at, kind: r.kind ?? 'refund' }
}

export function toAlmaCall (r: Row): AlmaCallEntry {
  return {
    id: r.id, checkoutId: r.checkout_id, at: r.at, method: r.method, path: r.path, status: r.status, errorCode: r.error_code, errorMessage: r.error_message, trackingId: r.tracking_id, durationMs: r.duration_ms
  }
}

export function toEvent (r: Row): AuditEvent {
  return { id: r.id, checkoutId: r.checkout_id, at: r.at, event: r.event, fromState: r.from_state, toState: r.to_state, detail: r.detail }
}

export function toPayLink (r: Row): PayLinkEntry {
  return {
    linkId: r.link_id,
    patronId: r.patron_id,
    primaryId: r.primary_id,
    issuedBy: r.issued_by,
    issuedAt: r.issued_at,
    expiresAt: r.expires_at,
    revokedBy: r.revoked_by ?? null,
    revokedAt: r.revoked_at ?? null
  }
}

export function toOutbox (r: Row): OutboxRecord {
  return {
    id: r.id,
    from: r.from_address,
    to: r.to_address,
    subject: r.subject,
    text: r.text_body,
    html: r.html_body,
    attempts: r.attempts,
    createdAt: r.created_at,
    nextAttemptAt: r.next_attempt_at,
    leaseUntil: r.lease_until ?? null,
    sentAt: r.sent_at ?? null,
    gaveUpAt: r.gave_up_at ?? null,
    lastError: r.last_error ?? null
  }
}

/** Report rows (a postback, its items; ordered by postback id, then item) grouped into each checkout's reports. */
export function reportsByCheckout (rows: Row[]): Map<string, CashnetReport[]> {
  const byPostback = new Map<number, { checkoutId: string, report: CashnetReport }>()
  for (const r of rows) {
    let found = byPostback.get(r.id)
    if (found === undefined) {
      found = { checkoutId: r.checkout_id, report: { postbackId: r.id, tx: r.tx, outcome: r.outcome, items: [], total: r.total_cents as Cents } }
      byPostback.set(r.id, found)
    }
    if (r.item_no !== null) found.report.items.push({ itemNo: r.item_no, itemCode: r.item_code, amount: r.amount_cents as Cents, qty: r.qty })
  }
  const reports = new Map<string, CashnetReport[]>()
  for (const { checkoutId, report } of byPostback.values()) reports.set(checkoutId, [...(reports.get(checkoutId) ?? []), report])
  return reports
}
