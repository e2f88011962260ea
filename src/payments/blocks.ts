// Releasing library blocks once a patron owes nothing: GET the whole user, remove only the configured blocks,
// PUT the whole user back (Alma's PUT is swap-all, so everything else must go back exactly as it came).

import type { AlmaCallObserver, AlmaClient } from '../alma/client.ts'
import { requireAnsweredFor } from '../alma/errors.ts'
import { mapUser, parseXml } from '../alma/xml.ts'

export interface BlockRelease {
  released: string[]
  skipped?: 'balance-remains' | 'no-matching-blocks'
  balance: number
}

const USER_BLOCK = /<user_block\b[^>]*>[\s\S]*?<\/user_block>/g
/** The expanded balance (expand=fees) is output only: it must not be sent back in the PUT. */
const EXPANDED_FEES = /<fees\b[^>]*\/>|<fees\b[^>]*>[^<]*<\/fees>/

export function blockMatches (codes: ReadonlySet<string>, block: { type: { code: string }, description: { code: string }, status: string }): boolean {
  return block.status.toUpperCase() === 'ACTIVE' &&
    (codes.has(block.type.code.toUpperCase()) || codes.has(block.description.code.toUpperCase()))
}

/** Removes the matching blocks from a user document, leaving every other byte as Alma sent it. */
export function removeBlocks (userXml: string, codes: ReadonlySet<string>): { xml: string, removed: string[] } {
  const removed: string[] = []
  const xml = userXml.replace(USER_BLOCK, (segment) => {
    const doc = parseXml(`<user><primary_id>x</primary_id><user_blocks>${segment}</user_blocks></user>`)
    const [block] = mapUser(doc).blocks
    if (block !== undefined && blockMatches(codes, block)) {
      removed.push(block.description.code || block.type.code)
      return ''
    }
    return segment
  }).replace(EXPANDED_FEES, '')
  return { xml, removed }
}

export async function releaseBlocksIfSettled (
  alma: AlmaClient,
  primaryId: string,
  codes: ReadonlySet<string>,
  observe?: AlmaCallObserver
): Promise<BlockRelease> {
  const userXml = await alma.getUserXml(primaryId, observe)
  const user = mapUser(parseXml(userXml))
  // read by primary id, which Alma searches as all_unique: never release, nor write back, another patron's record
  requireAnsweredFor(primaryId, { user })
  const balance = user.feeBalance ?? 0
  if (balance > 0) return { released: [], skipped: 'balance-remains', balance }
  const { xml, removed } = removeBlocks(userXml, codes)
  if (removed.length === 0) return { released: [], skipped: 'no-matching-blocks', balance }
  await alma.putUserXml(primaryId, xml, observe)
  return { released: removed, balance }
}
