// PeopleSoft Flat File Journal Import (GL_JRNL_IMP): fixed-width H (header), L (line) and C (control) records
// laid out by a layout file (GL_FLAT_LAYOUT), because campuses customise GL_JRNL_IMPORT and only the first
// header columns are in public documentation (config/gl-flat-layout.json says field by field what is known).

import { readFile } from 'node:fs/promises'
import { type Cents, formatDecimal } from '../../money.ts'
import { DATE_FORMATS, type DateFormat, formatDate } from '../dates.ts'
import { BadInput } from '../errors.ts'
import type { Journal, JournalLine } from './journal.ts'
import type { GlMap } from './map.ts'

export interface LayoutField {
  name: string
  /** 1-based column */
  start: number
  length: number
  /** a value from the journal (see SOURCES) or a constant */
  source?: string
  value?: string
  justify?: 'left' | 'right'
  pad?: string
  /** dates: MMDDYYYY (default) etc.; amounts: "decimal" (explicit point, leading minus; default) or "cents" */
  format?: string
  /** what to do with a value longer than the field: fail the run (default) or cut it */
  overflow?: 'error' | 'truncate'
}

export interface FlatLayout {
  path: string
  /** write a "#" comment row with the totals first */
  comment: boolean
  lineEnding: '\n' | '\r\n'
  /** decimals of a "decimal" amount: 2 (12.50) or 3 (12.500); MONETARY_AMOUNT is Signed Number(28,3) */
  amountDecimals: 2 | 3
  records: { H: LayoutField[], L: LayoutField[], C: LayoutField[] }
}

type Value = string | number | { cents: Cents } | { date: string }

const HEADER_SOURCES = ['businessUnit', 'journalId', 'journalDate', 'ledgerGroup', 'ledger', 'source', 'description', 'currency', 'lineCount', 'totalDebits', 'totalCredits', 'netAmount']
const LINE_SOURCES = ['lineNumber', 'account', 'fund', 'deptid', 'amount', 'lineDescription', 'reference', 'tx', 'batchno', 'feeId', 'feeType', 'owner', 'checkoutId']
export const SOURCES = { H: HEADER_SOURCES, L: [...HEADER_SOURCES, ...LINE_SOURCES], C: HEADER_SOURCES }

export async function loadLayout (path: string): Promise<FlatLayout> {
  let raw: any
  try {
    raw = JSON.parse(await readFile(path, 'utf8'))
  } catch (error) {
    throw new BadInput(path, '', `not readable JSON (${(error as Error).message})`)
  }
  const records = raw?.records
  if (records === null || typeof records !== 'object') throw new BadInput(path, 'records', 'must have H, L and C field lists')
  const decimals = raw.amountDecimals ?? 2
  if (decimals !== 2 && decimals !== 3) throw new BadInput(path, 'amountDecimals', `must be 2 or 3 (got ${JSON.stringify(decimals)})`)
  const layout: FlatLayout = { path, comment: raw.comment !== false, lineEnding: raw.lineEnding === 'CRLF' ? '\r\n' : '\n', amountDecimals: decimals, records: { H: [], L: [], C: [] } }
  for (const type of ['H', 'L', 'C'] as const) {
    const fields = records[type]
    if (!Array.isArray(fields) || fields.length === 0) throw new BadInput(path, `records.${type}`, 'must be a non-empty list of fields')
    let end = 0
    layout.records[type] = fields.map((f: any, i: number): LayoutField => {
      const where = `records.${type}[${i}] (${String(f?.name ?? '?')})`
      if (!Number.isInteger(f?.start) || !Number.isInteger(f?.length) || f.start < 1 || f.length < 1) throw new BadInput(path, where, 'needs a whole "start" (from 1) and "length"')
      if (f.start <= end) throw new BadInput(path, where, `starts at column ${f.start}, inside the previous field (which ends at ${end}); fields must be in column order without overlap`)
      end = f.start + f.length - 1
      if ((f.source === undefined) === (f.value === undefined)) throw new BadInput(path, where, 'needs exactly one of "source" or "value"')
      if (f.source !== undefined && !SOURCES[type].includes(f.source)) throw new BadInput(path, where, `unknown source "${f.source}"; a ${type} record can use ${SOURCES[type].join(', ')}`)
      if (f.value !== undefined && String(f.value).length > f.length) throw new BadInput(path, where, `value "${f.value}" is longer than ${f.length}`)
      if (f.pad !== undefined && String(f.pad).length !== 1) throw new BadInput(path, where, '"pad" must be one character')
      if (f.format !== undefined && !['decimal', 'cents', ...DATE_FORMATS].includes(f.format)) throw new BadInput(path, where, `unknown format "${f.format}"`)
      return { name: String(f.name ?? ''), start: f.start, length: f.length, source: f.source, value: f.value, justify: f.justify === 'right' ? 'right' : 'left', pad: f.pad ?? ' ', format: f.format, overflow: f.overflow === 'truncate' ? 'truncate' : 'error' }
    })
    if (layout.records[type][0].start !== 1 || layout.records[type][0].value !== type) throw new BadInput(path, `records.${type}[0]`, `the first field must be the record type: start 1, value "${type}"`)
  }
  return layout
}

function render (value: Value, field: LayoutField, decimals: 2 | 3): string {
  if (typeof value === 'object' && 'cents' in value) return field.format === 'cents' ? String(value.cents) : formatDecimal(value.cents) + (decimals === 3 ? '0' : '')
  if (typeof value === 'object' && 'date' in value) return formatDate(value.date, (field.format ?? 'MMDDYYYY') as DateFormat)
  return String(value)
}

function record (layout: FlatLayout, type: 'H' | 'L' | 'C', values: Record<string, Value>, where: string): string {
  let out = ''
  for (const field of layout.records[type]) {
    let text = field.value ?? render(values[field.source as string], field, layout.amountDecimals)
    if (text.length > field.length) {
      if (field.overflow !== 'truncate') throw new BadInput(layout.path, where, `${field.name} "${text}" does not fit in ${field.length} columns; widen the field or set "overflow": "truncate" in the layout`)
      text = text.slice(0, field.length)
    }
    const pad = field.pad as string
    out = out.padEnd(field.start - 1, ' ') + (field.justify === 'right' ? text.padStart(field.length, pad) : text.padEnd(field.length, pad))
  }
  return out
}

/** The flat file's rows for the day's journals: [# comment], then H, its L rows and its C row per journal. */
export function * flatRecords (journals: Journal[], map: GlMap, layout: FlatLayout): Iterable<string> {
  const eol = layout.lineEnding
  for (const journal of journals) {
    const header: Record<string, Value> = {
      businessUnit: map.businessUnit,
      journalId: map.journalId,
      journalDate: { date: journal.date },
      ledgerGroup: map.ledgerGroup,
      ledger: map.ledger,
      source: map.source,
      description: map.description,
      currency: journal.currency,
      lineCount: journal.lines.length,
      totalDebits: { cents: journal.totalDebits },
      totalCredits: { cents: journal.totalCredits },
      netAmount: { cents: (journal.totalDebits - journal.totalCredits) as Cents }
    }
    if (layout.comment) {
      yield `# alma-cashnet GL journal ${journal.date} ${journal.currency}: ${journal.lines.length} lines, debits ${formatDecimal(journal.totalDebits)}, credits ${formatDecimal(journal.totalCredits)}`.slice(0, 101) + eol
    }
    yield record(layout, 'H', header, `${journal.currency} header`) + eol
    for (const line of journal.lines) {
      yield record(layout, 'L', { ...header, ...lineValues(line) }, `${journal.currency} line ${line.lineNumber}`) + eol
    }
    yield record(layout, 'C', header, `${journal.currency} control`) + eol
  }
}

function lineValues (line: JournalLine): Record<string, Value> {
  return { ...line, amount: { cents: line.amount } }
}
