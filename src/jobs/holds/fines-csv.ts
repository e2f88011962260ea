// Reads the CSV of export:fines as a source of patrons for the holds export (balances only, no blocks),
// streaming it line by line; a bad line stops the run with the file and line number.

import { parse } from 'csv-parse'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { parseCents } from '../../money.ts'
import { BadInput } from '../errors.ts'
import { type Progress, SILENT } from '../progress.ts'
import { FINES_HEADER } from '../fines/format.ts'
import type { PatronRecord } from './users-export.ts'

export async function readFinesCsv (path: string, onPatron: (patron: PatronRecord) => void, progress: Progress = SILENT): Promise<number> {
  const size = (await stat(path)).size
  const input = createReadStream(path)
  const columns = (header: string[]): string[] => {
    const names = header.map(h => h.trim().toUpperCase())
    // Read by name, a column given twice (BALANCE and balance) would silently be whichever comes last.
    const twice = names.find((name, i) => name !== '' && names.indexOf(name) !== i)
    if (twice !== undefined) throw new BadInput(path, 'line 1', `column ${twice} appears twice; expected a header ${FINES_HEADER.join(',')}`)
    return names
  }
  const parser = input.pipe(parse({ bom: true, columns, skip_empty_lines: true, info: true }))
  // export:fines writes one row per patron and currency: a second one is a repeated (concatenated, hand-edited)
  // row, and adding it up would double the balance on the hold.
  const seen = new Map<string, number>()
  let records = 0
  progress.start(size, 'bytes')
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>, info: { lines: number } }>) {
      if (records === 0) {
        const missing = FINES_HEADER.filter(h => h !== 'AS_OF_DATE' && !(h in record))
        if (missing.length > 0) throw new BadInput(path, 'line 1', `missing column(s) ${missing.join(', ')}; expected a header ${FINES_HEADER.join(',')}`)
      }
      records++
      const where = `line ${info.lines}`
      let balance
      try {
        balance = parseCents(record.BALANCE, { allowNegative: true })
      } catch {
        throw new BadInput(path, where, `BALANCE "${String(record.BALANCE).slice(0, 40)}" is not an amount`)
      }
      const primaryId = record.ALMA_PRIMARY_ID.trim()
      const campusId = record.CAMPUS_ID.trim()
      if (primaryId === '' && campusId === '') throw new BadInput(path, where, 'neither CAMPUS_ID nor ALMA_PRIMARY_ID is given')
      const currency = record.CURRENCY.trim()
      const key = `${primaryId}\u0000${campusId}\u0000${currency}`
      const before = seen.get(key)
      if (before !== undefined) throw new BadInput(path, where, `${primaryId} (${campusId}) in ${currency || 'no currency'} is already on line ${before}; is the file concatenated?`)
      seen.set(key, info.lines)
      onPatron({ record: records, line: info.lines, primaryId, campusId, name: '', balance, currency, blocks: [] })
      progress.update(input.bytesRead)
    }
  } catch (error) {
    if (error instanceof BadInput) throw error
    const line = (error as { lines?: number }).lines
    throw new BadInput(path, line !== undefined ? `line ${line}` : `after record ${records}`, (error as Error).message)
  } finally {
    input.destroy()
    progress.stop()
  }
  if (records === 0) throw new BadInput(path, '', 'no rows: an empty fines file would release every hold')
  return records
}
