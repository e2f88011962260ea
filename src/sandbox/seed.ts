// The seeded patrons of the sandbox: the awkward cases a real library has (no fees, one fee, many fees,
// a blocked patron, non-ASCII names, a credit, a fee in another currency) and a test patron whose fee title
// carries HTML, kept apart so the first patron a newcomer picks looks like a real account.

export interface SeedFee {
  id: string
  type: string
  typeDesc: string
  /** decimal string as Alma writes it */
  balance: string
  original?: string
  currency?: string
  owner: string
  ownerDesc: string
  title: string
  barcode: string
  comment?: string
  created: string
}

export interface SeedBlock {
  type: string
  typeDesc: string
  code: string
  codeDesc: string
  status: 'ACTIVE' | 'INACTIVE'
  note: string
}

export interface SeedUser {
  primaryId: string
  firstName: string
  lastName: string
  email: string
  userGroup: string
  identifiers: Array<{ type: string, value: string }>
  blocks: SeedBlock[]
  fees: SeedFee[]
  /** shown on the EZproxy stand-in's login page */
  story: string
}

const MAIN = { owner: 'MAIN', ownerDesc: 'Main Library' }
const LAW = { owner: 'LAW', ownerDesc: 'Law Library' }

function fee (id: string, type: string, typeDesc: string, balance: string, title: string, extra: Partial<SeedFee> = {}): SeedFee {
  return { id, type, typeDesc, balance, title, barcode: `39010${id}`, created: '2026-10-01T14:30:00Z', ...MAIN, ...extra }
}

export function seedUsers (): SeedUser[] {
  const many: SeedFee[] = []
  for (let i = 1; i <= 24; i++) {
    many.push(fee(`5000${String(i).padStart(2, '0')}`, 'OVERDUEFINE', 'Overdue fine', `${(i % 7) + 1}.${String((i * 13) % 100).padStart(2, '0')}`,
      `Collected essays, volume ${i}`, i % 5 === 0 ? { ...LAW } : {}))
  }
  many.push(fee('500090', 'CREDIT', 'Credit', '-4.00', '', { barcode: '', comment: 'Refund for returned lost book' }))
  return [
    {
      primaryId: 'alice',
      firstName: 'Alice',
      lastName: 'Archer',
      email: 'alice.archer@example.edu',
      userGroup: 'UG',
      identifiers: [{ type: 'UNIV_ID', value: '900000001' }, { type: 'BARCODE', value: '21000000001' }],
      blocks: [],
      fees: [
        fee('100001', 'OVERDUEFINE', 'Overdue fine', '5.00', 'The Name of the Rose'),
        fee('100002', 'LOSTITEMREPLACEMENTFEE', 'Lost item replacement fee', '45.50', 'Introduction to Algorithms, 4th ed.'),
        fee('100003', 'DAMAGEDITEMFINE', 'Damaged item fine', '12.25', 'Principles of Contract Law', { ...LAW })
      ],
      story: 'three fees, one of them at the Law Library'
    },
    {
      primaryId: 'bob',
      firstName: 'Bob',
      lastName: 'Baker',
      email: 'bob.baker@example.edu',
      userGroup: 'GRAD',
      identifiers: [{ type: 'UNIV_ID', value: '900000002' }],
      blocks: [],
      fees: [],
      story: 'owes nothing'
    },
    {
      primaryId: 'carol',
      firstName: 'Carol',
      lastName: 'Chen',
      email: 'carol.chen@example.edu',
      userGroup: 'UG',
      identifiers: [{ type: 'UNIV_ID', value: '900000003' }],
      blocks: [],
      fees: [fee('300001', 'OVERDUEFINE', 'Overdue fine', '2.50', 'Gödel, Escher, Bach')],
      story: 'one fee'
    },
    {
      primaryId: 'zoe',
      firstName: 'Zoë',
      lastName: 'Ångström-Núñez',
      email: 'zoe.angstrom@example.edu',
      userGroup: 'FAC',
      identifiers: [{ type: 'UNIV_ID', value: '900000004' }],
      blocks: [],
      fees: [
        fee('400001', 'OVERDUEFINE', 'Overdue fine', '3.75', 'Les Misérables — tome 1'),
        fee('400002', 'LOSTITEMPROCESSFEE', 'Lost item process fee', '10.00', '日本語の本')
      ],
      story: 'non-ASCII name and titles'
    },
    {
      primaryId: 'erin',
      firstName: 'Erin',
      lastName: 'Evans',
      email: 'erin.evans@example.edu',
      userGroup: 'UG',
      identifiers: [{ type: 'UNIV_ID', value: '900000005' }],
      blocks: [
        { type: 'GENERAL', typeDesc: 'General', code: 'FINES', codeDesc: 'Unpaid library fines', status: 'ACTIVE', note: 'Blocked until <fines> are paid' },
        { type: 'GENERAL', typeDesc: 'General', code: 'CONDUCT', codeDesc: 'Conduct', status: 'ACTIVE', note: 'See the circulation manager' }
      ],
      fees: [
        fee('600001', 'LOSTITEMREPLACEMENTFEE', 'Lost item replacement fee', '80.00', 'Atlas of the World'),
        fee('600002', 'OVERDUEFINE', 'Overdue fine', '6.00', 'Atlas of the World')
      ],
      story: 'blocked until the fines are paid'
    },
    {
      primaryId: 'frank',
      firstName: 'Frank',
      lastName: 'Fischer',
      email: 'frank.fischer@example.edu',
      userGroup: 'GRAD',
      identifiers: [{ type: 'UNIV_ID', value: '900000006' }],
      blocks: [],
      fees: [...many, fee('500091', 'OVERDUEFINE', 'Overdue fine', '9.00', 'Interlibrary loan from abroad', { currency: 'EUR' })],
      story: 'many fees, a credit and a fee in euros'
    },
    {
      primaryId: 'noid',
      firstName: 'Nadia',
      lastName: 'Noid',
      email: '',
      userGroup: 'COMM',
      identifiers: [],
      blocks: [{ type: 'GENERAL', typeDesc: 'General', code: 'FINES', codeDesc: 'Unpaid library fines', status: 'ACTIVE', note: '' }],
      fees: [fee('700001', 'SERVICEFEE', 'Service fee', '15.00', 'Community borrower card')],
      story: 'community borrower without a campus id or e-mail'
    },
    {
      primaryId: 'mallory',
      firstName: 'Mallory',
      lastName: 'Markup',
      email: 'mallory.markup@example.edu',
      userGroup: 'UG',
      identifiers: [{ type: 'UNIV_ID', value: '900000008' }],
      blocks: [],
      fees: [fee('880001', 'DAMAGEDITEMFINE', 'Damaged item fine', '12.25', '<b>Bold</b> & "quoted" <script>alert(1)</script> title', { ...LAW })],
      story: 'test patron: a fee title with HTML in it, which must show as plain text'
    }
  ]
}
