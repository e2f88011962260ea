// Run by test/ledger/sqlite-memory.test.ts in its own process (`node --expose-gc`, the test's TypeScript loader): opens the ledgers
// of COUNT campuses of a system deployment, each a new file in DIR as the service does at start-up, and prints the resident memory gained per ledger after a full GC (two ledgers are opened
// first, so what is paid once, the driver and SQLite's code pages, is not counted), as JSON.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Ledger } from '../../src/ledger/ledger.ts'
import { openLedger } from '../../src/ledger/open.ts'

const dir = process.env.DIR as string
const gc = (globalThis as { gc?: () => void }).gc as () => void
const rssKib = (): number => { gc(); gc(); return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) }
const open = async (name: string, campus: string | undefined): Promise<Ledger> => await openLedger({ databasePath: join(dir, `${name}.sqlite`), databaseUrl: '', campus })

const count = Number(process.env.COUNT)
const ledgers = [await open('warm-1', 'warm-1'), await open('warm-2', 'warm-2')]
const before = rssKib()
for (let i = 0; i < count; i++) ledgers.push(await open(`campus-${i}`, `campus-${i}`))
const after = rssKib()
process.stdout.write(JSON.stringify({ perLedgerKib: Math.round((after - before) / count) }) + '\n')
for (const ledger of ledgers) await ledger.close()
