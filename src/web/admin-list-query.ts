// The staff payments list's filters (GET /admin and /admin/payments.csv): the query string's schema, and the
// filters read from it. A filter the list does not know (a state that does not exist, a page that is not a
// number) is ignored rather than refused: staff edit these URLs by hand.

import { CHECKOUT_STATES } from '../ledger/types.ts'
import type { ListQuery } from './views/admin.ts'

const MAX_SEARCH = 200

export const LIST_QUERY_SCHEMA = {
  type: 'object',
  properties: {
    // ?state=PAID&state=POSTED or ?state=PAID,POSTED; one state arrives as a list of one
    state: { type: 'array', items: { type: 'string' }, default: [] },
    q: { type: 'string', default: '' },
    page: { type: 'string', default: '1' }
  }
} as const

export interface RawListQuery {
  state: string[]
  q: string
  page: string
}

export function readListQuery (query: RawListQuery): ListQuery {
  const states = new Set(query.state.flatMap(s => s.split(',')).map(s => s.trim().toUpperCase()))
  const page = Number.parseInt(query.page, 10)
  return {
    states: CHECKOUT_STATES.filter(s => states.has(s)),
    search: query.q.trim().slice(0, MAX_SEARCH),
    page: Number.isSafeInteger(page) && page >= 1 ? page : 1
  }
}
