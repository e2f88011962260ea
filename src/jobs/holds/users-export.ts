// Streams an Alma users file (the SIS profile's "Export User by Conditions" XML, formerly "Export user blocks",
// or a Users API <users><user> list) and hands over one patron at a time. Files run to hundreds of MB, so only
// the current <user> is ever held.
// Ex Libris publishes no schema or sample of that export, only its meaning: every user with a block and/or an
// active balance above 0 (internal users included, with an empty userId), the Match ID in userId. So element
// names are matched loosely (namespace prefixes, case, '_' and '-' ignored), the record element is found, not
// assumed (or named with HOLDS_RECORD_ELEMENT), and the meaning is enforced: a file in which most records have
// neither a block nor a balance was read with the wrong record element, and is refused.

import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { SaxesParser } from 'saxes'
import { type Cents, parseCents } from '../../money.ts'
import { BadInput } from '../errors.ts'
import { type Progress, SILENT } from '../progress.ts'

export interface PatronBlock {
  type: string
  description: string
  status: string
  expiryDate: string
}

export interface PatronRecord {
  /** 1-based position in the file, for messages */
  record: number
  line: number
  primaryId: string
  /** the identifier of the configured type; '' when the patron has none */
  campusId: string
  name: string
  /** null when the file says nothing about the balance */
  balance: Cents | null
  currency: string
  blocks: PatronBlock[]
}

interface Node {
  name: string
  attrs: Record<string, string>
  text: string
  children: Node[]
  line: number
}

/** "xb:user_Id" and "userId" are the same name here. */
function norm (name: string): string {
  return name.slice(name.indexOf(':') + 1).toLowerCase().replace(/[_-]/g, '')
}

const ID_ELEMENTS = new Set(['userid', 'primaryid'])
const BALANCE_ELEMENTS = ['activebalance', 'balance', 'fees', 'totalbalance', 'finesfeesbalance', 'activefinesbalance', 'compositesum']
/** Alma's bursar export writes amounts as <compositeSum><sum>12.50</sum><currency>USD</currency></compositeSum>. */
const AMOUNT_ELEMENTS = ['sum', 'amount', 'value']
const BLOCK_ELEMENTS = new Set(['userblock', 'block'])
/** if no user record has begun after this many elements, the file is not a users export */
const SEARCH_LIMIT = 5000

function child (node: Node, ...names: string[]): Node | undefined {
  for (const name of names) {
    const found = node.children.find(c => c.name === name)
    if (found !== undefined) return found
  }
  return undefined
}

/**
 * A child of that name, or else the first descendant of that name outside the blocks: with HOLDS_RECORD_ELEMENT
 * the record may wrap its brief user data one level down (<userRecord><userDetails><userId>…).
 */
function find (node: Node, ...names: string[]): Node | undefined {
  const direct = child(node, ...names)
  if (direct !== undefined) return direct
  for (const c of node.children) {
    if (BLOCK_ELEMENTS.has(c.name)) continue
    const found = find(c, ...names)
    if (found !== undefined) return found
  }
  return undefined
}

function value (node: Node | undefined): string {
  return node?.text.trim() ?? ''
}

function descendants (node: Node, match: (n: Node) => boolean, into: Node[] = []): Node[] {
  for (const c of node.children) {
    if (match(c)) into.push(c)
    else descendants(c, match, into)
  }
  return into
}

function amount (text: string, source: string, where: string, field: string): Cents {
  try {
    return parseCents(text.replace(/,/g, ''), { allowNegative: true })
  } catch (error) {
    throw new BadInput(source, where, `${field} "${text.slice(0, 40)}" is not an amount`)
  }
}

function toPatron (node: Node, idType: string, record: number, line: number, source: string): PatronRecord {
  const where = `record ${record} (line ${line})`
  const primaryId = value(find(node, 'primaryid', 'primaryidentifier'))
  const wanted = idType.toLowerCase()
  const identifiers = descendants(node, n => n.name === 'useridentifier')
  const typed = identifiers.find(i => value(child(i, 'idtype', 'type')).toLowerCase() === wanted && value(child(i, 'status')).toUpperCase() !== 'INACTIVE')
  // The export writes the profile's Match ID to userId; the Users API lists identifiers by type.
  let campusId = typed !== undefined ? value(child(typed, 'value')) : value(find(node, 'userid'))
  if (campusId === '' && (wanted === 'primary_id' || wanted === 'primaryid')) campusId = primaryId
  let balance: Cents | null = null
  let currency = ''
  const outer = find(node, ...BALANCE_ELEMENTS)
  // <activeBalance><compositeSum><sum>…</sum><currency>…</currency></compositeSum></activeBalance> as well as
  // <activeBalance currency="USD">12.50</activeBalance> and <activeBalance><sum>…</sum><currency>…</currency>.
  const balanceNode = outer !== undefined && child(outer, ...AMOUNT_ELEMENTS) === undefined ? child(outer, 'compositesum') ?? outer : outer
  if (balanceNode !== undefined) {
    const sum = balanceNode.children.length > 0 ? value(child(balanceNode, ...AMOUNT_ELEMENTS)) : value(balanceNode)
    currency = balanceNode.attrs.currency ?? outer?.attrs.currency ?? value(child(balanceNode, 'currency'))
    if (sum !== '') balance = amount(sum, source, where, balanceNode.name)
  }
  if (currency === '') currency = value(child(node, 'currency'))
  const blocks = descendants(node, n => BLOCK_ELEMENTS.has(n.name)).map(b => ({
    type: value(child(b, 'blocktype', 'type')),
    description: value(child(b, 'blockdescription', 'description', 'code')),
    status: value(child(b, 'blockstatus', 'status')).toUpperCase() || 'ACTIVE',
    expiryDate: value(child(b, 'expirydate', 'expirationdate', 'expiry', 'enddate')).slice(0, 10)
  }))
  const full = value(find(node, 'fullname'))
  const name = full !== '' ? full : [value(find(node, 'firstname')), value(find(node, 'lastname'))].filter(s => s !== '').join(' ')
  if (primaryId === '' && campusId === '' && name === '') throw new BadInput(source, where, `<${node.name}> has no primary id, no ${idType} and no name`)
  return { record, line, primaryId, campusId, name, balance, currency, blocks }
}

export interface ReadOptions {
  /** the repeating record element (HOLDS_RECORD_ELEMENT), matched loosely; found from the first userId when absent */
  recordElement?: string
}

/** What the export promises of every record: a block, or an active balance above 0. */
function blockedOrOwing (patron: PatronRecord): boolean {
  return patron.blocks.length > 0 || (patron.balance !== null && patron.balance > 0)
}

/**
 * Reads the file and calls onPatron for each user, in file order. Throws BadInput naming the record, and, after
 * the last record, when most records have neither a block nor a balance (nothing has been written by then).
 */
export async function readUsersExport (path: string, idType: string, onPatron: (patron: PatronRecord) => void, progress: Progress = SILENT, options: ReadOptions = {}): Promise<number> {
  const size = (await stat(path)).size
  const parser = new SaxesParser({ position: true })
  const stack: Node[] = []
  const named = options.recordElement !== undefined && options.recordElement !== '' ? norm(options.recordElement) : ''
  let recordDepth = -1
  let recordName = ''
  let records = 0
  let elements = 0
  let neither = 0
  let firstNeither = 0
  const guess = (): string => named !== ''
    ? `<${options.recordElement ?? ''}> (HOLDS_RECORD_ELEMENT)`
    : `<${recordName}> (guessed as the parent of the first userId/primaryId; set HOLDS_RECORD_ELEMENT, or --record-element, to name the repeating user element)`
  parser.on('opentag', tag => {
    const node: Node = { name: norm(tag.name), attrs: {}, text: '', children: [], line: parser.line }
    for (const [key, v] of Object.entries(tag.attributes as Record<string, string>)) node.attrs[norm(key)] = v
    stack[stack.length - 1]?.children.push(node)
    stack.push(node)
    if (recordDepth < 0 && named !== '' && node.name === named) {
      recordDepth = stack.length - 1
      recordName = named
    }
    if (recordDepth < 0 && ++elements > SEARCH_LIMIT) {
      throw new BadInput(path, '', named !== ''
        ? `no <${options.recordElement ?? ''}> element (HOLDS_RECORD_ELEMENT) in the first ${SEARCH_LIMIT} elements`
        : `no user records found: no userId or primary_id element in the first ${SEARCH_LIMIT} elements`)
    }
  })
  // Only leaves need their text; whitespace between records would otherwise pile up on the list element.
  const addText = (text: string): void => {
    const top = stack[stack.length - 1]
    if (top !== undefined && (recordDepth < 0 || stack.length > recordDepth + 1)) top.text += text
  }
  parser.on('text', addText)
  parser.on('cdata', addText)
  parser.on('closetag', () => {
    const node = stack.pop() as Node
    const depth = stack.length
    if (recordDepth < 0 && named === '' && ID_ELEMENTS.has(node.name) && depth > 0) {
      recordDepth = depth - 1
      recordName = stack[recordDepth].name
    }
    if (depth === recordDepth && node.name === recordName) {
      records++
      stack[depth - 1]?.children.pop()
      const patron = toPatron(node, idType, records, node.line, path)
      if (!blockedOrOwing(patron)) {
        neither++
        if (firstNeither === 0) firstNeither = patron.record
      }
      onPatron(patron)
    }
  })
  progress.start(size, 'bytes')
  const input = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 18 })
  try {
    for await (const chunk of input) {
      parser.write(chunk as string)
      progress.update(input.bytesRead)
    }
    parser.close()
  } catch (error) {
    if (error instanceof BadInput) throw error
    // saxes reports "file:line:col: message"; say which record the damage is in as well.
    const reason = (error as Error).message.replace(/^[^:]*:\d+:\d+: /, '')
    throw new BadInput(path, `record ${records + 1} (line ${parser.line})`, `not well-formed XML (${reason}); is the file truncated?`)
  } finally {
    input.destroy()
    progress.stop()
  }
  if (recordDepth < 0) {
    throw new BadInput(path, '', named !== '' ? `no <${options.recordElement ?? ''}> element (HOLDS_RECORD_ELEMENT) in the file` : 'no user records found (no userId or primary_id element)')
  }
  if (neither * 2 > records) {
    throw new BadInput(path, '', `${neither} of ${records} records have neither a block nor a balance above 0, but Alma's export lists only users ` +
      `with one: the record element is probably wrong. Records were read as ${guess()}`)
  }
  if (neither > 0) {
    progress.log(`${neither} of ${records} records (the first is record ${firstNeither}) have neither a block nor a balance above 0; Alma's export lists only users with one`)
  }
  return records
}
