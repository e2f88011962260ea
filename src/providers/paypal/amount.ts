// PayPal's money objects ({ currency_code, value: "16.75" }) to integer cents and back, strictly: anything that
// is not a plain decimal with at most two places is refused here, before any rule sees it.

import { type Cents, formatDecimal, InvalidAmount, parseCents } from '../../money.ts'

export interface PayPalMoney {
  value: Cents
  currency: string
}

/** Currencies PayPal writes without decimals: their "cents" would be whole units, so the service does not take them. */
const ZERO_DECIMAL = new Set(['HUF', 'JPY', 'TWD'])
const CURRENCY = /^[A-Z]{3}$/
// PayPal's own pattern for value, narrowed to two places: no sign unless allowed, no exponent, no spaces, no "12."
const VALUE = /^(-)?\d{1,12}(\.\d{1,2})?$/

export function assertSupportedCurrency (currency: string): void {
  if (!CURRENCY.test(currency)) throw new InvalidAmount(currency, 'not a currency code')
  if (ZERO_DECIMAL.has(currency)) throw new InvalidAmount(currency, 'currency without decimals is not supported')
}

/** A PayPal money object as received; throws InvalidAmount on anything malformed. */
export function parsePayPalMoney (input: unknown, options: { allowNegative?: boolean } = {}): PayPalMoney {
  if (typeof input !== 'object' || input === null) throw new InvalidAmount(input, 'not a money object')
  const { currency_code: currency, value } = input as Record<string, unknown>
  if (typeof currency !== 'string') throw new InvalidAmount(currency, 'currency_code missing')
  assertSupportedCurrency(currency)
  if (typeof value !== 'string') throw new InvalidAmount(value, 'value is not a string')
  const match = VALUE.exec(value)
  if (match === null) throw new InvalidAmount(value, 'not a decimal with at most two places')
  if (match[1] === '-' && options.allowNegative !== true) throw new InvalidAmount(value, 'negative')
  return { value: parseCents(value, { allowNegative: options.allowNegative }), currency }
}

/** The money object PayPal expects for an amount in cents. */
export function payPalMoney (amount: Cents, currency: string): { currency_code: string, value: string } {
  assertSupportedCurrency(currency)
  return { currency_code: currency, value: formatDecimal(amount) }
}
