// export:gl against a real SQLite ledger in a temp directory, with payments posted at chosen instants around
// midnight in the GL time zone. The journal must balance and equal what the ledger says was posted that day.

import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { SqliteLedger } from '../../src/ledger/sqlite/index.ts'
import { type Cents, parseCents } from '../../src/money.ts'
import { contents, csvFile, runScript, tempDir } from './cli.ts'

const ZONE = 'America/Los_Angeles'
/** 2026-10-05 in Los Angeles (PDT, UTC-7) */
const DAY = { from: Date.parse('2026-10-05T07:00:00Z'), to: Date.parse('2026-10-06T07:00:00Z') }

interface Fee { feeId: string, feeType: string, owner: string, amount: number, postedAt?: string, posted?: number }

async function buildLedger (path: string): Promise<SqliteLedger> {
  let clock = new Date('2026-10-05T12:00:00Z')
  const ledger = new SqliteLedger({ path, now: () => clock })
  let n = 0
  const pay = async (user: string, tx: string, batchno: string, fees: Fee[]): Promise<void> => {
    const id = `checkout-${++n}`
    clock = new Date('2026-10-05T12:00:00Z')
    await ledger.createCheckout({
      id,
      userId: user,
      primaryId: user,
      patronName: user,
      email: '',
      currency: 'USD',
      lines: fees.map((f, i) => ({ lineNo: i + 1, feeId: f.feeId, feeType: f.feeType, feeTypeDesc: f.feeType, owner: f.owner, ownerDesc: f.owner, title: 't', itemCode: 'LIB-FINE', amount: f.amount as Cents }))
    })
    await ledger.recordPostback({ checkoutId: id, peer: '127.0.0.4', result: '0', tx, rawBody: '' },
      () => ({ outcome: 'PAID', reason: 'ok', to: 'PAID', payment: { tx, batchno, effdate: '2026-10-05', pmtcode: 'VISA' } }))
    for (const [i, f] of fees.entries()) {
      if (f.postedAt === undefined) continue
      clock = new Date(f.postedAt)
      await ledger.markLinePosted(id, i + 1, (f.posted ?? f.amount) as Cents, { tx })
    }
    if (fees.every(f => f.postedAt !== undefined)) await ledger.transition({ checkoutId: id, from: ['PAID'], to: 'POSTED', event: 'posting.done' })
  }
  await pay('alice', '7001', '42', [
    { feeId: '100001', feeType: 'OVERDUEFINE', owner: 'MAIN', amount: 500, postedAt: '2026-10-05T17:00:00Z' },
    { feeId: '100002', feeType: 'LOSTITEMREPLACEMENTFEE', owner: 'LAW', amount: 4550, postedAt: '2026-10-05T17:00:01Z' },
    { feeId: '100003', feeType: 'DAMAGEDITEMFINE', owner: 'LAW', amount: 1225, postedAt: '2026-10-05T17:00:02Z' }
  ])
  // 23:30 in Los Angeles, already the 6th in UTC: belongs to the 5th's journal
  await pay('carol', '7002', '42', [{ feeId: '300001', feeType: 'OVERDUEFINE', owner: 'MAIN', amount: 250, postedAt: '2026-10-06T06:30:00Z' }])
  // 00:30 on the 6th in Los Angeles: the next day's journal
  await pay('zoe', '7003', '43', [{ feeId: '400001', feeType: 'OVERDUEFINE', owner: 'MAIN', amount: 375, postedAt: '2026-10-06T07:30:00Z' }])
  // Alma accepted less than was paid (the fee was reduced meanwhile): the journal carries what Alma accepted
  await pay('frank', '7004', '42', [{ feeId: '500001', feeType: 'OVERDUEFINE', owner: 'MAIN', amount: 1000, posted: 333, postedAt: '2026-10-05T20:00:00Z' }])
  // paid, never posted: not revenue yet
  await pay('erin', '7005', '42', [{ feeId: '600001', feeType: 'OVERDUEFINE', owner: 'MAIN', amount: 600 }])
  // one payment whose lines were posted either side of midnight: each line in exactly one journal
  await pay('dave', '7006', '43', [
    { feeId: '800001', feeType: 'OVERDUEFINE', owner: 'MAIN', amount: 199, postedAt: '2026-10-06T06:59:59Z' },
    { feeId: '800002', feeType: 'OVERDUEFINE', owner: 'MAIN', amount: 201, postedAt: '2026-10-06T07:00:00Z' }
  ])
  return ledger
}

/** The ledger's own answer: the cents of every line whose posted_at falls in the day. */
async function postedTotal (ledger: SqliteLedger, from: number, to: number): Promise<number> {
  let total = 0
  for (const c of (await ledger.listCheckouts({ limit: 1000 })).checkouts) {
    for (const l of c.lines) if (l.postedAt !== null && Date.parse(l.postedAt) >= from && Date.parse(l.postedAt) < to) total += l.postedAmount ?? 0
  }
  return total
}

async function gl (dir: string, date: string, extra: string[] = [], env: Record<string, string> = {}): Promise<Awaited<ReturnType<typeof runScript>>> {
  return await runScript('export-gl.ts', ['--date', date, '--out', join(dir, 'out'), ...extra],
    { DATABASE_PATH: join(dir, 'ledger.sqlite'), GL_MAP_FILE: 'config/gl-map.example.json', GL_TIMEZONE: ZONE, ...env })
}

t.test('the CSV journal balances to the cent and equals the ledger\'s POSTED total of the day', async t => {
  const dir = tempDir(t)
  const ledger = await buildLedger(join(dir, 'ledger.sqlite'))
  const expected = await postedTotal(ledger, DAY.from, DAY.to)
  await ledger.close()
  t.equal(expected, 500 + 4550 + 1225 + 250 + 333 + 199, 'the fixture posts 70.57 on the 5th, Los Angeles time')

  const run = await gl(dir, '2026-10-05')
  t.equal(run.code, 0, run.stderr)
  const rows = csvFile(join(dir, 'out', 'gl-journal-2026-10-05.csv'))
  const cents = rows.map(r => parseCents(r.MONETARY_AMOUNT, { allowNegative: true }) as number)
  t.equal(cents.reduce((s, c) => s + c, 0), 0, 'debits equal credits')
  const clearing = rows[rows.length - 1]
  t.match(clearing, { ACCOUNT: '101500', DEPTID: 'BURSAR', ALMA_FEE_ID: '' }, 'the last line debits the clearing account')
  t.equal(parseCents(clearing.MONETARY_AMOUNT), expected, 'the clearing debit is the ledger\'s posted total')
  t.equal(-cents.slice(0, -1).reduce((s, c) => s + c, 0), expected, 'the fee credits add up to it too')
  t.same(rows.map(r => r.ALMA_FEE_ID).slice(0, -1).sort(), ['100001', '100002', '100003', '300001', '500001', '800001'])
  t.match(rows.find(r => r.ALMA_FEE_ID === '100002'), { ACCOUNT: '450125', DEPTID: 'LIBLAW', FUND_CODE: '20000', MONETARY_AMOUNT: '-45.50', JRNL_LN_REF: '42/7001', CASHNET_TX: '7001', CASHNET_BATCHNO: '42' },
    'lost item at the law library: the fee type + owner rule')
  t.match(rows.find(r => r.ALMA_FEE_ID === '100003'), { ACCOUNT: '450100', DEPTID: 'LIBLAW', FUND_CODE: '20000' }, 'owner rule over the default account')
  t.match(rows.find(r => r.ALMA_FEE_ID === '100001'), { ACCOUNT: '450110', DEPTID: 'LIBMAIN', FUND_CODE: '10000' }, 'fee type rule')
  t.match(rows.find(r => r.ALMA_FEE_ID === '500001'), { MONETARY_AMOUNT: '-3.33' }, 'what Alma accepted, not what was paid')
  t.same(rows.map(r => r.JOURNAL_LINE), rows.map((_r, i) => String(i + 1)))
  t.match(run.stderr, '6 fee line(s), 0 refund line(s), 1 clearing line(s), debits 70.57 = credits 70.57', 'the summary counts each kind of line')
})

t.test('re-running a day gives the same bytes; no fee line is in two days\' journals', async t => {
  const dir = tempDir(t)
  await (await buildLedger(join(dir, 'ledger.sqlite'))).close()
  t.equal((await gl(dir, '2026-10-05')).code, 0)
  t.equal((await gl(dir, '2026-10-06')).code, 0)
  const first = contents(join(dir, 'out'))
  t.equal((await gl(dir, '2026-10-05')).code, 0)
  t.same(contents(join(dir, 'out')), first, 'identical files')
  const fees = (date: string): string[] => csvFile(join(dir, 'out', `gl-journal-${date}.csv`)).map(r => r.ALMA_FEE_ID).filter(f => f !== '')
  t.same(fees('2026-10-06').sort(), ['400001', '800002'])
  t.same(fees('2026-10-05').filter(f => fees('2026-10-06').includes(f)), [], 'no fee line in both')
  t.equal((await gl(dir, '2026-10-04')).code, 0)
  t.same(csvFile(join(dir, 'out', 'gl-journal-2026-10-04.csv')), [], 'a day without payments: a journal with the header only')
})

t.test('the flat file: H, L and C records at the layout\'s columns, balanced, control totals right', async t => {
  const dir = tempDir(t)
  await (await buildLedger(join(dir, 'ledger.sqlite'))).close()
  const run = await gl(dir, '2026-10-05', ['--format', 'flat'])
  t.equal(run.code, 0, run.stderr)
  const lines = readFileSync(join(dir, 'out', 'gl-journal-2026-10-05.dat'), 'utf8').split('\n').filter(l => l !== '')
  t.same(lines.map(l => l[0]), ['#', 'H', 'L', 'L', 'L', 'L', 'L', 'L', 'L', 'C'])
  const header = lines[1]
  t.equal(header.slice(1, 6), 'UNIV1', 'business unit at 2-6')
  t.equal(header.slice(6, 16), 'NEXT      ', 'journal id at 7-16')
  t.equal(header.slice(16, 24), '10052026', 'journal date MMDDYYYY at 17-24')
  t.equal(header.slice(36, 46), 'ACTUALS   ', 'ledger group at 37-46')
  const amounts = lines.filter(l => l[0] === 'L').map(l => parseCents(l.slice(50, 78).trim(), { allowNegative: true }) as number)
  t.equal(amounts.reduce((s, a) => s + a, 0), 0, 'the L amounts balance')
  t.equal(amounts[amounts.length - 1], 7057, 'the clearing line')
  const control = lines[lines.length - 1]
  t.equal(control.slice(24, 33), '000000007', 'line count')
  t.equal(control.slice(33, 61).trim(), '70.57')
  t.equal(control.slice(61, 89).trim(), '70.57')
  t.equal(lines[2].slice(111, 121).trim(), '7001', 'the CashNet tx in the line reference')
})

t.test('bad map or layout: exit 1 naming the file; usage errors: exit 2; nothing written', async t => {
  const dir = tempDir(t)
  await (await buildLedger(join(dir, 'ledger.sqlite'))).close()
  writeFileSync(join(dir, 'map.json'), JSON.stringify({ businessUnit: 'UNIV1', clearing: { account: '101500' }, default: { account: 'MUCH-TOO-LONG-ACCOUNT' } }))
  const badMap = await gl(dir, '2026-10-05', [], { GL_MAP_FILE: join(dir, 'map.json') })
  t.equal(badMap.code, 1)
  t.match(badMap.stderr, /map\.json: default: "account" "MUCH-TOO-LONG-ACCOUNT" is longer than 10/)
  const layout = JSON.parse(readFileSync('config/gl-flat-layout.json', 'utf8'))
  layout.records.L[10].length = 3
  delete layout.records.L[10].overflow
  writeFileSync(join(dir, 'layout.json'), JSON.stringify(layout))
  const overflow = await gl(dir, '2026-10-05', ['--format', 'flat'], { GL_FLAT_LAYOUT: join(dir, 'layout.json') })
  t.equal(overflow.code, 1)
  t.match(overflow.stderr, /layout\.json: USD line 1: JRNL_LN_REF "7001" does not fit in 3 columns/)
  layout.records.L[10].start = 100
  writeFileSync(join(dir, 'layout.json'), JSON.stringify(layout))
  const overlap = await gl(dir, '2026-10-05', ['--format', 'flat'], { GL_FLAT_LAYOUT: join(dir, 'layout.json') })
  t.equal(overlap.code, 1)
  t.match(overlap.stderr, /records\.L\[10\] \(JRNL_LN_REF\): starts at column 100, inside the previous field/)

  const notOver = await gl(dir, new Date().toISOString().slice(0, 10))
  t.equal(notOver.code, 2)
  t.match(notOver.stderr, 'is not over yet')
  const noLedger = await gl(dir, '2026-10-05', [], { DATABASE_PATH: join(dir, 'missing.sqlite') })
  t.equal(noLedger.code, 2)
  t.match(noLedger.stderr, 'DATABASE_PATH: cannot read')
  const badFormat = await gl(dir, '2026-10-05', ['--format', 'xlsx'])
  t.equal(badFormat.code, 2)
  t.same(Object.keys(contents(join(dir, 'out'))), [], 'no journal written by any of these')
  const help = await runScript('export-gl.ts', ['--help'])
  for (const variable of ['GL_DATE', 'GL_OUT_DIR', 'GL_FORMAT', 'GL_MAP_FILE', 'GL_FLAT_LAYOUT', 'GL_TIMEZONE', 'DATABASE_PATH']) t.match(help.stdout, variable)
})

t.test('the layout chooses 2 or 3 decimals for amounts (MONETARY_AMOUNT is Signed Number(28,3))', async t => {
  const dir = tempDir(t)
  await (await buildLedger(join(dir, 'ledger.sqlite'))).close()
  const layout = JSON.parse(readFileSync('config/gl-flat-layout.json', 'utf8'))
  t.equal(layout.amountDecimals, 2, 'the shipped layout writes 2 decimals')
  const amountsOf = (file: string): { lines: string[], control: string } => {
    const rows = readFileSync(file, 'utf8').split('\n').filter(l => l !== '')
    return { lines: rows.filter(l => l[0] === 'L').map(l => l.slice(50, 78).trim()), control: rows[rows.length - 1] }
  }
  const two = await gl(join(dir, 'two'), '2026-10-05', ['--format', 'flat'], { DATABASE_PATH: join(dir, 'ledger.sqlite') })
  t.equal(two.code, 0, two.stderr)
  const twoAmounts = amountsOf(join(dir, 'two', 'out', 'gl-journal-2026-10-05.dat'))
  for (const amount of twoAmounts.lines) t.match(amount, /^-?\d+\.\d\d$/, `${amount}: two decimals`)
  t.ok(twoAmounts.lines.slice(0, -1).every(a => a.startsWith('-')), 'credits negative')
  t.notOk(twoAmounts.lines[twoAmounts.lines.length - 1].startsWith('-'), 'the debit positive')

  writeFileSync(join(dir, 'three.json'), JSON.stringify({ ...layout, amountDecimals: 3 }))
  const three = await gl(join(dir, 'three'), '2026-10-05', ['--format', 'flat'], { DATABASE_PATH: join(dir, 'ledger.sqlite'), GL_FLAT_LAYOUT: join(dir, 'three.json') })
  t.equal(three.code, 0, three.stderr)
  const threeAmounts = amountsOf(join(dir, 'three', 'out', 'gl-journal-2026-10-05.dat'))
  t.same(threeAmounts.lines, twoAmounts.lines.map(a => `${a}0`), 'the same amounts with a third decimal, still right-aligned in 28 columns')
  t.equal(threeAmounts.control.slice(33, 61).trim(), '70.570', 'control totals too')
  t.equal(threeAmounts.control.slice(33, 61).length, 28)

  writeFileSync(join(dir, 'four.json'), JSON.stringify({ ...layout, amountDecimals: 4 }))
  const four = await gl(join(dir, 'four'), '2026-10-05', ['--format', 'flat'], { DATABASE_PATH: join(dir, 'ledger.sqlite'), GL_FLAT_LAYOUT: join(dir, 'four.json') })
  t.equal(four.code, 1)
  t.match(four.stderr, /four\.json: amountDecimals: must be 2 or 3 \(got 4\)/)
  t.same(contents(join(dir, 'four', 'out')), {}, 'nothing written')
})

t.test('the shipped layout says for each field how sure we are and why', async t => {
  const layout = JSON.parse(readFileSync('config/gl-flat-layout.json', 'utf8'))
  for (const type of ['H', 'L', 'C']) {
    for (const field of layout.records[type]) {
      t.ok(typeof field.confidence === 'string' && field.confidence !== '', `${type} ${field.name}: a confidence`)
      t.ok(typeof field.evidence === 'string' && field.evidence !== '', `${type} ${field.name}: its source`)
      if (type === 'H' && field.start <= 56) t.equal(field.confidence, 'High', `H ${field.name} at ${field.start}: Oracle's documentation`)
      if (type === 'H' && field.start > 56 && field.start < 107) t.equal(field.confidence, 'Medium', `H ${field.name} at ${field.start}: a public campus layout + 12`)
      if ((type !== 'H' || field.start >= 107) && field.start > 1) t.match(field.confidence, /^None/, `${type} ${field.name}: no public source for its position`)
    }
  }
  const amount = layout.records.L.find((f: { name: string }) => f.name === 'MONETARY_AMOUNT')
  t.match(amount.evidence, 'Signed Number(28,3)')
  t.match(amount.evidence, 'debit entries positive, credit entries negative')
})

t.test('a CashNet and a PayPal payment on one day: two clearing lines, one per provider, balancing to the cent', async t => {
  const dir = tempDir(t)
  const ledger = new SqliteLedger({ path: join(dir, 'ledger.sqlite'), now: () => new Date('2026-10-05T17:00:00Z') })
  const pay = async (id: string, provider: 'cashnet' | 'paypal', tx: string, batchno: string, fees: Array<[string, number]>): Promise<void> => {
    await ledger.createCheckout({
      id,
      userId: id,
      primaryId: id,
      patronName: id,
      email: '',
      provider,
      currency: 'USD',
      lines: fees.map(([feeId, amount], i) => ({ lineNo: i + 1, feeId, feeType: 'OVERDUEFINE', feeTypeDesc: 'Overdue fine', owner: 'MAIN', ownerDesc: 'Main', title: 't', itemCode: 'LIB-FINE', amount: amount as Cents }))
    })
    await ledger.recordPostback({ checkoutId: id, peer: provider, result: '0', tx, rawBody: '' },
      () => ({ outcome: 'PAID', reason: 'ok', to: 'PAID', payment: { tx, batchno, effdate: '', pmtcode: provider.toUpperCase() } }))
    for (const [i, [, amount]] of fees.entries()) await ledger.markLinePosted(id, i + 1, amount as Cents, { tx })
  }
  await pay('cn1', 'cashnet', '7001', '42', [['100001', 1999], ['100002', 1]])
  await pay('pp1', 'paypal', '3GJ18429TL0651234', '', [['700001', 333], ['700002', 334]])
  await pay('pp2', 'paypal', '5KX90312AB1234567', '', [['700003', 1001]])
  await ledger.close()

  const byProvider = join(dir, 'map.json')
  const map = JSON.parse(readFileSync('config/gl-map.example.json', 'utf8'))
  t.same(map.clearingByProvider, { paypal: { account: '101510' } }, 'the sample map shows a PayPal clearing account')
  writeFileSync(byProvider, JSON.stringify(map))
  const run = await gl(dir, '2026-10-05', [], { GL_MAP_FILE: byProvider })
  t.equal(run.code, 0, run.stderr)
  const rows = csvFile(join(dir, 'out', 'gl-journal-2026-10-05.csv'))
  const amount = (r: Record<string, string>): number => parseCents(r.MONETARY_AMOUNT, { allowNegative: true }) as number
  const clearing = rows.filter(r => r.ALMA_FEE_ID === '')
  t.same(clearing.map(r => [r.LINE_DESCR, r.ACCOUNT, r.FUND_CODE, r.DEPTID, r.MONETARY_AMOUNT, r.JRNL_LN_REF]), [
    ['CashNet receipts 2026-10-05', '101500', '10000', 'BURSAR', '20.00', '42'],
    ['PayPal receipts 2026-10-05', '101510', '10000', 'BURSAR', '16.68', '']
  ], 'each provider clears its own total; PayPal\'s account from clearingByProvider, its other fields from clearing')
  t.equal(rows.reduce((s, r) => s + amount(r), 0), 0, 'the journal balances to the cent')
  t.equal(rows.filter(r => r.ALMA_FEE_ID !== '').length, 5, 'one credit per fee line')
  t.match(rows.find(r => r.ALMA_FEE_ID === '700001'), { CASHNET_TX: '3GJ18429TL0651234', CASHNET_BATCHNO: '', JRNL_LN_REF: '/3GJ18429TL0651234', CHECKOUT_ID: 'pp1' }, 'a PayPal line carries its capture id')

  // a map without clearingByProvider: still one clearing line per provider, both on the common account
  const { clearingByProvider: _, ...common } = map
  writeFileSync(join(dir, 'common.json'), JSON.stringify(common))
  const plain = await gl(join(dir, 'plain'), '2026-10-05', [], { DATABASE_PATH: join(dir, 'ledger.sqlite'), GL_MAP_FILE: join(dir, 'common.json') })
  t.equal(plain.code, 0, plain.stderr)
  const plainRows = csvFile(join(dir, 'plain', 'out', 'gl-journal-2026-10-05.csv'))
  t.same(plainRows.filter(r => r.ALMA_FEE_ID === '').map(r => [r.LINE_DESCR, r.ACCOUNT, r.MONETARY_AMOUNT]), [
    ['CashNet receipts 2026-10-05', '101500', '20.00'], ['PayPal receipts 2026-10-05', '101500', '16.68']
  ])

  const flat = await gl(dir, '2026-10-05', ['--format', 'flat'], { GL_MAP_FILE: byProvider })
  t.equal(flat.code, 0, flat.stderr)
  const lines = readFileSync(join(dir, 'out', 'gl-journal-2026-10-05.dat'), 'utf8').split('\n').filter(l => l[0] === 'L')
  t.same(lines.slice(-2).map(l => [l.slice(25, 35).trim(), parseCents(l.slice(50, 78).trim())]), [['101500', 2000], ['101510', 1668]], 'the flat file has the same two clearing lines')
  t.equal(lines.find(l => l.includes('700001'))?.slice(111, 121), '3GJ18429TL', 'the shipped layout keeps the first 10 characters of a PayPal capture id as the line reference')

  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...map, clearingByProvider: { stripe: { account: '1' } } }))
  const bad = await gl(dir, '2026-10-05', [], { GL_MAP_FILE: join(dir, 'bad.json') })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /bad\.json: clearingByProvider\.stripe: unknown provider/)
})
