// Generated patrons for the Alma sandbox: ordinary accounts with a few fees (the page under load), accounts
// with N fees and a FINES block (calls per payment), and one-fee accounts for the postback and burst runs.

import type { SeedFee, SeedUser } from '../../src/sandbox/seed.ts'

const FINES_BLOCK = { type: 'GENERAL', typeDesc: 'General', code: 'FINES', codeDesc: 'Unpaid library fines', status: 'ACTIVE' as const, note: '' }

let feeCounter = 9_000_000

function fee (n: number): SeedFee {
  feeCounter++
  const cents = 150 + (feeCounter % 37) * 25
  return {
    id: String(feeCounter),
    type: n % 3 === 0 ? 'LOSTITEMREPLACEMENTFEE' : 'OVERDUEFINE',
    typeDesc: n % 3 === 0 ? 'Lost item replacement fee' : 'Overdue fine',
    balance: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`,
    owner: 'MAIN',
    ownerDesc: 'Main Library',
    title: `Bench title ${feeCounter}: a reasonably long title, second edition`,
    barcode: `3901${feeCounter}`,
    created: '2026-10-01T14:30:00Z'
  }
}

export function patron (primaryId: string, fees: number, blocked = false): SeedUser {
  return {
    primaryId,
    firstName: 'Bench',
    lastName: primaryId,
    email: `${primaryId}@example.edu`,
    userGroup: 'UG',
    identifiers: [{ type: 'UNIV_ID', value: `U-${primaryId}` }],
    blocks: blocked ? [{ ...FINES_BLOCK }] : [],
    fees: Array.from({ length: fees }, (_, i) => fee(i + 1)),
    story: 'bench'
  }
}

export function patrons (prefix: string, count: number, fees: number, blocked = false): SeedUser[] {
  return Array.from({ length: count }, (_, i) => patron(`${prefix}${String(i + 1).padStart(5, '0')}`, fees, blocked))
}

export function cents (decimal: string): number {
  const [whole, fraction = ''] = decimal.split('.')
  return Number(whole) * 100 + Number((fraction + '00').slice(0, 2))
}
