// SPEC 12 and issue 16: export:gl and export:fines with --campus produce each campus's files from its own rows
// only. Two campuses whose Alma sandboxes have the same usernames; patrons pay different fees at each through the
// real flow (checkout, CashNet sandbox, postback, posting to that campus's Alma). The service's ledger clock is
// set two days back, so the payments lie on a day that is over and export:gl may journal it. Each campus has its
// own chartfield map and output directories in CAMPUSES_FILE; the jobs run as cron runs them, as child processes.
// On SQLite (a file per campus) and, when the test run has a server, PostgreSQL (a schema per campus).

import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Browser, buildCampuses, checkoutIdFrom, until, type TestCampusStack } from './helper.ts'
import { contents, csvFile, runScript, tempDir } from './jobs/cli.ts'
import { freshDatabase } from './support/postgres.ts'
import { type Cents, formatDecimal, parseCents } from '../src/money.ts'
import type { SandboxCampus } from '../src/sandbox/stack.ts'

// Two ledgers (SQLite, then PostgreSQL), each with a dozen job runs as child processes: 190 s in CI beside the
// Alma limiter's file, past tap's 180 s.
t.setTimeout(480_000)

const DAY_MS = 86400000
const started = Date.now()
/** noon UTC two days ago: the day the ledger stamps the payments with, over in every time zone */
const base = new Date(Math.floor(started / DAY_MS) * DAY_MS - 2 * DAY_MS + 12 * 3600000)
const DATE = base.toISOString().slice(0, 10)

/** Who pays which fees at which campus: different fees, so every amount differs between the campuses. */
const PAYS: Record<string, Array<{ user: string, fees: string[] }>> = {
  springfield: [{ user: 'alice', fees: ['100001', '100003'] }, { user: 'carol', fees: ['300001'] }],
  // the second campus's fees are its own ids (1 + the first campus's): 45.50 and 10.00
  shelbyville: [{ user: 'alice', fees: ['1100002'] }, { user: 'zoe', fees: ['1400002'] }]
}

const SHELBYVILLE_MAP = {
  businessUnit: 'SHLBY',
  ledger: 'ACTUALS',
  ledgerGroup: 'ACTUALS',
  journalId: 'NEXT',
  source: 'LIB',
  description: 'Shelbyville library fines',
  clearing: { account: '102900', fund: '30000', deptid: 'SHBURSAR' },
  default: { account: '460100', fund: '30000', deptid: 'SHLIB' },
  rules: []
}

interface Paid { checkoutId: string, tx: string, fees: Array<{ feeId: string, cents: number }> }

/** The ledgers a system deployment may keep: a SQLite file per campus, or a PostgreSQL schema per campus (when a test server runs). */
const LEDGERS: Array<{ name: string, location: (t: Test, dir: string) => Promise<Record<string, string> | null> }> = [
  { name: 'SQLite', location: async (_t, dir) => ({ DATABASE_PATH: join(dir, 'payments.sqlite') }) },
  { name: 'PostgreSQL', location: async (t) => { const url = await freshDatabase(t); return url === null ? null : { DATABASE_URL: url } } }
]

for (const { name, location } of LEDGERS) {
  t.test(`export:gl and export:fines with --campus: each campus's files from its own rows only (${name})`, async t => {
    const dir = tempDir(t)
    const ledgerEnv = await location(t, dir)
    if (ledgerEnv === null) return
    await exportsPerCampus(t, dir, ledgerEnv)
  })
}

async function exportsPerCampus (t: Test, dir: string, ledgerEnv: Record<string, string>): Promise<void> {
  const shelbyvilleMap = join(dir, 'shelbyville-gl-map.json')
  writeFileSync(shelbyvilleMap, JSON.stringify(SHELBYVILLE_MAP))
  const out = (campus: string, kind: string): string => join(dir, campus, kind)
  const stack = await buildCampuses(t, {
    env: ledgerEnv,
    campuses: [
      { id: 'springfield', env: { GL_MAP_FILE: 'config/gl-map.example.json', GL_OUT_DIR: out('springfield', 'gl'), FINES_OUT_DIR: out('springfield', 'fines') } },
      { id: 'shelbyville', env: { GL_MAP_FILE: shelbyvilleMap, GL_OUT_DIR: out('shelbyville', 'gl'), FINES_OUT_DIR: out('shelbyville', 'fines') } }
    ],
    app: { ledgerNow: () => new Date(base.getTime() + Date.now() - started) }
  })
  const [springfield, shelbyville] = stack.campuses
  // a patron of the second campus only
  shelbyville.alma.addUser({
    primaryId: 'homer',
    firstName: 'Homer',
    lastName: 'Jay',
    email: '',
    userGroup: 'UG',
    identifiers: [{ type: 'UNIV_ID', value: '900000742' }],
    blocks: [],
    story: '',
    fees: [{ id: '1700001', type: 'OVERDUEFINE', typeDesc: 'Overdue fine', balance: '7.42', owner: 'MAIN', ownerDesc: 'Main Library', title: 'Donuts', barcode: '', created: '2026-10-01T14:30:00Z' }]
  })
  const env = (): Record<string, string> => ({
    CAMPUSES_FILE: springfield.config.campusesFile,
    ...ledgerEnv,
    SPRINGFIELD_ALMA_API_KEY: springfield.almaApiKey,
    SHELBYVILLE_ALMA_API_KEY: shelbyville.almaApiKey,
    GL_TIMEZONE: 'UTC'
  })

  const paid: Record<string, Paid[]> = { springfield: [], shelbyville: [] }
  for (const campus of stack.campuses) paid[campus.id] = await payAll(t, stack, campus)
  t.same(paid.springfield.map(p => p.fees.map(f => f.cents)), [[500, 1225], [250]], 'springfield: 17.25 and 2.50 posted to its Alma')
  t.same(paid.shelbyville.map(p => p.fees.map(f => f.cents)), [[4550], [1000]], 'shelbyville: 45.50 and 10.00 posted to its Alma')

  t.test('export:gl --campus: the campus\'s own payments, chartfields and directory', async t => {
    const files: Record<string, string> = {}
    for (const campus of stack.campuses) {
      const run = await runScript('export-gl.ts', ['--campus', campus.id, '--date', DATE], env())
      t.equal(run.code, 0, run.stderr)
      files[campus.id] = join(out(campus.id, 'gl'), `gl-journal-${DATE}.csv`)
      t.equal(run.stdout.trim(), files[campus.id], `${campus.id}'s journal in its own GL_OUT_DIR`)
    }
    for (const campus of stack.campuses) {
      const other = stack.campuses.find(c => c !== campus) as SandboxCampus
      const rows = csvFile(files[campus.id])
      const credits = rows.filter(r => r.ALMA_FEE_ID !== '')
      const own = paid[campus.id].flatMap(p => p.fees.map(f => ({ fee: f.feeId, cents: -f.cents, tx: p.tx, checkout: p.checkoutId })))
      t.same(credits.map(r => ({ fee: r.ALMA_FEE_ID, cents: parseCents(r.MONETARY_AMOUNT, { allowNegative: true }), tx: r.CASHNET_TX, checkout: r.CHECKOUT_ID })).sort(byFee),
        own.sort(byFee), `${campus.id}: one credit line per fee its patrons paid, with its own CashNet tx and checkout`)
      const clearing = rows.filter(r => r.ALMA_FEE_ID === '')
      t.equal(clearing.length, 1, 'one clearing debit')
      t.equal(parseCents(clearing[0].MONETARY_AMOUNT), -own.reduce((s, l) => s + l.cents, 0), `${campus.id}: the clearing debit is its own total`)
      const text = readFileSync(files[campus.id], 'utf8')
      for (const p of paid[other.id]) {
        t.notMatch(text, p.checkoutId, `no checkout of ${other.id}`)
        for (const f of p.fees) t.notOk(credits.some(r => r.ALMA_FEE_ID === f.feeId), `no fee ${f.feeId} of ${other.id}`)
      }
    }
    const springfieldRows = csvFile(files.springfield)
    t.ok(springfieldRows.every(r => r.BUSINESS_UNIT === 'UNIV1'), 'springfield\'s map: its business unit')
    t.match(springfieldRows.find(r => r.ALMA_FEE_ID === ''), { ACCOUNT: '101500', DEPTID: 'BURSAR' })
    t.match(springfieldRows.find(r => r.ALMA_FEE_ID === '100003'), { ACCOUNT: '450100', DEPTID: 'LIBLAW', FUND_CODE: '20000' }, 'springfield\'s owner rule')
    const shelbyvilleRows = csvFile(files.shelbyville)
    t.ok(shelbyvilleRows.every(r => r.BUSINESS_UNIT === 'SHLBY'), 'shelbyville\'s map: its business unit')
    t.match(shelbyvilleRows.find(r => r.ALMA_FEE_ID === ''), { ACCOUNT: '102900', DEPTID: 'SHBURSAR', FUND_CODE: '30000' }, 'shelbyville\'s clearing account')
    t.ok(shelbyvilleRows.filter(r => r.ALMA_FEE_ID !== '').every(r => r.ACCOUNT === '460100' && r.DEPTID === 'SHLIB'), 'shelbyville\'s default chartfields')
  })

  t.test('export:fines --campus: the campus\'s own Alma, patrons and directory', async t => {
    const files: Record<string, string> = {}
    for (const campus of stack.campuses) {
      const before = campus.alma.authorizations.length
      const otherCampus = stack.campuses.find(c => c !== campus) as SandboxCampus
      const otherBefore = otherCampus.alma.authorizations.length
      const run = await runScript('export-fines.ts', ['--campus', campus.id, '--date', DATE], env())
      t.equal(run.code, 0, run.stderr)
      files[campus.id] = join(out(campus.id, 'fines'), `fines-${DATE}.csv`)
      t.equal(run.stdout.trim(), files[campus.id], `${campus.id}'s extract in its own FINES_OUT_DIR`)
      t.same([...new Set(campus.alma.authorizations.slice(before))], [`apikey ${campus.almaApiKey}`], `${campus.id}'s Analytics, with its own key`)
      t.equal(otherCampus.alma.authorizations.length, otherBefore, `${otherCampus.id}'s Alma was not asked`)
    }
    const balances = (campus: string): Record<string, string> => Object.fromEntries(csvFile(files[campus]).map(r => [`${r.ALMA_PRIMARY_ID} ${r.CURRENCY}`, r.BALANCE]))
    for (const campus of stack.campuses) {
      t.same(balances(campus.id), expectedBalances(campus), `${campus.id}: every balance as its own Alma has it after its own payments`)
    }
    const a = balances('springfield')
    const b = balances('shelbyville')
    t.equal(a['alice USD'], '45.50', 'alice at springfield still owes the lost book')
    t.equal(b['alice USD'], '17.25', 'alice at shelbyville still owes the overdue and damaged fines')
    t.notOk('carol USD' in a, 'carol paid everything at springfield')
    t.equal(b['carol USD'], '2.50', 'carol at shelbyville did not')
    t.equal(b['homer USD'], '7.42')
    t.notOk('homer USD' in a, 'shelbyville\'s own patron is not in springfield\'s file')
    t.notSame(a, b)
  })

  t.test('an output directory set once for every campus (environment or defaults): each campus in its own subdirectory', async t => {
    // the same deployment, but GL_OUT_DIR and FINES_OUT_DIR not in the campus blocks: the environment's, then the file's defaults
    const file = JSON.parse(readFileSync(springfield.config.campusesFile, 'utf8')) as { defaults: Record<string, string>, campuses: Record<string, Record<string, string>> }
    for (const block of Object.values(file.campuses)) {
      delete block.GL_OUT_DIR
      delete block.FINES_OUT_DIR
    }
    const shared = join(dir, 'shared.json')
    writeFileSync(shared, JSON.stringify(file))
    const inDefaults = join(dir, 'defaults.json')
    writeFileSync(inDefaults, JSON.stringify({ ...file, defaults: { ...file.defaults, GL_OUT_DIR: join(dir, 'defaults', 'gl'), FINES_OUT_DIR: join(dir, 'defaults', 'fines') } }))
    const runs = [
      { what: 'the environment', env: { ...env(), CAMPUSES_FILE: shared, GL_OUT_DIR: join(dir, 'env', 'gl'), FINES_OUT_DIR: join(dir, 'env', 'fines') }, root: join(dir, 'env') },
      { what: 'the defaults', env: { ...env(), CAMPUSES_FILE: inDefaults }, root: join(dir, 'defaults') }
    ]
    for (const { what, env: jobEnv, root } of runs) {
      for (const campus of stack.campuses) {
        const gl = await runScript('export-gl.ts', ['--campus', campus.id, '--date', DATE], jobEnv)
        t.equal(gl.code, 0, gl.stderr)
        t.equal(gl.stdout.trim(), join(root, 'gl', campus.id, `gl-journal-${DATE}.csv`), `GL_OUT_DIR from ${what}: ${campus.id}'s subdirectory`)
        const fines = await runScript('export-fines.ts', ['--campus', campus.id, '--date', DATE], jobEnv)
        t.equal(fines.code, 0, fines.stderr)
        t.equal(fines.stdout.trim(), join(root, 'fines', campus.id, `fines-${DATE}.csv`), `FINES_OUT_DIR from ${what}: ${campus.id}'s subdirectory`)
      }
      for (const campus of stack.campuses) {
        // after both campuses' runs, each campus's file is still its own (the second run did not overwrite the first)
        t.equal(readFileSync(join(root, 'gl', campus.id, `gl-journal-${DATE}.csv`), 'utf8'), readFileSync(join(out(campus.id, 'gl'), `gl-journal-${DATE}.csv`), 'utf8'), `${what}: ${campus.id}'s journal`)
        t.equal(readFileSync(join(root, 'fines', campus.id, `fines-${DATE}.csv`), 'utf8'), readFileSync(join(out(campus.id, 'fines'), `fines-${DATE}.csv`), 'utf8'), `${what}: ${campus.id}'s extract`)
      }
    }
    // --out on the command line is this run's own choice (one cron line per campus): used as given
    const explicit = await runScript('export-gl.ts', ['--campus', 'shelbyville', '--date', DATE, '--out', join(dir, 'explicit')], { ...env(), CAMPUSES_FILE: shared })
    t.equal(explicit.stdout.trim(), join(dir, 'explicit', `gl-journal-${DATE}.csv`), '--out as given')
  })

  t.test('unknown or missing campus: one line, exit 2, nothing written', async t => {
    const before = { gl: contents(out('springfield', 'gl')), fines: contents(out('springfield', 'fines')) }
    for (const [script, args] of [['export-gl.ts', ['--date', DATE, '--out', join(dir, 'stray')]], ['export-fines.ts', ['--date', DATE, '--out', join(dir, 'stray')]]] as const) {
      const unknown = await runScript(script, [...args, '--campus', 'ogdenville'], env())
      t.equal(unknown.code, 2, `${script}: unknown campus`)
      t.match(unknown.stderr, /^export:(gl|fines): configuration: CAMPUS is "ogdenville", which is not a campus of CAMPUSES_FILE \(springfield, shelbyville\)\n/)
      const missing = await runScript(script, [...args], env())
      t.equal(missing.code, 2, `${script}: no campus`)
      t.match(missing.stderr, /^export:(gl|fines): configuration: CAMPUS is required when CAMPUSES_FILE is set/)
      const empty = await runScript(script, [...args], { ...env(), CAMPUS: '' })
      t.equal(empty.code, 2, `${script}: CAMPUS set empty is no campus`)
    }
    t.notOk(existsSync(join(dir, 'stray')), 'no file written')
    t.same({ gl: contents(out('springfield', 'gl')), fines: contents(out('springfield', 'fines')) }, before)
  })
}

function byFee (a: { fee: string }, b: { fee: string }): number {
  return a.fee.localeCompare(b.fee)
}

/** Each patron's balance per currency as the campus's Alma sandbox holds it now: the sum of their open fees. */
function expectedBalances (campus: SandboxCampus): Record<string, string> {
  const cents: Record<string, number> = {}
  for (const user of campus.alma.users.values()) {
    for (const fee of user.fees) {
      if (fee.status !== 'ACTIVE' || fee.balanceCents === 0) continue
      const key = `${user.primaryId} ${fee.currency ?? 'USD'}`
      cents[key] = (cents[key] ?? 0) + fee.balanceCents
    }
  }
  return Object.fromEntries(Object.entries(cents).map(([key, c]) => [key, formatDecimal(c as Cents)]))
}

/** The campus's patrons pay their fees through the service, and the payments are posted to the campus's Alma. */
async function payAll (t: Test, stack: TestCampusStack, campus: SandboxCampus): Promise<Paid[]> {
  const result: Paid[] = []
  const ledger = stack.app.campuses.get(campus.id)?.ledger
  if (ledger === undefined) throw new Error(`no ledger for ${campus.id}`)
  for (const { user, fees } of PAYS[campus.id]) {
    const patron = new Browser({ publicUrl: campus.ezproxyUrl, ezproxy: campus.ezproxy }, { prefix: `/${campus.id}` }).login(user)
    const { fields, action } = await patron.checkout(fees)
    t.ok(action !== '', `${campus.id}: ${user} is handed to CashNet`)
    await patron.payOnCashnet(action, fields)
    const checkoutId = checkoutIdFrom(fields)
    await until(async () => (await ledger.getCheckout(checkoutId))?.state === 'POSTED', `${campus.id} ${user} posted`)
    const tx = (await ledger.getCheckout(checkoutId))?.tx ?? ''
    result.push({ checkoutId, tx, fees: campus.alma.paymentsFor(tx).map(p => ({ feeId: p.feeId, cents: p.amountCents })) })
  }
  return result
}
