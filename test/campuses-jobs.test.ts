// SPEC 12's jobs: with CAMPUSES_FILE, --campus ID (or CAMPUS) is required and the job reads that campus's
// settings, its ledger and its own holds snapshot, and talks to its own Alma with its own key.

import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Browser, buildCampuses, checkoutIdFrom, until } from './helper.ts'
import { runScript, tempDir } from './jobs/cli.ts'
import type { SandboxCampus } from '../src/sandbox/stack.ts'

const CODES = { HOLDS_INSTITUTION: 'SPUNV', HOLDS_SRVC_IND_CD: 'LIB', HOLDS_SRVC_IND_REASON: 'FINES', HOLDS_BLOCK_TYPES: 'FINES', HOLDS_DEPTID: 'LIBRARY' }

t.test('jobs with --campus read that campus\'s ledger, Alma and files only', async t => {
  const dir = tempDir(t)
  const stack = await buildCampuses(t, { env: { DATABASE_PATH: join(dir, 'payments.sqlite') } })
  const env = (): Record<string, string> => ({
    CAMPUSES_FILE: stack.campuses[0].config.campusesFile,
    DATABASE_PATH: join(dir, 'payments.sqlite'),
    COOKIE_SECRET: 'x'.repeat(40),
    SPRINGFIELD_ALMA_API_KEY: stack.campuses[0].almaApiKey,
    SHELBYVILLE_ALMA_API_KEY: stack.campuses[1].almaApiKey
  })
  t.ok(existsSync(join(dir, 'springfield.sqlite')) && existsSync(join(dir, 'shelbyville.sqlite')), 'one ledger per campus beside DATABASE_PATH')
  t.notOk(existsSync(join(dir, 'payments.sqlite')), 'the single-campus file is not used')

  // alice pays at each campus (the same username)
  const ids: Record<string, string> = {}
  for (const campus of stack.campuses) {
    const patron = new Browser({ publicUrl: campus.ezproxyUrl, ezproxy: campus.ezproxy }, { prefix: `/${campus.id}` }).login('alice')
    const { fields, action } = await patron.checkout()
    await patron.payOnCashnet(action, fields)
    ids[campus.id] = checkoutIdFrom(fields)
    await until(async () => (await stack.app.campuses.get(campus.id)?.ledger.getCheckout(ids[campus.id]))?.state === 'POSTED', `${campus.id} posted`)
  }

  // trace: each campus's story of alice is its own
  for (const [own, other] of [['springfield', 'shelbyville'], ['shelbyville', 'springfield']]) {
    const run = await runScript('trace.ts', ['alice', '--json', '--campus', own], env())
    t.equal(run.code, 0, run.stderr)
    t.match(run.stdout, ids[own], `${own}'s payment`)
    t.notMatch(run.stdout, ids[other], `not ${other}'s`)
  }
  const without = await runScript('trace.ts', ['alice'], env())
  t.equal(without.code, 2)
  t.match(without.stderr, 'CAMPUS is required when CAMPUSES_FILE is set')
  const unknown = await runScript('trace.ts', ['alice', '--campus', 'ogdenville'], env())
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, 'not a campus of CAMPUSES_FILE (springfield, shelbyville)')

  // reconcile: its own Alma, with its own key, only
  const seen = (campus: SandboxCampus): number => campus.alma.authorizations.length
  const [springfield, shelbyville] = stack.campuses
  const before = { springfield: seen(springfield), shelbyville: seen(shelbyville) }
  const reconcile = await runScript('reconcile.ts', ['--json', '--since', new Date(Date.now() - 86400000).toISOString().slice(0, 10)], { ...env(), CAMPUS: 'shelbyville' })
  t.equal(reconcile.code, 0, reconcile.stderr)
  t.same(JSON.parse(reconcile.stdout).findings, [], 'shelbyville\'s ledger agrees with shelbyville\'s Alma')
  t.equal(seen(springfield), before.springfield, 'springfield\'s Alma was not asked')
  t.ok(seen(shelbyville) > before.shelbyville, 'shelbyville\'s Alma was asked')
  t.same([...new Set(shelbyville.alma.authorizations.slice(before.shelbyville))], [`apikey ${shelbyville.almaApiKey}`])

  // holds: one snapshot per campus under HOLDS_STATE_DIR, so one campus's run is never diffed against another's
  for (const campus of ['springfield', 'shelbyville']) {
    const run = await runScript('export-holds.ts', ['--campus', campus, '--users', 'test/fixtures/holds/user-blocks-camelcase.xml', '--out', join(dir, `out-${campus}`), '--date', '2026-10-01'], { ...env(), ...CODES, HOLDS_STATE_DIR: join(dir, 'holds') })
    t.equal(run.code, 0, run.stderr)
  }
  t.same(readdirSync(join(dir, 'holds')).sort(), ['shelbyville', 'springfield'])
  const adds = (campus: string): string => readFileSync(join(dir, `out-${campus}`, 'holds-add-2026-10-01.csv'), 'utf8')
  t.ok(adds('springfield').trim().split('\n').length > 1, 'holds to assign at the first campus')
  t.equal(adds('shelbyville'), adds('springfield'), 'the second campus\'s first run is a first run too, not a diff against the first campus\'s')
})
