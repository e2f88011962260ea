// Who carries a PeopleSoft hold: an active Alma block of a configured type (or description code), and/or an
// outstanding balance at or above the threshold. The verdict is kept small (a few hundred thousand patrons
// may be held); the words for COMM_COMMENTS are made from it only when a file is written.

import { type Cents, formatDecimal } from '../../money.ts'
import type { PatronRecord } from './users-export.ts'

export interface HoldRules {
  /** block type or description codes (upper case); '*' means any active block; empty means blocks do not count */
  blockTypes: ReadonlySet<string>
  /** null: balances do not count */
  minBalance: Cents | null
  /** the run date (YYYY-MM-DD): blocks that expired before it are not active */
  date: string
}

export interface Verdict {
  /** the matching blocks' codes joined with '+', '' when no block counts */
  blocks: string
  overThreshold: boolean
}

/** The verdict, or null when the patron carries no hold. */
export function assess (patron: PatronRecord, rules: HoldRules): Verdict | null {
  let blocks = ''
  if (rules.blockTypes.size > 0) {
    const codes = new Set<string>()
    for (const b of patron.blocks) {
      if (b.status === 'INACTIVE' || (b.expiryDate !== '' && b.expiryDate < rules.date)) continue
      if (rules.blockTypes.has('*') || rules.blockTypes.has(b.type.toUpperCase()) || rules.blockTypes.has(b.description.toUpperCase())) codes.add(b.description || b.type)
    }
    blocks = [...codes].join('+')
  }
  const overThreshold = rules.minBalance !== null && patron.balance !== null && patron.balance >= rules.minBalance
  return blocks === '' && !overThreshold ? null : { blocks, overThreshold }
}

/** "library block FINES; balance 86.00 USD" */
export function describe (verdict: Verdict, amount: Cents, currency: string): string {
  const parts: string[] = []
  if (verdict.blocks !== '') parts.push(`library block ${verdict.blocks}`)
  if (verdict.overThreshold) parts.push(`balance ${formatDecimal(amount)}${currency !== '' ? ' ' + currency : ''}`)
  return parts.join('; ')
}
