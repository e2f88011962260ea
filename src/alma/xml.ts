// Alma speaks XML. This module holds the one parser (strict well-formedness, no DOCTYPE, values kept as strings,
// lists always lists) and the mapping from Alma's elements to the service's types.
//
// The document becomes plain objects: an element with text only is its text ('' when empty), otherwise an object
// with '@name' attributes, child elements by local name (namespace prefixes dropped) and '#text'. It is built
// from saxes' events rather than with fast-xml-parser: the same shape at about a fifth of the CPU, measured on a
// fines page's two documents (docs/performance.md), and saxes already streams the holds job's users export.
// fast-xml-parser stays the Alma sandbox's reader, so the sandbox checks what the service PUTs with a parser of its own.

import { SaxesParser, type SaxesTagPlain } from 'saxes'
import { type Cents, parseCents } from '../money.ts'
import type { AlmaUser, Coded, Fee, FeeList, FeeTransaction, UserBlock } from './types.ts'

export class XmlRejected extends Error {
  readonly kind = 'XmlRejected'
}

/** Element names that are lists in Alma's schemas, so one element still maps to an array. */
const LIST_ELEMENTS = new Set([
  'fee', 'user_block', 'email', 'user_identifier', 'transaction', 'error', 'address', 'phone', 'email_type',
  'user_role', 'user_note', 'user_statistic', 'Row', 'user', 'element', 'block'
])

/** Element names that would reach an object's prototype are refused; names that would shadow its methods are
 * renamed. Attribute names need neither: the '@' prefix makes any name an ordinary key. */
const REFUSED_NAMES = new Set(['__proto__', 'constructor', 'prototype'])
const SHADOWING_NAMES = new Set(['hasOwnProperty', 'toString', 'valueOf', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__'])
const MAX_DEPTH = 100

function withoutPrefix (name: string): string {
  const colon = name.indexOf(':')
  return colon === -1 ? name : name.slice(colon + 1)
}

function elementName (name: string): string {
  const local = withoutPrefix(name)
  if (REFUSED_NAMES.has(local)) throw new XmlRejected(`the name "${local}" is not accepted`)
  return SHADOWING_NAMES.has(local) ? '__' + local : local
}

interface OpenElement {
  name: string
  node: Record<string, unknown>
  text: string
  hasContent: boolean
}

/**
 * Parses an XML document from Alma. Documents with a DOCTYPE or ENTITY declaration are refused outright:
 * Alma never sends one, and refusing them is the simplest defence against entity expansion. The five XML
 * entities and character references become text once; an undefined entity stays literal text.
 */
export function parseXml (text: string): Record<string, any> {
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw new XmlRejected('XML with a DOCTYPE or ENTITY declaration is not accepted')
  const document: Record<string, unknown> = {}
  const open: OpenElement[] = [{ name: '', node: document, text: '', hasContent: true }]
  const parser = new SaxesParser()
  parser.on('error', (error) => {
    if (/undefined entity/.test(error.message)) return
    throw error
  })
  parser.on('opentag', (tag: SaxesTagPlain) => {
    if (open.length > MAX_DEPTH) throw new XmlRejected(`elements nested deeper than ${MAX_DEPTH}`)
    const element: OpenElement = { name: elementName(tag.name), node: {}, text: '', hasContent: false }
    for (const name in tag.attributes) {
      if (name === 'xmlns' || name.startsWith('xmlns:')) continue
      element.node['@' + withoutPrefix(name)] = tag.attributes[name].trim()
      element.hasContent = true
    }
    open.push(element)
  })
  parser.on('text', (chunk) => { open[open.length - 1].text += chunk })
  parser.on('cdata', (chunk) => { open[open.length - 1].text += chunk })
  parser.on('closetag', () => {
    const element = open.pop() as OpenElement
    const parent = open[open.length - 1]
    const text = element.text.trim()
    let value: unknown = text
    if (element.hasContent) {
      if (text !== '') element.node['#text'] = text
      value = element.node
    }
    parent.hasContent = true
    const siblings = parent.node[element.name]
    if (LIST_ELEMENTS.has(element.name)) {
      if (Array.isArray(siblings)) siblings.push(value)
      else parent.node[element.name] = siblings === undefined ? [value] : [siblings, value]
    } else if (siblings === undefined) {
      parent.node[element.name] = value
    } else if (Array.isArray(siblings)) {
      // values are text or objects, never arrays: an array here is this element repeated
      siblings.push(value)
    } else {
      parent.node[element.name] = [siblings, value]
    }
  })
  try {
    parser.write(text).close()
  } catch (error) {
    if (error instanceof XmlRejected) throw error
    throw new XmlRejected(`not well-formed XML: ${(error as Error).message.split('\n')[0].slice(0, 200)}`)
  }
  if (Object.keys(document).length === 0) throw new XmlRejected('not an XML document')
  return document
}

/** The text of an element that may be absent, empty (''), a string, or an object with attributes. */
export function text (node: unknown): string {
  if (node === undefined || node === null) return ''
  if (typeof node === 'string') return node
  if (typeof node === 'number' || typeof node === 'boolean') return String(node)
  if (Array.isArray(node)) return text(node[0])
  if (typeof node === 'object') return text((node as Record<string, unknown>)['#text'])
  return ''
}

export function attr (node: unknown, name: string): string {
  if (node !== null && typeof node === 'object' && !Array.isArray(node)) {
    const value = (node as Record<string, unknown>)['@' + name]
    return value === undefined ? '' : String(value)
  }
  return ''
}

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
