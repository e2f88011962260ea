// The states of a checkout (SPEC 5) as the web layer may name them: staff filter the payments list by state.
// The ledger owns the list; routes take it from here, never from src/ledger/ (they import only its types).

import { CHECKOUT_STATES, type CheckoutState } from '../ledger/types.ts'

export { CHECKOUT_STATES }

/** The states among `names` (any case, surrounding spaces ignored), in the ledger's order; unknown names are dropped. */
export function statesNamed (names: Iterable<string>): CheckoutState[] {
  const wanted = new Set([...names].map(n => n.trim().toUpperCase()))
  return CHECKOUT_STATES.filter(s => wanted.has(s))
}
