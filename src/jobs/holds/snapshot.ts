// The holds snapshot: who carried a library hold after each run, one file per run date in the state directory.
// A run for date D compares with the latest snapshot dated before D, so re-running D gives the same files
// and never counts D's own snapshot as "the previous run".

import { parse as parseLine } from 'csv-parse/sync'
import { createReadStream } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { type Cents, formatDecimal, parseCents } from '../../money.ts'
import { BadInput } from '../errors.ts'
import type { Verdict } from './rules.ts'

export interface Hold extends Verdict {
  emplid: string
  primaryId: string
  amount: Cents
  currency: string
}

export const SNAPSHOT_HEADER = ['EMPLID', 'ALMA_PRIMARY_ID', 'AMOUNT', 'CURRENCY', 'BLOCKS', 'OVER_THRESHOLD']
const SNAPSHOT_HEADER_LINE = SNAPSHOT_HEADER.join(',')
const SNAPSHOT = /^holds-snapshot-(\d{4}-\d{2}-\d{2})\.csv$/

export function snapshotName (date: string): string {
  return `holds-snapshot-${date}.csv`
}

/** The dates of the snapshots in the state directory, oldest first. */
async function snapshotDates (stateDir: string): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(stateDir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  return names.map(n => SNAPSHOT.exec(n)?.[1]).filter((d): d is string => d !== undefined).sort()
}

/** The latest snapshot strictly before `date`, or undefined on the first run. */
export async function previousSnapshot (stateDir: string, date: string): Promise<{ date: string, path: string } | undefined> {
  const last = (await snapshotDates(stateDir)).filter(d => d < date).pop()
  return last === undefined ? undefined : { date: last, path: join(stateDir, snapshotName(last)) }
}

/**
 * The latest run dated after `date`, if any. A run for an earlier date compares with an older state than PeopleSoft
 * has loaded since: its files would re-assign holds released since (and release again, or not, what the later runs
 * already settled), while the next run still compares with the later snapshot.
 */
export async function laterRun (stateDir: string, date: string): Promise<string | undefined> {
  const latest = (await snapshotDates(stateDir)).pop()
  return latest !== undefined && latest > date ? latest : undefined
}

/**
 * Reads a snapshot hold by hold; `intern` lets repeated texts (currencies, block codes) share one string. Read line by line
 * rather than through a CSV parser: this file is ours, a few hundred thousand plain lines, and the parser's
 * per-row garbage alone tripled the job's peak memory. A quoted line (an odd identifier) still gets the parser.
 */
export async function readSnapshot (path: string, onHold: (hold: Hold) => void, intern: (s: string) => string = s => s): Promise<number> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity })
  const damaged = (where: string, what: string): BadInput =>
    new BadInput(path, where, `damaged snapshot (${what}); restore it from backup, or remove it to start over`)
  let n = 0
  for await (const line of lines) {
    if (++n === 1) {
      // Our own header, exactly: another order, a hand-edited file or another job's CSV would be read misplaced.
      if (line !== SNAPSHOT_HEADER_LINE) throw damaged('line 1', `header "${line.slice(0, 80)}", expected ${SNAPSHOT_HEADER_LINE}`)
      continue
    }
    if (line === '') continue
    const [emplid, primaryId, amount, currency, blocks, over] = line.includes('"') ? (parseLine(line) as string[][])[0] : line.split(',')
    try {
      onHold({ emplid, primaryId, amount: parseCents(amount, { allowNegative: true }), currency: intern(currency), blocks: intern(blocks ?? ''), overThreshold: over === 'Y' })
    } catch (error) {
      throw damaged(`line ${n}`, (error as Error).message)
    }
  }
  // Zero bytes is what a crash leaves, not "nobody was held": read so, it would re-assign everyone and release no one.
  if (n === 0) throw damaged('', 'empty, not even a header')
  return n - 1
}

export function * snapshotRows (holds: Iterable<Hold>): Iterable<string[]> {
  yield SNAPSHOT_HEADER
  for (const h of holds) yield [h.emplid, h.primaryId, formatDecimal(h.amount), h.currency, h.blocks, h.overThreshold ? 'Y' : 'N']
}
