// What one campus's SQLite ledger costs a system deployment's process (SPEC 12, issue 16: twenty campuses within
// +20 MB of one): once open it holds no page cache from its migration, and its page cache is bounded to SQLite's
// 2 MB where better-sqlite3's default is 16 MB, so twenty grown ledgers cannot take hundreds of MB.

import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { CAMPUS_CACHE_KIB } from '../../src/ledger/open.ts'
import { Connection } from '../../src/ledger/sqlite/connection.ts'
import { tempDir } from '../jobs/cli.ts'
import { tsNodeArgs } from '../support/ts-child.ts'

t.test('a campus\'s ledger, once opened and migrated, keeps under 250 KiB resident (it kept about 330 with the migration\'s pages cached)', async t => {
  const child = spawnSync(process.execPath, ['--expose-gc', ...tsNodeArgs(), new URL('../support/ledger-memory-child.ts', import.meta.url).pathname], {
    env: { ...process.env, DIR: tempDir(t), COUNT: '40' },
    encoding: 'utf8'
  })
  t.equal(child.status, 0, child.stderr)
  const { perLedgerKib } = JSON.parse(child.stdout) as { perLedgerKib: number }
  t.ok(perLedgerKib < 250, `${perLedgerKib} KiB per campus ledger`)
})

t.test('the connection\'s page cache is what it is opened with; without a bound, better-sqlite3\'s default', async t => {
  const dir = tempDir(t)
  const bounded = Connection.open(join(dir, 'campus.sqlite'), () => new Date(), { cacheKib: CAMPUS_CACHE_KIB })
  const lone = Connection.open(join(dir, 'lone.sqlite'), () => new Date())
  t.teardown(() => { bounded.close(); lone.close() })
  t.equal(CAMPUS_CACHE_KIB, 2000, 'SQLite\'s own default, 2 MB')
  t.equal(bounded.db.pragma('cache_size', { simple: true }), -2000)
  t.equal(lone.db.pragma('cache_size', { simple: true }), -16000)
  t.same(bounded.db.prepare('SELECT COUNT(*) AS n FROM checkouts').get(), { n: 0 }, 'migrated and readable after shrinking')
})
