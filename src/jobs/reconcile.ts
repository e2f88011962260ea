// Reconciliation (SPEC section 8): the ledger against Alma and, when given, CashNet's settlement file. Every
// disagreement becomes a Finding that says what a person should do; an empty list means everything agrees.

import { parse } from 'csv-parse'
import { createReadStream } from 'node:fs'
import type { AlmaClient } from '../alma/client.ts'
import { AlmaError, AmbiguousPrimaryId, isAlmaFailure, requireAnsweredFor, USER_NOT_FOUND_CODES } from '../alma/errors.ts'
import type { Fee } from '../alma/types.ts'
import { collectedFor, providerOf, refundedFor } from '../payments/staff-actions.ts'
import type { Ledger } from '../ledger/ledger.ts'
import type { Checkout, PostbackRecord } from '../ledger/types.ts'
import { type Cents, formatDecimal, InvalidAmount, parseCents } from '../money.ts'
import { processTimeZone, today } from './dates.ts'
import { BadInput } from './errors.ts'
import { type Progress, SILENT } from './progress.ts'

export const FINDING_KINDS = [
  'paid-not-posted', 'posted-not-in-alma', 'amount-difference', 'orphan', 'double-charge',
  'settled-unknown', 'settled-amount-differs', 'not-settled', 'unchecked'
] as const
export type FindingKind = typeof FINDING_KINDS[number]

export interface Finding {
  kind: FindingKind
  checkoutId: string | null
  tx: string
  /** Alma primary id and name, as far as known */
  patron: string
  feeId?: string
  currency: string
  /** the money at stake, in cents; null when nobody can tell */
  amount: Cents | null
  ledgerAmount?: Cents
  almaAmount?: Cents
  cashnetAmount?: Cents
  detail: string
  /** one line: what a person should do */
  action: string
}

export interface SettlementRow {
  tx: string
  amount: Cents
  /** YYYY-MM-DD */
  date: string
  line: number
}

export interface ReconcileInput {
  ledger: Ledger
  alma: Pick<AlmaClient, 'getFee' | 'getUser'>
  since: Date
  now?: Date
  settlement?: AsyncIterable<SettlementRow> | Iterable<SettlementRow>
  /** a PAID checkout younger than this is still in the worker's hands, not stuck */
  paidGraceMinutes?: number
  currency?: string
  /** TIMEZONE: a payment's or refund's day, compared with the settlement file's dates, is its local day here (default the process's zone) */
  timeZone?: string
  progress?: Progress
}

export interface ReconcileReport {
  since: string
  generatedAt: string
  checked: { checkouts: number, postedLines: number, feesRead: number, settlementRows: number | null }
  findings: Finding[]
}

const SUCCESS_OUTCOMES_EXCLUDED = new Set(['REJECTED', 'ORPHAN'])
const MONEY_STATES = new Set(['PAID', 'POSTED', 'NEEDS_ATTENTION'])
const FAR_FUTURE = new Date('9999-12-31T00:00:00Z')
const ALMA_CONCURRENCY = 4

function patronOf (checkout: Checkout): string {
  return checkout.patronName !== '' ? `${checkout.primaryId} (${checkout.patronName})` : checkout.primaryId
}

/** Best-effort reading of a stored raw postback body: the refused ones carry no parsed tx or amount. */
export function readRawPostback (raw: string): { tx: string, result: string, custcode: string, total: Cents | null } {
  const fields = new Map<string, string>()
  for (const [k, v] of new URLSearchParams(raw)) fields.set(k.toLowerCase(), v.trim())
  let total: Cents | null = null
  try {
    const count = Number(fields.get('itemcnt') ?? '0')
    let sum = 0
    for (let n = 1; n <= Math.min(count, 200); n++) sum += parseCents(fields.get(`amount${n}`) ?? '')
    total = count > 0 ? sum as Cents : null
  } catch (error) {
    if (!(error instanceof InvalidAmount)) throw error
  }
  return { tx: fields.get('tx') ?? '', result: fields.get('result') ?? '', custcode: fields.get('custcode') ?? '', total }
}

function succeeded (p: PostbackRecord): boolean {
  return p.result === '0' && p.tx !== '' && !SUCCESS_OUTCOMES_EXCLUDED.has(p.outcome)
}

/** Runs fn over items with at most `limit` in flight (the Alma client's rate limiter still paces the calls). */
async function pool<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const run = async (): Promise<void> => { while (next < items.length) await fn(items[next++]) }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run))
}

export async function reconcile (input: ReconcileInput): Promise<ReconcileReport> {
  const { ledger, since } = input
  const now = input.now ?? new Date()
  const progress = input.progress ?? SILENT
  const defaultCurrency = input.currency ?? 'USD'
  const findings: Finding[] = []
  const add = (f: Finding): void => { findings.push(f) }

  const touched = await ledger.checkoutsTouchedSince(since)
  // A PAID checkout the worker should long have posted is a problem whatever its age, so not only the window.
  const stuckCutoff = new Date(now.getTime() - (input.paidGraceMinutes ?? 10) * 60_000)
  const scope = new Map(touched.map(c => [c.id, c]))
  for (const c of await ledger.paidBefore(stuckCutoff)) scope.set(c.id, c)
  // A case needing attention that staff have not settled is money still stuck, however long ago it was paid.
  for (const c of await ledger.openAttention()) scope.set(c.id, c)

  /** tx this run already reports or explains, so the settlement check does not report them twice */
  const explained = new Set<string>()

  for (const checkout of scope.values()) {
    // Staff recorded how they settled it (refund, manual credit): its tx is explained, nothing left to report.
    if (checkout.state === 'NEEDS_ATTENTION' && checkout.resolvedAt !== null) {
      if (checkout.tx !== null) explained.add(checkout.tx)
      for (const p of ((await ledger.history(checkout.id))?.postbacks ?? []).filter(succeeded)) explained.add(p.tx)
      continue
    }
    const unposted = checkout.lines.filter(l => l.postedAt === null)
    const base = { checkoutId: checkout.id, tx: checkout.tx ?? '', patron: patronOf(checkout), currency: checkout.currency }
    const provider = providerOf(checkout)
    if (checkout.state === 'PAID' && checkout.paidAt !== null && checkout.paidAt < stuckCutoff.toISOString()) {
      add({
        ...base,
        kind: 'paid-not-posted',
        amount: unposted.reduce((s, l) => s + l.amount, 0) as Cents,
        ledgerAmount: checkout.total,
        detail: `paid at ${provider} ${checkout.paidAt}, ${unposted.length} of ${checkout.lines.length} fee(s) not in Alma after ${checkout.attempts} attempt(s)${checkout.lastError !== null ? `; last error: ${checkout.lastError}` : ''}`,
        action: 'Find the checkout on /admin, fix what its Alma calls show (the service may not be running), then Retry posting; nothing is paid twice.'
      })
    } else if (checkout.state === 'NEEDS_ATTENTION' && unposted.length > 0) {
      add({
        ...base,
        kind: 'paid-not-posted',
        amount: unposted.reduce((s, l) => s + l.amount, 0) as Cents,
        ledgerAmount: checkout.total,
        detail: `needs attention: ${checkout.attentionReason ?? 'no reason recorded'}`,
        action: `Fix what the reason says, then Retry posting on /admin; if it cannot be posted, refund the patron through ${provider}.`
      })
    } else if (checkout.state === 'NEEDS_ATTENTION' && checkout.unapplied > 0) {
      add({
        ...base,
        kind: 'amount-difference',
        amount: checkout.unapplied,
        ledgerAmount: checkout.total,
        almaAmount: (checkout.total - checkout.unapplied) as Cents,
        detail: `paid ${formatDecimal(checkout.total)} at ${provider}; ${checkout.attentionReason ?? `${formatDecimal(checkout.unapplied)} could not be applied in Alma`}`,
        action: `Refund the unapplied amount to the patron through ${provider} (or record it as a credit in Alma), then note it on /admin.`
      })
    }

    const postbacks = (await ledger.history(checkout.id))?.postbacks ?? []
    // A second charge whose refund staff recorded in full (issue 13) is explained, not a finding.
    const money = await ledger.moneyRecord(checkout.id)
    const refunded = (tx: string): boolean => money !== undefined && collectedFor(money, tx) > 0 && refundedFor(money, tx) >= collectedFor(money, tx)
    for (const tx of [...new Set(postbacks.filter(succeeded).map(p => p.tx))].filter(refunded)) explained.add(tx)
    const extra = [...new Set(postbacks.filter(succeeded).map(p => p.tx))].filter(tx => tx !== checkout.tx && !refunded(tx))
    for (const tx of extra) {
      const raw = postbacks.find(p => p.tx === tx)
      const total = raw === undefined ? null : readRawPostback(raw.rawBody).total
      explained.add(tx)
      add({
        ...base,
        tx,
        kind: 'double-charge',
        amount: total ?? checkout.total,
        ledgerAmount: checkout.total,
        ...(total !== null ? { cashnetAmount: total } : {}),
        detail: `${provider} tx ${tx} is a second successful payment of a checkout already paid by tx ${checkout.tx ?? '(none)'}`,
        action: `Refund ${provider} tx ${tx} to the patron; only tx ${checkout.tx ?? '(none)'} is posted to Alma.`
      })
    }
  }

  for (const orphan of await orphansSince(ledger, since)) {
    explained.add(orphan.tx)
    add({ ...orphan, currency: defaultCurrency })
  }

  const postedLines = await ledger.postedLines(since, FAR_FUTURE)
  const feesRead = await checkPostedLines(input, postedLines, add, progress)

  let settlementRows: number | null = null
  if (input.settlement !== undefined) {
    settlementRows = await checkSettlement(input, scope, explained, add, defaultCurrency)
  }

  const order = new Map(FINDING_KINDS.map((k, i) => [k, i]))
  findings.sort((a, b) => (order.get(a.kind) ?? 0) - (order.get(b.kind) ?? 0) || a.patron.localeCompare(b.patron) || (a.checkoutId ?? '').localeCompare(b.checkoutId ?? '') || a.tx.localeCompare(b.tx))
  return {
    since: since.toISOString(),
    generatedAt: now.toISOString(),
    checked: { checkouts: scope.size, postedLines: postedLines.length, feesRead, settlementRows },
    findings
  }
}

/** Postbacks CashNet sent for no known checkout, or that were refused unread: money may have been taken. */
async function orphansSince (ledger: Ledger, since: Date): Promise<Array<Omit<Finding, 'currency'>>> {
  const byKey = new Map<string, { record: PostbackRecord, tx: string, total: Cents | null, custcode: string, count: number }>()
  for (const record of await ledger.unmatchedPostbacks(since)) {
    const raw = readRawPostback(record.rawBody)
    const tx = record.tx !== '' ? record.tx : raw.tx
    const result = record.result !== '' ? record.result : raw.result
    // A failure result for an unknown checkout took no money; an unreadable result might have.
    if (result !== '' && result !== '0') continue
    // The same tx later matched a checkout (CashNet retried after a fix): nothing is lost.
    if (tx !== '' && (await ledger.postbacksWithTx(tx)).some(p => p.checkoutId !== null && (p.outcome === 'PAID' || p.outcome === 'DUPLICATE'))) continue
    const key = tx !== '' ? `tx:${tx}` : `id:${record.id}`
    const seen = byKey.get(key)
    if (seen !== undefined) seen.count++
    else byKey.set(key, { record, tx, total: raw.total, custcode: raw.custcode, count: 1 })
  }
  return [...byKey.values()].map(({ record, tx, total, custcode, count }) => ({
    kind: 'orphan',
    checkoutId: record.checkoutId,
    tx,
    patron: custcode !== '' ? `${custcode} (CashNet custcode)` : '',
    amount: total,
    ...(total !== null ? { cashnetAmount: total } : {}),
    detail: `${record.outcome === 'ORPHAN' ? `postback for unknown checkout ${record.checkoutId ?? '(no reference)'}` : `postback refused: ${record.reason}`}, received ${record.receivedAt}${count > 1 ? ` (${count} times)` : ''}`,
    action: `Look up ${tx !== '' ? `CashNet tx ${tx}` : 'the raw postback on /admin'} in CashNet; if money was taken, post it to the patron's fees in Alma by hand or refund it.`
  }))
}

/** One GET fee per posted fee line in the window: Alma must show our tx on it with the amount we recorded. */
async function checkPostedLines (input: ReconcileInput, lines: Array<{ checkout: Checkout, lineNo: number }>, add: (f: Finding) => void, progress: Progress): Promise<number> {
  const groups = new Map<string, { checkout: Checkout, feeId: string, posted: number }>()
  for (const { checkout, lineNo } of lines) {
    const line = checkout.lines.find(l => l.lineNo === lineNo)
    if (line === undefined) continue
    const key = `${checkout.id}\u0000${line.feeId}`
    const group = groups.get(key) ?? { checkout, feeId: line.feeId, posted: 0 }
    group.posted += line.postedAmount ?? 0
    groups.set(key, group)
  }
  // Per patron, each fee is read once even when several checkouts paid into it.
  const fees = new Map<string, Map<string, Promise<Fee | null>>>()
  let feesRead = 0
  const feeOf = async (primaryId: string, feeId: string): Promise<Fee | null> => {
    let userFees = fees.get(primaryId)
    if (userFees === undefined) fees.set(primaryId, userFees = new Map())
    let fee = userFees.get(feeId)
    if (fee === undefined) {
      feesRead++
      fee = input.alma.getFee(primaryId, feeId).then(async found => {
        requireAnsweredFor(primaryId, { fees: [found] })
        return found
      }, async (error: unknown) => {
        if (!(error instanceof AlmaError && error.errorCode === '401665')) throw error
        // Alma reads the id as all_unique: "no such fee" may only mean it read another patron, one whose barcode
        // or campus id is this text. Ask who it reads; only this patron's own answer says the fee is gone.
        const user = await input.alma.getUser(primaryId, { byPrimaryId: true }).catch((userError: unknown) => {
          if (userError instanceof AlmaError && USER_NOT_FOUND_CODES.has(userError.errorCode)) return null
          throw userError
        })
        if (user !== null) requireAnsweredFor(primaryId, { user })
        return null
      })
      userFees.set(feeId, fee)
    }
    return await fee
  }

  let done = 0
  progress.start(groups.size, 'posted fees')
  await pool([...groups.values()], ALMA_CONCURRENCY, async ({ checkout, feeId, posted }) => {
    const base = { checkoutId: checkout.id, tx: checkout.tx ?? '', patron: patronOf(checkout), feeId, currency: checkout.currency, ledgerAmount: posted as Cents }
    let fee: Fee | null
    try {
      fee = await feeOf(checkout.primaryId, feeId)
    } catch (error) {
      if (error instanceof AmbiguousPrimaryId) {
        add({ ...base, kind: 'unchecked', amount: posted as Cents, detail: `could not check fee ${feeId}: ${error.message} (that patron's barcode or another identifier is the same text)`, action: `Make the identifier "${checkout.primaryId}" unique in Alma (edit the other patron's identifier), then run reconcile again.` })
        return
      }
      // Alma down or throttling would make every check fail: stop, and let the caller say so.
      if (!isAlmaFailure(error) || error.retryable) throw error
      add({ ...base, kind: 'unchecked', amount: posted as Cents, detail: `could not read fee ${feeId} from Alma: ${error.message}`, action: 'Check the API key\'s rights for this patron and fee, then run reconcile again.' })
      return
    } finally {
      progress.update(++done)
    }
    const ours = (fee?.transactions ?? []).filter(t => t.externalTransactionId !== '' && t.externalTransactionId === checkout.tx)
    if (fee === null || ours.length === 0) {
      add({
        ...base,
        kind: 'posted-not-in-alma',
        amount: posted as Cents,
        almaAmount: 0 as Cents,
        detail: fee === null ? `fee ${feeId} no longer exists in Alma` : `Alma's fee ${feeId} shows no payment with external_transaction_id ${checkout.tx ?? ''}`,
        action: `Check fee ${feeId}'s history in Alma; if the payment is gone, pay it again by hand (method ONLINE, external id ${checkout.tx ?? ''}) or refund the patron.`
      })
      return
    }
    const inAlma = ours.reduce((s, t) => s + Math.abs(t.amount), 0)
    if (inAlma !== posted) {
      add({
        ...base,
        kind: 'amount-difference',
        amount: Math.abs(inAlma - posted) as Cents,
        almaAmount: inAlma as Cents,
        detail: `Alma recorded ${formatDecimal(inAlma as Cents)} for tx ${checkout.tx ?? ''} on fee ${feeId}, the ledger ${formatDecimal(posted as Cents)}`,
        action: `Compare fee ${feeId} in Alma with the checkout on /admin and correct the side that is wrong (pay the difference or refund it).`
      })
    }
  })
  progress.stop()
  return feesRead
}

/** CashNet's settlement against the ledger: tx it settled that we never saw, amounts that differ, tx it lacks. */
async function checkSettlement (input: ReconcileInput, scope: Map<string, Checkout>, explained: Set<string>, add: (f: Finding) => void, currency: string): Promise<number> {
  const settled = new Map<string, { amount: number, line: number }>()
  let rows = 0
  let firstDate = ''
  let lastDate = ''
  for await (const row of input.settlement ?? []) {
    rows++
    if (firstDate === '' || row.date < firstDate) firstDate = row.date
    if (row.date > lastDate) lastDate = row.date
    const entry = settled.get(row.tx) ?? { amount: 0, line: row.line }
    entry.amount += row.amount
    settled.set(row.tx, entry)
  }
  // The file's dates are CashNet's business days: an instant of ours is compared as the library's local day.
  const zone = input.timeZone ?? processTimeZone()
  const localDay = (iso: string): string => today(zone, new Date(iso))
  const sinceIso = input.since.toISOString()
  // Only CashNet's payments can be in CashNet's settlement; PayPal's are reconciled with reconcile --paypal.
  const paidInWindow = new Map<string, Checkout>()
  for (const c of scope.values()) {
    if (c.provider === 'cashnet' && c.tx !== null && c.tx !== '' && c.paidAt !== null && c.paidAt >= sinceIso && MONEY_STATES.has(c.state)) paidInWindow.set(c.tx, c)
  }

  for (const [tx, { amount, line }] of settled) {
    let checkout = paidInWindow.get(tx)
    if (checkout === undefined) {
      const postbacks = await input.ledger.postbacksWithTx(tx)
      if (postbacks.length === 0 && !explained.has(tx)) {
        add({
          kind: 'settled-unknown',
          checkoutId: null,
          tx,
          patron: '',
          currency,
          amount: amount as Cents,
          cashnetAmount: amount as Cents,
          detail: `CashNet settled tx ${tx} (settlement line ${line}); the service never received a postback for it`,
          action: `Find tx ${tx} in CashNet (custcode, ref1val1), check whether the patron's fees were paid in Alma, and post or refund by hand.`
        })
        continue
      }
      const id = postbacks.find(p => p.checkoutId !== null)?.checkoutId
      checkout = id == null ? undefined : await input.ledger.getCheckout(id)
      // A second tx of a double charge or an orphan is reported above; only a checkout's own tx has an amount to compare.
      if (checkout === undefined || checkout.tx !== tx || checkout.provider !== 'cashnet') continue
    }
    // What CashNet said it collected (its postback's items), which may differ from the checkout's total; less the
    // refunds recorded by the file's last day: CashNet's settlement lists those as negative rows of the tx, and
    // cannot list a later one.
    const money = await input.ledger.moneyRecord(checkout.id)
    const collected = collectedOf(money, checkout, tx)
    const refunded = (money?.refunds ?? []).filter(r => r.tx === tx && localDay(r.at) <= lastDate).reduce((s, r) => s + r.amount, 0)
    const expected = (collected - refunded) as Cents
    if (amount !== expected) {
      add({
        kind: 'settled-amount-differs',
        checkoutId: checkout.id,
        tx,
        patron: patronOf(checkout),
        currency: checkout.currency,
        amount: Math.abs(amount - expected) as Cents,
        ledgerAmount: expected,
        cashnetAmount: amount as Cents,
        detail: `CashNet settled ${formatDecimal(amount as Cents)} for tx ${tx} (settlement line ${line}), the ledger recorded ${formatDecimal(collected)} collected${refunded > 0 ? ` less ${formatDecimal(refunded as Cents)} refunded` : ''}`,
        action: `Check tx ${tx} in CashNet; refund or collect the difference and correct Alma to what was really paid.`
      })
    }
  }

  // Only payments the file could contain: paid on a (local) day from its first date to its last.
  for (const [tx, checkout] of paidInWindow) {
    const paidDay = localDay(checkout.paidAt ?? '')
    if (settled.has(tx) || lastDate === '' || paidDay < firstDate || paidDay > lastDate) continue
    // the money at stake is what CashNet said it collected, which may differ from the checkout's total
    const collected = collectedOf(await input.ledger.moneyRecord(checkout.id), checkout, tx)
    add({
      kind: 'not-settled',
      checkoutId: checkout.id,
      tx,
      patron: patronOf(checkout),
      currency: checkout.currency,
      amount: collected,
      ledgerAmount: collected,
      detail: `the ledger recorded CashNet tx ${tx} as paid on ${paidDay} (${checkout.state}, ${formatDecimal(collected)} collected${collected !== checkout.total ? ` of a ${formatDecimal(checkout.total)} checkout` : ''}); CashNet's settlement of ${firstDate === lastDate ? lastDate : `${firstDate} to ${lastDate}`} does not list it`,
      action: `Check tx ${tx} in CashNet; if it was voided or reversed, reverse the payment in Alma and tell the patron.`
    })
  }
  return rows
}

/** What the provider said it collected for a tx (its postback's items), else the checkout's total. */
function collectedOf (money: Awaited<ReturnType<Ledger['moneyRecord']>>, checkout: Checkout, tx: string): Cents {
  return money?.reports.find(r => r.tx === tx)?.total ?? checkout.total
}

/** Streams CashNet's settlement CSV (header tx,amount,date); any bad record is BadInput naming file and line. */
export async function * readSettlementCsv (path: string): AsyncGenerator<SettlementRow> {
  const parser = parse({ bom: true, trim: true, skip_empty_lines: true, info: true })
  const source = createReadStream(path)
  source.on('error', (error) => { parser.destroy(error) })
  source.pipe(parser)
  let header = false
  let line = 0
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[], info: { lines: number } }>) {
      line = info.lines
      if (!header) {
        if (record.map(s => s.toLowerCase()).join(',') !== 'tx,amount,date') throw new BadInput(path, `line ${line}`, `the header must be tx,amount,date (got ${record.join(',').slice(0, 60)})`)
        header = true
        continue
      }
      const [tx, amount, date] = record
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(tx)) throw new BadInput(path, `line ${line}`, `tx "${tx.slice(0, 40)}" is not a CashNet transaction number`)
      let cents: Cents
      try {
        cents = parseCents(amount, { allowNegative: true })
      } catch (error) {
        throw new BadInput(path, `line ${line}`, `amount: ${(error as Error).message}`)
      }
      const day = /^(\d{4}-\d{2}-\d{2})([T ].*)?$/.exec(date)?.[1]
      if (day === undefined || Number.isNaN(Date.parse(`${day}T00:00:00Z`))) throw new BadInput(path, `line ${line}`, `date "${date.slice(0, 30)}" is not YYYY-MM-DD`)
      yield { tx, amount: cents, date: day, line }
    }
  } catch (error) {
    if (error instanceof BadInput) throw error
    const code = (error as { code?: string }).code
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw new BadInput(path, '', `cannot be read (${code})`)
    const at = (error as { lines?: number }).lines
    throw new BadInput(path, `line ${at ?? line + 1}`, (error as Error).message)
  } finally {
    source.destroy()
  }
  if (!header) throw new BadInput(path, '', 'is empty: expected the header tx,amount,date')
}
