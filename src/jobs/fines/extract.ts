// export:fines: the Alma Analytics fines report through the API, page after page (ResumptionToken until
// IsFinished), its Column1..N named by the headings of page 1, summed per patron into fines-DATE.csv.

import { join } from 'node:path'
import type { AlmaClient } from '../../alma/client.ts'
import { text } from '../../alma/xml.ts'
import { type Cents, formatDecimal, parseCents } from '../../money.ts'
import { BadInput } from '../errors.ts'
import { type Progress, SILENT } from '../progress.ts'
import type { WriteFiles } from '../output.ts'
import { FINES_HEADER, finesFileName } from './format.ts'

export type FinesField = 'campusId' | 'primaryId' | 'balance' | 'currency'

export interface FinesOptions {
  reportPath: string
  pageSize: number
  date: string
  defaultCurrency: string
  /** report headings by field; a field left out is found by its usual heading */
  headings: Partial<Record<FinesField, string>>
  outDir: string
}

/** How Alma's Fines and Fees subject area usually names the columns. */
const USUAL: Record<FinesField, RegExp> = {
  primaryId: /primary identifier/i,
  campusId: /univ|campus|student|match|identifier value|^identifier$|emplid/i,
  balance: /remaining|balance|outstanding|owed|amount|sum/i,
  currency: /currency/i
}

/**
 * Balances by patron and currency, keyed `primaryId NUL campusId NUL currency`: one number per patron rather
 * than an object, because a large university has 200,000 patrons with a balance and this map is the job's
 * only long-lived data (measured: 300 MB peak with an object per patron, most of it garbage V8 had room for).
 */
type Owed = Map<string, number>
const SEP = '\u0000'

function as<T> (node: unknown): T[] {
  if (node === undefined || node === null || node === '') return []
  return (Array.isArray(node) ? node : [node]) as T[]
}

function columnsFrom (rowset: any, options: FinesOptions, where: string): Partial<Record<FinesField, string>> {
  const elements = as<any>(rowset?.schema?.complexType?.sequence?.element)
  const headings = elements.map(e => ({ column: String(e['@name'] ?? ''), heading: String(e['@columnHeading'] ?? '') })).filter(e => e.column !== 'Column0')
  if (headings.length === 0) throw new BadInput(options.reportPath, where, 'no column headings (col_names) on the first page')
  const found: Partial<Record<FinesField, string>> = {}
  const taken = new Set<string>()
  for (const field of ['primaryId', 'currency', 'campusId', 'balance'] as FinesField[]) {
    const wanted = options.headings[field]
    const hit = wanted !== undefined
      ? headings.find(h => h.heading.toLowerCase() === wanted.toLowerCase())
      : headings.find(h => !taken.has(h.column) && USUAL[field].test(h.heading))
    if (wanted !== undefined && hit === undefined) throw new BadInput(options.reportPath, where, `no column headed "${wanted}" (${field}); the report has ${headings.map(h => `"${h.heading}"`).join(', ')}`)
    if (hit !== undefined) {
      found[field] = hit.column
      taken.add(hit.column)
    }
  }
  if (found.balance === undefined || (found.primaryId === undefined && found.campusId === undefined)) {
    throw new BadInput(options.reportPath, where, `cannot tell which columns hold the patron and the balance among ${headings.map(h => `"${h.heading}"`).join(', ')}; set ALMA_FINES_COLUMNS`)
  }
  return found
}

export async function exportFines (client: AlmaClient, options: FinesOptions, write: WriteFiles, progress: Progress = SILENT): Promise<{ path: string, patrons: number, rows: number, pages: number }> {
  const owed: Owed = new Map()
  let columns: Partial<Record<FinesField, string>> | undefined
  let token = ''
  let rows = 0
  let emptyInARow = 0
  let page = 0
  for (;;) {
    page++
    const where = `page ${page}`
    const doc = await client.analyticsReportPage(page === 1 ? { path: options.reportPath } : { token }, options.pageSize)
    const result = doc.report?.QueryResult
    if (result === undefined) throw new BadInput(options.reportPath, where, 'the answer has no report/QueryResult')
    if (page === 1) {
      token = text(result.ResumptionToken)
      columns = columnsFrom(result.ResultXml?.rowset, options, where)
    }
    const pageRows = as<Record<string, unknown>>(result.ResultXml?.rowset?.Row)
    pageRows.forEach((row, i) => { add(owed, row, columns as Partial<Record<FinesField, string>>, options, `${where} row ${i + 1}`) })
    rows += pageRows.length
    progress.log(`page ${page}: ${pageRows.length} row(s)`)
    if (text(result.IsFinished) === 'true') break
    if (token === '') throw new BadInput(options.reportPath, where, 'unfinished report without a ResumptionToken')
    // Analytics sometimes answers an empty, unfinished page while it works; a few in a row are tolerated.
    emptyInARow = pageRows.length === 0 ? emptyInARow + 1 : 0
    if (emptyInARow > 5) throw new BadInput(options.reportPath, where, 'Analytics kept answering empty pages without finishing')
  }
  // Sorted by primary id, then campus id and currency: the key's own order, since NUL sorts before any character.
  const patrons = [...owed.keys()].filter(key => (owed.get(key) as number) > 0).sort()
  const path = join(options.outDir, finesFileName(options.date))
  await write([{ path, csv: finesRows(owed, patrons, options.date) }])
  return { path, patrons: patrons.length, rows, pages: page }
}

function add (owed: Owed, row: Record<string, unknown>, columns: Partial<Record<FinesField, string>>, options: FinesOptions, where: string): void {
  const cell = (field: FinesField): string => columns[field] === undefined ? '' : text(row[columns[field] as string]).trim()
  const primaryId = cell('primaryId')
  const campusId = cell('campusId')
  const currency = cell('currency') || options.defaultCurrency
  if (primaryId === '' && campusId === '') throw new BadInput(options.reportPath, where, 'a row without a patron identifier')
  let balance: Cents
  try {
    balance = parseCents(cell('balance').replace(/,/g, '') || '0', { allowNegative: true })
  } catch {
    throw new BadInput(options.reportPath, where, `balance "${cell('balance').slice(0, 40)}" is not an amount`)
  }
  // One row per fee or per patron: either way the file carries one line per patron and currency.
  const key = `${primaryId}${SEP}${campusId}${SEP}${currency}`
  owed.set(key, (owed.get(key) ?? 0) + balance)
}

function * finesRows (owed: Owed, keys: string[], date: string): Iterable<string[]> {
  yield [...FINES_HEADER]
  for (const key of keys) {
    const [primaryId, campusId, currency] = key.split(SEP)
    yield [campusId, primaryId, formatDecimal(owed.get(key) as Cents), currency, date]
  }
}
