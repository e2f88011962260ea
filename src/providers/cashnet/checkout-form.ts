// The fields of the form the patron's browser posts to the CashNet store (SPEC section 5): one line per fee,
// our checkout reference on every line, amounts with two decimals from integer cents.

import type { Checkout } from '../../ledger/types.ts'
import { formatDecimal } from '../../money.ts'

export interface CheckoutFormSettings {
  refType: string
  signoutUrl: string
}

/** CashNet does not document field lengths; keep descriptions short and single-line. */
function describeLine (feeTypeDesc: string, title: string): string {
  const text = [feeTypeDesc, title].filter(s => s.trim() !== '').join(': ').replace(/\s+/g, ' ').trim()
  return text.length > 60 ? text.slice(0, 59) + '…' : text
}

export function checkoutFormFields (checkout: Checkout, settings: CheckoutFormSettings): Array<[string, string]> {
  const fields: Array<[string, string]> = []
  checkout.lines.forEach((line, index) => {
    const n = index + 1
    fields.push(
      [`itemcode${n}`, line.itemCode],
      [`amount${n}`, formatDecimal(line.amount)],
      [`qty${n}`, '1'],
      [`desc${n}`, describeLine(line.feeTypeDesc || line.feeType, line.title)],
      [`ref1type${n}`, settings.refType],
      [`ref1val${n}`, checkout.id]
    )
  })
  fields.push(
    ['itemcnt', String(checkout.lines.length)],
    ['custcode', checkout.primaryId],
    ['NAME_G', checkout.patronName],
    ['EMAIL_G', checkout.email],
    ['signouturl', settings.signoutUrl]
  )
  return fields
}
