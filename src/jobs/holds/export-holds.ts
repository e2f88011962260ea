// export:holds: read the patrons, decide who carries a hold, compare with the previous run's snapshot, write
// the holds to assign and to release (and the patrons without a campus id), then advance the snapshot.

import { join } from 'node:path'
import { type Cents, formatDecimal } from '../../money.ts'
import { BadInput } from '../errors.ts'
import { type Progress, SILENT } from '../progress.ts'
import type { WriteFiles } from '../output.ts'
import { type HoldCodes, type HoldRow, holdRows } from './columns.ts'
import { readFinesCsv } from './fines-csv.ts'
import { assess, describe, type HoldRules, type Verdict } from './rules.ts'
import { type Hold, laterRun, previousSnapshot, readSnapshot, snapshotName, snapshotRows } from './snapshot.ts'
import type { PatronRecord } from './users-export.ts'
import { readUsersExport } from './users-export.ts'

export interface HoldsOptions {
  source: { kind: 'users' | 'fines', path: string }
  idType: string
  /** HOLDS_RECORD_ELEMENT: the repeating user element of the XML, when the loose search guesses wrong */
  recordElement?: string
  rules: HoldRules
  codes: HoldCodes
  columns: string[]
  outDir: string
  stateDir: string
  /** file name templates; {date} is replaced by the run date */
  names: { add: string, remove: string, skipped: string }
  /** refuse to release more than this share of the previous holds (a truncated export must not free everyone) */
  maxReleasePercent: number
  allowMassRelease: boolean
  /** run for a date before the latest run in the state directory (see laterRun) */
  allowEarlierDate: boolean
  defaultCurrency: string
}

export interface HoldsResult {
  records: number
  held: number
  added: number
  removed: number
  unchanged: number
  skipped: number
  /** holds of patrons without a campus id today, kept under the previous run's campus id */
  kept: number
  previousDate: string | null
  files: string[]
}

interface Skipped {
  patron: PatronRecord
  verdict: Verdict | null
  reason: string
  /** the previous run's hold on this patron, kept because they would still be held */
  kept?: Hold
}

const SKIPPED_HEADER = ['RECORD', 'ALMA_PRIMARY_ID', 'NAME', 'BALANCE', 'CURRENCY', 'WOULD_HOLD', 'HOLD_REASON', 'PROBLEM', 'KEPT_EMPLID']

/**
 * A copy of a short string that shares no memory with the parser's input: V8 may keep a long identifier as a
 * slice of a whole 256 KB read chunk, and a map of such slices would pin the whole file in memory.
 */
function own (s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8')
}

export async function exportHolds (options: HoldsOptions, write: WriteFiles, progress: Progress = SILENT): Promise<HoldsResult> {
  const date = options.rules.date
  // Hundreds of thousands of holds share a handful of currencies and block codes: keep one string of each.
  const interned = new Map<string, string>()
  const intern = (s: string): string => {
    const known = interned.get(s)
    if (known !== undefined) return known
    interned.set(s, s)
    return s
  }
  const later = await laterRun(options.stateDir, date)
  if (later !== undefined) {
    if (!options.allowEarlierDate) {
      throw new BadInput(options.stateDir, '', `a later run (${later}) is already in the state directory; a run for ${date} now would compare ` +
        `with the state before ${date}, and its files, loaded after ${later}'s, would re-assign holds released since. Run for ${later} or later, ` +
        'or, if you really mean to redo this date, run again with --allow-earlier-date')
    }
    progress.log(`a later run (${later}) exists: this run for ${date} compares with the state before ${date}, not with what PeopleSoft has loaded since (--allow-earlier-date)`)
  }
  const previous = await previousSnapshot(options.stateDir, date)
  const current = new Map<string, Hold>()
  const skipped: Skipped[] = []
  // Patrons who would be held but have no campus id today, by primary id: their hold from the previous run is
  // kept (a missing identifier in Alma must not release a hold in PeopleSoft while the patron still owes).
  const unnamed = new Map<string, Skipped>()
  const onPatron = (patron: PatronRecord): void => {
    const verdict = assess(patron, options.rules)
    if (patron.campusId === '') {
      const entry: Skipped = { patron, verdict, reason: verdict === null ? '' : describe(verdict, patron.balance ?? 0 as Cents, patron.currency) }
      skipped.push(entry)
      if (verdict !== null && patron.primaryId !== '' && !unnamed.has(patron.primaryId)) unnamed.set(patron.primaryId, entry)
      return
    }
    if (verdict === null) return
    const hold: Hold = { emplid: own(patron.campusId), primaryId: own(patron.primaryId), amount: patron.balance ?? 0 as Cents, currency: intern(patron.currency || options.defaultCurrency), blocks: intern(verdict.blocks), overThreshold: verdict.overThreshold }
    const same = current.get(hold.emplid)
    if (same === undefined) {
      current.set(hold.emplid, hold)
      return
    }
    // Two Alma accounts with one campus id: PeopleSoft knows one person, so one hold with the combined balance.
    // The same account again is another currency of the same patron (the fines file has a row per currency).
    if (!same.primaryId.split('+').includes(hold.primaryId)) {
      progress.log(`record ${patron.record}: campus id ${hold.emplid} also belongs to Alma user ${same.primaryId}; holds combined`)
      same.primaryId = `${same.primaryId}+${hold.primaryId}`
    }
    if (same.currency === hold.currency) same.amount = (same.amount + hold.amount) as Cents
    same.blocks = intern([...new Set([...same.blocks.split('+'), ...hold.blocks.split('+')])].filter(b => b !== '').join('+'))
    same.overThreshold ||= hold.overThreshold
  }
  const records = options.source.kind === 'users'
    ? await readUsersExport(options.source.path, options.idType, onPatron, progress, { recordElement: options.recordElement })
    : await readFinesCsv(options.source.path, onPatron, progress)
  // The previous holds are streamed past today's, never loaded whole: only the releases (and the kept holds) stay.
  const held = new Set<Hold>()
  const removes: HoldRow[] = []
  const kept: Hold[] = []
  const heldBefore = previous === undefined
    ? 0
    : await readSnapshot(previous.path, hold => {
      const now = current.get(hold.emplid)
      if (now !== undefined) {
        held.add(now)
        return
      }
      const entry = unnamedOwner(unnamed, hold.primaryId)
      if (entry === undefined || entry.verdict === null) {
        removes.push({ action: 'RELEASE', hold })
        return
      }
      // Kept under the old campus id with today's primary id, balance and reason: the next run finds it again by
      // primary id, releases it once the patron owes nothing, and treats a new campus id as a changed one.
      const { patron, verdict } = entry
      entry.kept = { emplid: hold.emplid, primaryId: own(patron.primaryId), amount: patron.balance ?? 0 as Cents, currency: intern(patron.currency || options.defaultCurrency), blocks: intern(verdict.blocks), overThreshold: verdict.overThreshold }
      kept.push(entry.kept)
    }, intern)
  const adds: HoldRow[] = []
  for (const hold of current.values()) if (!held.has(hold)) adds.push({ action: 'ASSIGN', hold })
  // A patron whose campus id changed is released under the old id and held under the new one; say so on both.
  const removedByPrimary = new Map(removes.map(r => [r.hold.primaryId, r]))
  for (const add of adds) {
    const removed = removedByPrimary.get(add.hold.primaryId)
    if (removed === undefined) continue
    add.otherId = removed.hold.emplid
    removed.otherId = add.hold.emplid
  }
  const byEmplid = (a: HoldRow, b: HoldRow): number => a.hold.emplid < b.hold.emplid ? -1 : a.hold.emplid > b.hold.emplid ? 1 : 0
  adds.sort(byEmplid)
  removes.sort(byEmplid)

  if (!options.allowMassRelease && heldBefore >= 20 && removes.length * 100 > heldBefore * options.maxReleasePercent) {
    throw new BadInput(options.source.path, '', `would release ${removes.length} of ${heldBefore} holds (more than ${options.maxReleasePercent}%); ` +
      'is the file complete? If this is right, run again with --allow-mass-release')
  }

  const name = (template: string): string => join(options.outDir, template.replaceAll('{date}', date))
  const files = [name(options.names.add), name(options.names.remove), name(options.names.skipped)]
  await write([
    { path: files[0], csv: holdRows(options.columns, adds, options.codes) },
    { path: files[1], csv: holdRows(options.columns, removes, options.codes) },
    { path: files[2], csv: skippedRows(skipped, options.idType, previous?.date ?? '') }
  ])
  // Only now, with both files in place, does the snapshot advance.
  const sorted = [...current.values(), ...kept].sort((a, b) => a.emplid < b.emplid ? -1 : a.emplid > b.emplid ? 1 : 0)
  await write([{ path: join(options.stateDir, snapshotName(date)), csv: snapshotRows(sorted) }])
  return {
    records,
    held: current.size + kept.length,
    added: adds.length,
    removed: removes.length,
    unchanged: current.size + kept.length - adds.length,
    skipped: skipped.length,
    kept: kept.length,
    previousDate: previous?.date ?? null,
    files
  }
}

/**
 * The patron without a campus id today whom a previous hold belongs to: matched on the primary id, or on one of
 * the primary ids of a combined hold ("a+b", two Alma accounts with one campus id).
 */
function unnamedOwner (unnamed: Map<string, Skipped>, primaryId: string): Skipped | undefined {
  if (unnamed.size === 0) return undefined
  const whole = unnamed.get(primaryId)
  if (whole !== undefined || !primaryId.includes('+')) return whole
  for (const part of primaryId.split('+')) {
    const entry = unnamed.get(part)
    if (entry !== undefined) return entry
  }
  return undefined
}

function * skippedRows (skipped: Skipped[], idType: string, previousDate: string): Iterable<string[]> {
  yield SKIPPED_HEADER
  for (const { patron, reason, kept } of skipped) {
    const problem = kept === undefined
      ? `no ${idType} identifier in Alma`
      : `no ${idType} identifier in Alma; hold on ${kept.emplid} kept from the ${previousDate} run (the patron still owes); fix the identifier in Alma`
    yield [String(patron.record), patron.primaryId, patron.name, patron.balance === null ? '' : formatDecimal(patron.balance), patron.currency,
      reason !== '' ? 'Y' : 'N', reason, problem, kept?.emplid ?? '']
  }
}
