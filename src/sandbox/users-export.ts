// Writes users files of any size for tests and benchmarks, streamed to disk: the "Export User by Conditions"
// XML (formerly "Export user blocks") as we reconstruct it (brief user data, the active balance, the blocks, the
// Match ID in userId), or the Users API shape (<users><user>…). Generated patrons are deterministic, so a
// benchmark run can be repeated.
// INVENTED: Ex Libris documents only what that export contains, not its XML. The root element
// <userBlocksExport>, its namespace http://com/exlibris/urm/user_blocks/xmlbeans and the element names of a
// record are our guesses, not Alma's; test/fixtures/holds/ holds other plausible shapes the job also reads.

import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { element, xmlEscape } from './xml-escape.ts'

export interface ExportBlock {
  type: string
  description: string
  status?: 'ACTIVE' | 'INACTIVE'
  expiryDate?: string
}

export interface ExportPatron {
  primaryId: string
  /** the campus id (Match ID); absent for patrons without one */
  campusId?: string
  firstName: string
  lastName: string
  userGroup?: string
  /** decimal as Alma writes it, e.g. "12.50" */
  balance: string
  currency?: string
  blocks: ExportBlock[]
}

export type ExportShape = 'blocks' | 'users'

function blocksRecord (p: ExportPatron): string {
  const blocks = p.blocks.map(b => '<block>' + element('blockType', b.type) + element('blockDescription', b.description) +
    element('blockStatus', b.status ?? 'ACTIVE') + element('expiryDate', b.expiryDate ?? '') + '</block>').join('')
  return '<user>' + element('userId', p.campusId ?? '') + element('primaryId', p.primaryId) + element('firstName', p.firstName) +
    element('lastName', p.lastName) + element('userGroup', p.userGroup ?? 'UG') +
    element('activeBalance', p.balance, { currency: p.currency ?? 'USD' }) + `<blocks>${blocks}</blocks></user>\n`
}

function usersApiRecord (p: ExportPatron, idType: string): string {
  const ids = p.campusId === undefined ? '' : `<user_identifier segment_type="External"><id_type desc="${xmlEscape(idType)}">${xmlEscape(idType)}</id_type>${element('value', p.campusId)}<status>ACTIVE</status></user_identifier>`
  const blocks = p.blocks.map(b => `<user_block segment_type="External"><block_type desc="${xmlEscape(b.type)}">${xmlEscape(b.type)}</block_type>` +
    `<block_description desc="${xmlEscape(b.description)}">${xmlEscape(b.description)}</block_description>` +
    `<block_status>${b.status ?? 'ACTIVE'}</block_status>${element('expiry_date', b.expiryDate ?? '')}</user_block>`).join('')
  return '<user>' + element('primary_id', p.primaryId) + element('first_name', p.firstName) + element('last_name', p.lastName) +
    `<user_group desc="${xmlEscape(p.userGroup ?? 'UG')}">${xmlEscape(p.userGroup ?? 'UG')}</user_group><status desc="Active">ACTIVE</status>` +
    `<user_identifiers>${ids}</user_identifiers><user_blocks>${blocks}</user_blocks>` +
    `<fees currency="${xmlEscape(p.currency ?? 'USD')}">${xmlEscape(p.balance)}</fees></user>\n`
}

/** Streams the patrons to `path` in the chosen shape; returns how many were written. */
export async function writeUsersExport (path: string, patrons: Iterable<ExportPatron>, options: { shape?: ExportShape, idType?: string } = {}): Promise<number> {
  const shape = options.shape ?? 'blocks'
  const out = createWriteStream(path)
  const put = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain')
  }
  await put('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n')
  // The root element and namespace are invented (see the top of this file).
  await put(shape === 'blocks' ? '<userBlocksExport xmlns="http://com/exlibris/urm/user_blocks/xmlbeans">\n<users>\n' : '<users total_record_count="0">\n')
  let count = 0
  for (const patron of patrons) {
    await put(shape === 'blocks' ? blocksRecord(patron) : usersApiRecord(patron, options.idType ?? 'UNIV_ID'))
    count++
  }
  await put(shape === 'blocks' ? '</users>\n</userBlocksExport>\n' : '</users>\n')
  out.end()
  await once(out, 'finish')
  return count
}

/**
 * `count` patrons as the export would list them (everyone has a block or a balance): 60% a balance only,
 * 25% a block and a balance, 13% a block only, and every 50th without a campus id.
 */
export function * generatedPatrons (count: number, seed = 1): Iterable<ExportPatron> {
  let state = seed >>> 0 || 1
  const random = (): number => {
    state ^= state << 13; state >>>= 0
    state ^= state >>> 17
    state ^= state << 5; state >>>= 0
    return state / 0x100000000
  }
  for (let i = 1; i <= count; i++) {
    const kind = random()
    const blocked = kind >= 0.6
    const cents = kind >= 0.85 ? 0 : 1 + Math.floor(random() * 20000)
    yield {
      primaryId: `user${String(i).padStart(7, '0')}`,
      campusId: i % 50 === 0 ? undefined : String(800000000 + i),
      firstName: i % 97 === 0 ? 'Zoë' : 'Pat',
      lastName: `Patron ${i}`,
      balance: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`,
      blocks: blocked ? [{ type: 'GENERAL', description: random() < 0.5 ? 'FINES' : 'CONDUCT' }] : []
    }
  }
}
