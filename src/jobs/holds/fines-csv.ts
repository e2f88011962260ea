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
  const parser = input.pipe(parse({ bom: true, columns: (header: string[]) => header.map(h => h.trim().toUpperCase()), skip_empty_lines: true, info: true }))
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
      onPatron({ record: records, line: info.lines, primaryId, campusId, name: '', balance, currency: record.CURRENCY.trim(), blocks: [] })
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
