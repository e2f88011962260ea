// Alma speaks XML. This module holds the reader configured for Alma's documents (src/xml.ts: strict
// well-formedness, no DOCTYPE, values kept as strings, Alma's list elements always lists) and the mapping from
// Alma's elements to the service's types. The sandbox reads what the service PUTs with a parser of its own.

import { type Cents, parseCents } from '../money.ts'
import { attr, text, XmlRejected, xmlReader } from '../xml.ts'
import type { AlmaUser, Coded, Fee, FeeList, FeeTransaction, UserBlock } from './types.ts'

export { attr, text, XmlRejected }

/** Element names that are lists in Alma's schemas, so one element still maps to an array. */
const LIST_ELEMENTS = new Set([
  'fee', 'user_block', 'email', 'user_identifier', 'transaction', 'error', 'address', 'phone', 'email_type',
  'user_role', 'user_note', 'user_statistic', 'Row', 'user', 'element', 'block'
])

/**
 * Parses an XML document from Alma. Documents with a DOCTYPE or ENTITY declaration are refused outright:
 * Alma never sends one, and refusing them is the simplest defence against entity expansion. The five XML
 * entities and character references become text once; an undefined entity stays literal text.
 */
export const parseXml = xmlReader(LIST_ELEMENTS)

function coded (node: unknown): Coded {
  return { code: text(node), desc: attr(node, 'desc') }
}

function array (node: unknown): any[] {
  if (node === undefined || node === null || node === '') return []
  return Array.isArray(node) ? node : [node]
}

function amount (node: unknown, field: string): Cents {
  const value = text(node)
  if (value === '') return 0 as Cents
  try {
    return parseCents(value, { allowNegative: true })
  } catch (error) {
    throw new XmlRejected(`${field}: ${(error as Error).message}`)
  }
}

export interface AlmaErrorBody {
  errorCode: string
  errorMessage: string
  trackingId: string
}

/** Reads Alma's web_service_result/errorList (XML, any namespace) or its JSON twin; null if it is neither. */
export function parseErrorBody (body: string): AlmaErrorBody | null {
  const trimmed = body.trim()
  if (trimmed.startsWith('{')) {
    try {
      const json = JSON.parse(trimmed)
      const error = array(json?.errorList?.error)[0]
      if (error === undefined) return null
      return { errorCode: String(error.errorCode ?? ''), errorMessage: String(error.errorMessage ?? ''), trackingId: String(error.trackingId ?? '') }
    } catch {
      return null
    }
  }
  if (!trimmed.startsWith('<')) return null
  try {
    const doc = parseXml(trimmed)
    const error = array(doc.web_service_result?.errorList?.error)[0]
    if (error === undefined) return null
    return { errorCode: text(error.errorCode), errorMessage: text(error.errorMessage), trackingId: text(error.trackingId) }
  } catch {
    return null
  }
}

function mapBlock (node: any): UserBlock {
  return {
    type: coded(node?.block_type),
    description: coded(node?.block_description),
    status: text(node?.block_status) || 'ACTIVE',
    note: text(node?.block_note),
    expiryDate: text(node?.expiry_date)
  }
}

export function mapUser (doc: Record<string, any>): AlmaUser {
  const user = doc.user
  if (user === undefined || user === null || typeof user !== 'object') throw new XmlRejected('no <user> element')
  const single = Array.isArray(user) ? user[0] : user
  const primaryId = text(single.primary_id)
  if (primaryId === '') throw new XmlRejected('<user> without <primary_id>')
  const emails = array(single.contact_info?.emails?.email)
  const preferred = emails.find(e => attr(e, 'preferred') === 'true') ?? emails[0]
  const mapped: AlmaUser = {
    primaryId,
    firstName: text(single.first_name),
    lastName: text(single.last_name),
    fullName: text(single.full_name),
    preferredEmail: text(preferred?.email_address),
    status: text(single.status),
    identifiers: array(single.user_identifiers?.user_identifier).map(i => ({
      type: text(i?.id_type), value: text(i?.value), status: text(i?.status) || 'ACTIVE'
    })),
    blocks: array(single.user_blocks?.user_block).map(mapBlock)
  }
  if (single.fees !== undefined) mapped.feeBalance = amount(single.fees, 'user fees')
  return mapped
}

function mapTransaction (node: any): FeeTransaction {
  return {
    type: text(node?.type),
    amount: amount(node?.amount, 'transaction amount'),
    externalTransactionId: text(node?.external_transaction_id),
    time: text(node?.transaction_time),
    comment: text(node?.comment)
  }
}

export function mapFee (node: any, listCurrency = ''): Fee {
  if (node === null || typeof node !== 'object') throw new XmlRejected('empty <fee> element')
  const id = text(node.id)
  if (id === '') throw new XmlRejected('<fee> without <id>')
  return {
    id,
    type: coded(node.type),
    status: coded(node.status),
    userPrimaryId: text(node.user_primary_id),
    balance: amount(node.balance, `fee ${id} balance`),
    originalAmount: amount(node.original_amount, `fee ${id} original_amount`),
    currency: attr(node.balance, 'currency') || attr(node, 'currency') || listCurrency,
    creationTime: text(node.creation_time),
    comment: text(node.comment),
    owner: coded(node.owner),
    title: text(node.title),
    barcode: text(node.barcode),
    transactions: array(node.transactions?.transaction).map(mapTransaction)
  }
}

export function mapFeeList (doc: Record<string, any>): FeeList {
  const list = doc.fees
  if (list === undefined) throw new XmlRejected('no <fees> element')
  const node = list === '' || list === null ? {} : list
  const currency = attr(node, 'currency')
  const fees = array(node.fee).map(f => mapFee(f, currency))
  const totalSum = attr(node, 'total_sum')
  return {
    fees,
    totalSum: totalSum === '' ? fees.reduce((s, f) => s + f.balance, 0) as Cents : amount(totalSum, 'total_sum'),
    currency
  }
}

export function mapSingleFee (doc: Record<string, any>): Fee {
  if (doc.fee === undefined) throw new XmlRejected('no <fee> element')
  return mapFee(Array.isArray(doc.fee) ? doc.fee[0] : doc.fee)
}
