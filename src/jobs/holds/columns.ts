// The columns of the add and remove files. The defaults follow PeopleSoft Campus Solutions' service indicator
// record (SRVC_IND_DATA); a campus picks its own set and order with HOLDS_COLUMNS.

import { formatDecimal } from '../../money.ts'
import { type DateFormat, formatDate } from '../dates.ts'
import { describe } from './rules.ts'
import type { Hold } from './snapshot.ts'

export const DEFAULT_COLUMNS = ['EMPLID', 'INSTITUTION', 'SRVC_IND_CD', 'SRVC_IND_REASON', 'SRVC_IND_ACT_DT', 'SRVC_IND_REFRNCE', 'AMOUNT', 'CURRENCY_CD', 'DEPTID', 'COMM_COMMENTS']

export interface HoldCodes {
  institution: string
  code: string
  reason: string
  deptid: string
  date: string
  dateFormat: DateFormat
}

export interface HoldRow {
  action: 'ASSIGN' | 'RELEASE'
  hold: Hold
  /** the patron's other campus id (the old one on an assign, the new one on a release), when it changed */
  otherId?: string
}

function comment (row: HoldRow): string {
  const reason = describe(row.hold, row.hold.amount, row.hold.currency)
  if (row.action === 'ASSIGN') return `Library hold: ${reason}${row.otherId !== undefined ? `; campus id changed from ${row.otherId}` : ''}`
  return `Library hold released (was: ${reason})${row.otherId !== undefined ? `; campus id changed to ${row.otherId}` : ''}`
}

const COLUMNS: Record<string, (row: HoldRow, codes: HoldCodes) => string> = {
  EMPLID: r => r.hold.emplid,
  INSTITUTION: (_r, c) => c.institution,
  SRVC_IND_CD: (_r, c) => c.code,
  SRVC_IND_REASON: (_r, c) => c.reason,
  SRVC_IND_ACT_DT: (_r, c) => formatDate(c.date, c.dateFormat),
  // the Alma primary id: what library staff look up when a student asks about the hold
  SRVC_IND_REFRNCE: r => r.hold.primaryId,
  AMOUNT: r => formatDecimal(r.hold.amount),
  CURRENCY_CD: r => r.hold.currency,
  DEPTID: (_r, c) => c.deptid,
  COMM_COMMENTS: comment,
  ACTION: r => r.action,
  ALMA_PRIMARY_ID: r => r.hold.primaryId
}

export const KNOWN_COLUMNS = Object.keys(COLUMNS)

export function * holdRows (columns: string[], rows: Iterable<HoldRow>, codes: HoldCodes): Iterable<string[]> {
  yield columns
  const cells = columns.map(c => COLUMNS[c])
  for (const row of rows) yield cells.map(cell => cell(row, codes))
}
