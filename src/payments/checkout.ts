// Starting a payment: re-read the patron's fees from Alma (never trust the browser), check the selection,
// and record a CREATED checkout whose random id travels to CashNet and back.

import { randomBytes } from 'node:crypto'
import type { AlmaClient } from '../alma/client.ts'
import { requireAnsweredFor } from '../alma/errors.ts'
import type { AlmaUser, FeeList } from '../alma/types.ts'
import type { Ledger } from '../ledger/ledger.ts'
import type { Checkout, CheckoutProvider, UserIdKind } from '../ledger/types.ts'
import { type Cents, formatDecimal, parseCents, sumCents } from '../money.ts'
import { feesInProgress, type PayableRules, whyNotPayable } from './payable.ts'

export class CheckoutRefused extends Error {
  readonly kind = 'CheckoutRefused'
  constructor (readonly reason: 'no-selection' | 'bad-fee-id' | 'unknown-fee' | 'in-progress' | 'not-payable' | 'below-minimum' | 'too-many' | 'bad-amount', message: string) {
    super(message)
  }
}

export interface CheckoutRules extends PayableRules {
  minPayment: Cents
  itemCode: string
  itemCodes: ReadonlyMap<string, string>
}

/**
 * Who is paying: the session's username and how Alma knows it. Through EZproxy (or a Primo/UserObject sign-in) the
 * username is looked up by ALMA_USER_ID_TYPE; a pay-link session's username is the patron's Alma primary id, read
 * without user_id_type, as a campus id may equal somebody else's primary id.
 */
export interface Payer {
  username: string
  byPrimaryId: boolean
}

/** How the ledger knows this payer's checkouts: by username, or (a pay-link session) by Alma primary id. */
export function userIdKindOf (payer: Payer): UserIdKind {
  return payer.byPrimaryId ? 'primary-id' : 'username'
}

/**
 * Whether a checkout was made in a pay-link session (its payer known by Alma primary id): its patron has no EZproxy,
 * reaches the service at PAY_LINK_URL, and sees its receipt only in a pay-link session.
 */
export function madeWithPayLink (checkout: Pick<Checkout, 'userIdKind'>): boolean {
  return checkout.userIdKind === 'primary-id'
}

/**
 * Whether a checkout is the payer's own (its receipt, its line in the history): made under this identifier, and
 * identified the same way. A pay-link patron whose primary id is the same text as another patron's EZproxy
 * username never sees that patron's checkouts, nor that patron theirs.
 */
export function payerOwns (payer: Payer, checkout: Pick<Checkout, 'userId' | 'userIdKind'>): boolean {
  return checkout.userId === payer.username && checkout.userIdKind === userIdKindOf(payer)
}

/**
 * The payer's payments in progress: their own checkouts, and any for the same Alma primary id (the same patron
 * paying another way), so a fee paid either way is not sold again. A pay-link payer's are those for their primary
 * id only.
 */
export async function payerPaymentsInProgress (ledger: Ledger, payer: Payer, primaryId: string): Promise<Checkout[]> {
  const found = await ledger.paymentsInProgress(payer.username, primaryId, userIdKindOf(payer))
  return payer.byPrimaryId ? found.filter(checkout => checkout.primaryId === primaryId) : found
}

/**
 * The payer's Alma account and active fees, read at the same time. A pay-link payer is read by primary id, which
 * Alma searches among every unique identifier (user_id_type all_unique): an answer for any other patron (the
 * user, or a fee, of another primary id) is refused whole, so none of it is shown or paid (AmbiguousPrimaryId).
 */
export async function readPayerAccount (alma: AlmaClient, payer: Payer): Promise<{ user: AlmaUser, feeList: FeeList }> {
  const [user, feeList] = await Promise.all([
    alma.getUser(payer.username, { byPrimaryId: payer.byPrimaryId }),
    alma.listActiveFees(payer.username, { byPrimaryId: payer.byPrimaryId })
  ])
  if (payer.byPrimaryId) requireAnsweredFor(payer.username, { user, fees: feeList.fees })
  return { user, feeList }
}

const FEE_ID = /^[A-Za-z0-9_-]{1,64}$/
const MAX_LINES = 100

/** 128 bits of randomness as 32 hex characters: unguessable, and safe in any CashNet reference field. */
export function newCheckoutId (): string {
  return randomBytes(16).toString('hex')
}

/** What a part-payment field may hold: a plain amount, at most two decimals; no sign, exponent, grouping or spaces inside. */
const PART_AMOUNT = /^\d{1,9}(?:\.\d{1,2})?$/

/**
 * The amount to pay on a fee: its whole balance, or (PARTIAL_PAYMENTS) the part the patron asked for, checked
 * against the balance Alma shows now and MIN_PAYMENT. Anything else is refused, never rounded or capped.
 */
function amountToPay (fee: { balance: Cents }, text: string | undefined, minPayment: Cents): Cents {
  if (text === undefined) return fee.balance
  const refuse = (): never => {
    throw new CheckoutRefused('bad-amount', `Please enter an amount from ${formatDecimal(minPayment)} to ${formatDecimal(fee.balance)} for each fee you pay part of, like 10.00, with at most two decimals.`)
  }
  const trimmed = text.trim()
  if (!PART_AMOUNT.test(trimmed)) return refuse()
  const amount = parseCents(trimmed)
  // the whole balance is no part payment: the total's minimum (below) is the only one it meets
  if (amount === fee.balance) return amount
  if (amount <= 0 || amount < minPayment || amount > fee.balance) return refuse()
  return amount
}

/** The audit event of a checkout closed, never handed to its provider, because its pay link was revoked meanwhile. */
export const PAY_LINK_REVOKED_EVENT = 'checkout.pay_link_revoked'

/**
 * A checkout started in a pay-link session whose link staff revoked while it was being started: closed (CANCELLED,
 * nothing was taken: the patron was never sent to pay) with its audit event; false when it was no longer CREATED.
 */
export async function closeForRevokedLink (ledger: Pick<Ledger, 'transition'>, checkoutId: string, linkId: string): Promise<boolean> {
  return await ledger.transition({ checkoutId, from: ['CREATED'], to: 'CANCELLED', event: PAY_LINK_REVOKED_EVENT, detail: { linkId } })
}

/**
 * Records a checkout for the selected fees, as Alma shows them now. `parts` (only when PARTIAL_PAYMENTS is on)
 * holds the amount text the patron entered per fee id; a fee without one is paid in full.
 */
export async function startCheckout (
  deps: { alma: AlmaClient, ledger: Ledger, rules: CheckoutRules, /** who will take the money: recorded on the checkout */ provider: CheckoutProvider },
  payer: Payer,
  selectedFeeIds: readonly string[],
  parts: ReadonlyMap<string, string> = new Map()
): Promise<Checkout> {
  const ids = [...new Set(selectedFeeIds.map(s => s.trim()).filter(s => s !== ''))]
  if (ids.length === 0) throw new CheckoutRefused('no-selection', 'Choose at least one fee to pay.')
  if (ids.length > MAX_LINES) throw new CheckoutRefused('too-many', `At most ${MAX_LINES} fees can be paid at once.`)
  if (ids.some(id => !FEE_ID.test(id))) throw new CheckoutRefused('bad-fee-id', 'One of the selected fees is not valid.')
  // the shape of an amount is checked before Alma is asked anything; its size against the balance read below
  for (const id of ids) {
    const text = parts.get(id)
    if (text !== undefined && !PART_AMOUNT.test(text.trim())) {
      throw new CheckoutRefused('bad-amount', 'Please enter each amount as a plain number, like 10.00, with at most two decimals.')
    }
  }

  const { user, feeList } = await readPayerAccount(deps.alma, payer)
  const byId = new Map(feeList.fees.map(f => [f.id, f]))
  // what the ledger says is paid and not yet in Alma, read now, not when the patron loaded the page
  const inProgress = feesInProgress(await payerPaymentsInProgress(deps.ledger, payer, user.primaryId))
  const lines = ids.map((id, index) => {
    const fee = byId.get(id)
    if (fee === undefined) throw new CheckoutRefused('unknown-fee', 'One of the selected fees is no longer open on your account. Please review your fees again.')
    const why = whyNotPayable(fee, deps.rules, inProgress)
    if (why === 'being-recorded') throw new CheckoutRefused('in-progress', 'We have already received a payment for one of the selected fees and are recording it in the library system. You do not need to pay it again.')
    if (why === 'provider-reviewing') throw new CheckoutRefused('in-progress', 'PayPal is reviewing a payment you made for one of the selected fees. Do not pay it again: if PayPal accepts that payment, it pays the fee; if not, you can pay the fee online then.')
    if (why === 'staff-checking') throw new CheckoutRefused('in-progress', 'Library staff are checking a payment you made for one of the selected fees, so it cannot be paid online now. Please contact the library.')
    if (why !== null) throw new CheckoutRefused('not-payable', 'One of the selected fees cannot be paid online.')
    return {
      lineNo: index + 1,
      feeId: fee.id,
      feeType: fee.type.code,
      feeTypeDesc: fee.type.desc,
      owner: fee.owner.code,
      ownerDesc: fee.owner.desc,
      title: fee.title,
      itemCode: deps.rules.itemCodes.get(fee.type.code.toUpperCase()) ?? deps.rules.itemCode,
      amount: amountToPay(fee, parts.get(id), deps.rules.minPayment),
      balance: fee.balance
    }
  })
  const total = sumCents(lines.map(l => l.amount))
  if (total < deps.rules.minPayment) {
    throw new CheckoutRefused('below-minimum', `The smallest payment accepted online is ${formatDecimal(deps.rules.minPayment)}.`)
  }
  return await deps.ledger.createCheckout({
    id: newCheckoutId(),
    userId: payer.username,
    userIdKind: userIdKindOf(payer),
    primaryId: user.primaryId,
    patronName: (user.fullName || `${user.firstName} ${user.lastName}`).trim(),
    email: user.preferredEmail,
    provider: deps.provider,
    currency: deps.rules.currency,
    lines
  })
}
