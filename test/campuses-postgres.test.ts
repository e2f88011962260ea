// SPEC 11 and 12 together: a system deployment on one PostgreSQL database (DATABASE_URL) keeps each campus in its
// own schema, campus_<id>, created and migrated at start-up; no row of one campus is in another's schema or in
// the database's default schema, and a job with --campus reads that campus's schema only.

import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import t from 'tap'
import type { SandboxCampus } from '../src/sandbox/stack.ts'
import { Browser, buildCampuses, checkoutIdFrom, send } from './helper.ts'
import { freshDatabase } from './support/postgres.ts'
import { tsNodeArgs } from './support/ts-child.ts'

function browserAt (campus: SandboxCampus): Browser {
  return new Browser({ publicUrl: campus.ezproxyUrl, ezproxy: campus.ezproxy }, { prefix: `/${campus.id}` })
}

async function rows (url: string, sql: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(sql)).rows
  } finally {
    await client.end()
  }
}

t.test('on PostgreSQL each campus has its own schema: a payment at one campus is in its schema only', async t => {
  const url = await freshDatabase(t)
  if (url === null) return
  const stack = await buildCampuses(t, { campuses: [{ id: 'springfield' }, { id: 'shelby-ville' }], env: { DATABASE_URL: url } })
  const [springfield, shelbyville] = stack.campuses
  const schemas = (await rows(url, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'campus_%' ORDER BY nspname")).map(r => r.nspname)
  t.same(schemas, ['campus_shelby_ville', 'campus_springfield'], 'one schema per campus, created at start-up (a - in the id is _)')
  t.same(await rows(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"), [], 'nothing in the default schema')

  const patron = browserAt(springfield).login('alice')
  const { fields, action } = await patron.checkout()
  const id = checkoutIdFrom(fields)
  t.equal((await patron.payOnCashnet(action, fields)).status, 200)
  await stack.app.campuses.get('springfield')?.worker.idle()
  const paid = await rows(url, `SELECT state FROM campus_springfield.checkouts WHERE id = '${id}'`)
  t.same(paid, [{ state: 'POSTED' }], 'the checkout is in Springfield\'s schema, posted')
  t.same(await rows(url, 'SELECT id FROM campus_shelby_ville.checkouts'), [], 'and nothing is in Shelbyville\'s')
  t.equal((await stack.app.campuses.get('shelby-ville')?.ledger.getCheckout(id)), undefined, 'Shelbyville\'s ledger cannot read it')
  t.ok(springfield.alma.calls.some(c => c.method === 'POST'), 'Springfield\'s Alma was paid')
  t.notOk(shelbyville.alma.calls.some(c => c.method === 'POST'), 'Shelbyville\'s Alma was not')
  const ready = await send(`${stack.serviceUrl}/readyz`)
  t.same(JSON.parse(ready.body).ledgers, { springfield: 'writable', 'shelby-ville': 'writable' })

  // a job with --campus reads that campus's schema: trace finds the checkout at Springfield, not at Shelbyville
  const file = join(t.testdir(), 'campuses.json')
  writeFileSync(file, JSON.stringify({ campuses: { springfield: {}, 'shelby-ville': {} } }))
  const env = { ...process.env, CAMPUSES_FILE: file, DATABASE_URL: url, TIMEZONE: 'UTC' }
  const run = async (campus: string): Promise<{ code: number, stdout: string }> => {
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [...tsNodeArgs(), 'scripts/trace.ts', '--campus', campus, '--json', id], { env })
      return { code: 0, stdout }
    } catch (error) {
      const e = error as { code: number, stdout: string }
      return { code: e.code, stdout: e.stdout }
    }
  }
  const found = await run('springfield')
  t.equal(found.code, 0)
  t.match(found.stdout, id)
  t.match(found.stdout, 'POSTED')
  const other = await run('shelby-ville')
  t.notMatch(other.stdout, 'POSTED', 'the other campus\'s schema has no such checkout')
})
