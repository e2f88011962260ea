// The chartfield map (GL_MAP_FILE): fee type and owning library to account, fund and department, with a
// default, plus the journal's constants and the clearing account that balances it. Validated on load, with
// PeopleSoft's field lengths, so that a typo fails the run instead of PeopleSoft's Journal Edit.

import { readFile } from 'node:fs/promises'
import { CHECKOUT_PROVIDERS, type CheckoutProvider } from '../../ledger/types.ts'
import { BadInput } from '../errors.ts'

export interface Chartfields {
  account: string
  fund: string
  deptid: string
}

export interface ChartfieldRule extends Partial<Chartfields> {
  feeType?: string
  owner?: string
}

export interface GlMap {
  businessUnit: string
  ledger: string
  ledgerGroup: string
  journalId: string
  source: string
  description: string
  /** the clearing account of a provider without its own */
  clearing: Chartfields
  /** where refunds are debited; absent: back against each fee's own revenue chartfields */
  refunds?: Chartfields
  /** a provider's own clearing account (optional in the file; missing fields from `clearing`) */
  clearingByProvider: Partial<Record<CheckoutProvider, Chartfields>>
  default: Chartfields
  rules: ChartfieldRule[]
}

/** JRNL_LN / JRNL_HEADER lengths (reference/peoplesoft.md, High for the lengths). */
const LENGTHS: Record<string, number> = {
  businessUnit: 5, ledger: 10, ledgerGroup: 10, journalId: 10, source: 3, description: 30, account: 10, fund: 5, deptid: 10, feeType: 40, owner: 40
}

function text (input: Record<string, unknown>, key: string, where: string, path: string, fallback?: string): string {
  const value = input[key] ?? fallback
  if (typeof value !== 'string') throw new BadInput(path, where, `"${key}" must be a string${fallback === undefined ? ' and is required' : ''}`)
  if (value.length > (LENGTHS[key] ?? 100)) throw new BadInput(path, where, `"${key}" "${value}" is longer than ${LENGTHS[key]} characters`)
  return value
}

function chartfields (input: unknown, where: string, path: string, fallback?: Chartfields): Chartfields {
  if (input === null || typeof input !== 'object') throw new BadInput(path, where, 'must be an object with account, fund and deptid')
  const o = input as Record<string, unknown>
  return { account: text(o, 'account', where, path, fallback?.account), fund: text(o, 'fund', where, path, fallback?.fund ?? ''), deptid: text(o, 'deptid', where, path, fallback?.deptid ?? '') }
}

export async function loadGlMap (path: string): Promise<GlMap> {
  let raw: unknown
  try {
    raw = JSON.parse(await readFile(path, 'utf8'))
  } catch (error) {
    throw new BadInput(path, '', `not readable JSON (${(error as Error).message})`)
  }
  if (raw === null || typeof raw !== 'object') throw new BadInput(path, '', 'must be a JSON object')
  const o = raw as Record<string, unknown>
  const fallback = chartfields(o.default, 'default', path)
  const rules = o.rules ?? []
  if (!Array.isArray(rules)) throw new BadInput(path, 'rules', 'must be a list')
  const clearing = chartfields(o.clearing, 'clearing', path)
  const byProvider = o.clearingByProvider ?? {}
  if (byProvider === null || typeof byProvider !== 'object' || Array.isArray(byProvider)) throw new BadInput(path, 'clearingByProvider', `must be an object keyed by provider (${CHECKOUT_PROVIDERS.join(', ')})`)
  const clearingByProvider: Partial<Record<CheckoutProvider, Chartfields>> = {}
  for (const [name, fields] of Object.entries(byProvider)) {
    if (!(CHECKOUT_PROVIDERS as readonly string[]).includes(name)) throw new BadInput(path, `clearingByProvider.${name}`, `unknown provider; use ${CHECKOUT_PROVIDERS.join(' or ')}`)
    clearingByProvider[name as CheckoutProvider] = chartfields(fields, `clearingByProvider.${name}`, path, clearing)
  }
  return {
    businessUnit: text(o, 'businessUnit', 'businessUnit', path),
    ledger: text(o, 'ledger', 'ledger', path, 'ACTUALS'),
    ledgerGroup: text(o, 'ledgerGroup', 'ledgerGroup', path, 'ACTUALS'),
    journalId: text(o, 'journalId', 'journalId', path, 'NEXT'),
    source: text(o, 'source', 'source', path, ''),
    description: text(o, 'description', 'description', path, 'Library fines paid via CashNet'),
    clearing,
    clearingByProvider,
    ...(o.refunds !== undefined ? { refunds: chartfields(o.refunds, 'refunds', path) } : {}),
    default: fallback,
    rules: rules.map((r, i): ChartfieldRule => {
      const where = `rules[${i}]`
      if (r === null || typeof r !== 'object') throw new BadInput(path, where, 'must be an object')
      const rule = r as Record<string, unknown>
      if (rule.feeType === undefined && rule.owner === undefined) throw new BadInput(path, where, 'needs a feeType and/or an owner')
      const out: ChartfieldRule = {}
      for (const key of ['feeType', 'owner', 'account', 'fund', 'deptid'] as const) {
        if (rule[key] !== undefined) out[key] = text(rule, key, where, path)
      }
      return out
    })
  }
}

/** The account a provider's receipts clear through: its own if the map names one, else the common one. */
export function clearingFor (map: GlMap, provider: CheckoutProvider): Chartfields {
  return map.clearingByProvider[provider] ?? map.clearing
}

/** The most specific rule wins: fee type and owner, then fee type, then owner; missing fields from the default. */
export function chartfieldsFor (map: GlMap, feeType: string, owner: string): Chartfields {
  const type = feeType.toUpperCase()
  const lib = owner.toUpperCase()
  const matches = (r: ChartfieldRule, t: boolean, o: boolean): boolean =>
    (t ? r.feeType?.toUpperCase() === type : r.feeType === undefined) && (o ? r.owner?.toUpperCase() === lib : r.owner === undefined)
  const rule = map.rules.find(r => matches(r, true, true)) ?? map.rules.find(r => matches(r, true, false)) ?? map.rules.find(r => matches(r, false, true))
  return { account: rule?.account ?? map.default.account, fund: rule?.fund ?? map.default.fund, deptid: rule?.deptid ?? map.default.deptid }
}
