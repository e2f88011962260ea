// Which PostgreSQL client the ledger uses, measured (issue 15): node-postgres (`pg`) against `postgres`
// (porsager), each on the same server, on the two shapes the ledger's writes take. Usage:
//   node --import tsx bench/pg-clients.ts postgres://user@host:port/db [clients-to-compare...]
// The comparison client(s) other than `pg` are resolved from PG_CLIENTS_DIR (a folder where they are installed)
// so the project does not depend on a client it does not use. Each run makes and drops its own table.
//   1. durable single-row transactions per second: 200 concurrent INSERTs, each its own committed transaction
//   2. the postback's shape: BEGIN; SELECT ... FOR UPDATE; UPDATE; INSERT; COMMIT, 200 concurrent, on 200 rows

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const url = process.argv[2]
if (url === undefined) throw new Error('usage: bench/pg-clients.ts DATABASE_URL')
const dir = process.env.PG_CLIENTS_DIR ?? process.cwd()
const require = createRequire(join(dir, 'package.json'))
const versionOf = (name: string): string => (JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
const CONCURRENT = 200
const POOL = 20
const ROUNDS = Number(process.env.PG_ROUNDS ?? 10)

interface Client {
  name: string
  version: string
  exec: (sql: string) => Promise<void>
  insertOne: (n: number) => Promise<void>
  lockUpdateInsert: (n: number) => Promise<void>
  end: () => Promise<void>
}

function nodePostgres (): Client {
  const pg = require('pg')
  const pool = new pg.Pool({ connectionString: url, max: POOL })
  return {
    name: 'pg',
    version: versionOf('pg'),
    exec: async sql => { await pool.query(sql) },
    insertOne: async n => { await pool.query('INSERT INTO bench_events (n, at) VALUES ($1, now())', [n]) },
    lockUpdateInsert: async n => {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        await client.query('SELECT state FROM bench_rows WHERE id = $1 FOR UPDATE', [n])
        await client.query('UPDATE bench_rows SET state = $2, hits = hits + 1 WHERE id = $1', [n, 'PAID'])
        await client.query('INSERT INTO bench_events (n, at) VALUES ($1, now())', [n])
        await client.query('COMMIT')
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {})
        throw error
      } finally {
        client.release()
      }
    },
    end: async () => { await pool.end() }
  }
}

function porsager (): Client {
  const postgres = require('postgres')
  const sql = postgres(url, { max: POOL, onnotice: () => {} })
  return {
    name: 'postgres',
    version: versionOf('postgres'),
    exec: async text => { await sql.unsafe(text) },
    insertOne: async n => { await sql`INSERT INTO bench_events (n, at) VALUES (${n}, now())` },
    lockUpdateInsert: async n => {
      await sql.begin(async (tx: any) => {
        await tx`SELECT state FROM bench_rows WHERE id = ${n} FOR UPDATE`
        await tx`UPDATE bench_rows SET state = ${'PAID'}, hits = hits + 1 WHERE id = ${n}`
        await tx`INSERT INTO bench_events (n, at) VALUES (${n}, now())`
      })
    },
    end: async () => { await sql.end() }
  }
}

async function perSecond (work: (n: number) => Promise<void>): Promise<number> {
  let best = 0
  for (let round = 0; round < ROUNDS; round++) {
    const started = performance.now()
    await Promise.all(Array.from({ length: CONCURRENT }, async (_, n) => { await work(n + 1) }))
    best = Math.max(best, CONCURRENT / ((performance.now() - started) / 1000))
  }
  return Math.round(best)
}

const clients = [nodePostgres(), porsager()]
for (const client of clients) {
  await client.exec('DROP TABLE IF EXISTS bench_events; DROP TABLE IF EXISTS bench_rows')
  await client.exec('CREATE TABLE bench_events (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n INTEGER NOT NULL, at TIMESTAMPTZ NOT NULL)')
  await client.exec(`CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, state TEXT NOT NULL, hits INTEGER NOT NULL);
    INSERT INTO bench_rows SELECT g, 'CREATED', 0 FROM generate_series(1, ${CONCURRENT}) g`)
  await perSecond(client.insertOne) // warm the pool
  const single = await perSecond(client.insertOne)
  const locked = await perSecond(client.lockUpdateInsert)
  console.log(JSON.stringify({ client: client.name, version: client.version, node: process.version, concurrent: CONCURRENT, pool: POOL, singleRowTxPerSecond: single, lockUpdateInsertTxPerSecond: locked }))
  await client.exec('DROP TABLE bench_events; DROP TABLE bench_rows')
  await client.end()
}
