// The seam between the web layer, the payment rules and the ledger, as source facts: routes import only types
// from src/ledger/ (what they need of it goes through src/payments/), the Ledger interface names no SQLite
// type, and nothing outside the SQLite ledger reaches into its parts.

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

const importsOf = (file: string): Array<{ typeOnly: boolean, from: string }> =>
  [...readFileSync(file, 'utf8').matchAll(/^import\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gms)].map(m => ({ typeOnly: m[1] !== undefined, from: m[2] }))

t.test('no route imports a value from src/ledger/', async t => {
  const dir = 'src/web/routes'
  for (const name of readdirSync(dir).filter(n => n.endsWith('.ts'))) {
    const values = importsOf(join(dir, name)).filter(i => !i.typeOnly && i.from.includes('/ledger/'))
    t.same(values.map(i => i.from), [], `${name} imports only types from the ledger`)
  }
})

t.test('the Ledger interface is free of SQLite', async t => {
  const source = readFileSync('src/ledger/ledger.ts', 'utf8').split('\n').filter(line => !/^\s*(\/\/|\*|\/\*\*)/.test(line)).join('\n')
  t.same(importsOf('src/ledger/ledger.ts').map(i => i.from).filter(f => !f.startsWith('.')), [], 'imports nothing from a package')
  t.notMatch(source, /sqlite|rowid|Database\b/i)
  t.notMatch(source, /inTransaction/, 'no synchronous transaction in the interface')
})

t.test('only the ledger\'s opening reaches the SQLite implementation, through its index', async t => {
  const files = ['src', 'scripts'].flatMap(root => readdirSync(root, { recursive: true, withFileTypes: false }).map(f => join(root, String(f))))
    .filter(f => f.endsWith('.ts') && !f.startsWith(join('src', 'ledger', 'sqlite')))
  const reaching = files.flatMap(f => importsOf(f).filter(i => i.from.includes('ledger/sqlite')).map(i => `${f} -> ${i.from}`))
  t.ok(reaching.length > 0)
  t.same(reaching.filter(r => !r.endsWith('ledger/sqlite/index.ts')), [], 'never into connection, store or queries directly')
})
