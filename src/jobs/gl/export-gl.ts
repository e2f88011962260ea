// export:gl: the journal of one day's POSTED fee lines and recorded refunds, as CSV or as a PeopleSoft flat
// file. The day is [midnight, next midnight) in the configured time zone (TIMEZONE, the same days as the staff
// reports), judged by each line's posted_at and each refund's recording time, so every fee line and refund lands
// in exactly one day's journal and re-running a past day gives the same bytes.

import { join } from 'node:path'
import type { Ledger } from '../../ledger/ledger.ts'
import { formatDecimal } from '../../money.ts'
import { dayRange } from '../dates.ts'
import type { WriteFiles } from '../output.ts'
import { type FlatLayout, flatRecords } from './flat.ts'
import { buildJournals, type Journal } from './journal.ts'
import type { GlMap } from './map.ts'

export interface GlOptions {
  date: string
  timeZone: string
  format: 'csv' | 'flat'
  outDir: string
  map: GlMap
  layout?: FlatLayout
}

export const CSV_HEADER = ['BUSINESS_UNIT', 'JOURNAL_DATE', 'LEDGER', 'CURRENCY_CD', 'JOURNAL_LINE', 'ACCOUNT', 'FUND_CODE', 'DEPTID', 'MONETARY_AMOUNT',
  'LINE_DESCR', 'JRNL_LN_REF', 'CASHNET_BATCHNO', 'CASHNET_TX', 'ALMA_FEE_ID', 'FEE_TYPE', 'OWNER', 'CHECKOUT_ID']

export function glFileName (date: string, format: 'csv' | 'flat'): string {
  return `gl-journal-${date}.${format === 'csv' ? 'csv' : 'dat'}`
}

export async function exportGl (ledger: Ledger, options: GlOptions, write: WriteFiles): Promise<{ path: string, journals: Journal[] }> {
  const { from, to } = dayRange(options.date, options.timeZone)
  const journals = buildJournals(await ledger.postedLines(from, to), options.map, options.date, await ledger.refundsRecorded(from, to))
  const path = join(options.outDir, glFileName(options.date, options.format))
  if (options.format === 'csv') {
    await write([{ path, csv: csvRows(journals, options.map) }])
  } else {
    if (options.layout === undefined) throw new Error('a flat journal needs a layout')
    const empty = journals.length === 0 ? [`# alma-cashnet GL journal ${options.date}: no payments were posted to Alma on this day${options.layout.lineEnding}`] : []
    await write([{ path, text: journals.length === 0 ? empty : flatRecords(journals, options.map, options.layout) }])
  }
  return { path, journals }
}

function * csvRows (journals: Journal[], map: GlMap): Iterable<string[]> {
  yield CSV_HEADER
  for (const journal of journals) {
    for (const l of journal.lines) {
      yield [map.businessUnit, journal.date, map.ledger, journal.currency, String(l.lineNumber), l.account, l.fund, l.deptid, formatDecimal(l.amount),
        l.lineDescription, l.reference, l.batchno, l.tx, l.feeId, l.feeType, l.owner, l.checkoutId]
    }
  }
}
