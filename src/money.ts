// Money is an integer number of cents, branded so that a float or a raw string can never pass for it.
// Amounts are parsed here once, at the edge (Alma XML, CashNet fields, configuration), and formatted once in views.

export type Cents = number & { readonly __brand: 'Cents' }

export class InvalidAmount extends Error {
  readonly kind = 'InvalidAmount'
  constructor (readonly input: unknown, reason: string) {
    super(`invalid amount ${JSON.stringify(String(input)).slice(0, 40)}: ${reason}`)
  }
}

const DECIMAL = /^(-)?(\d{1,12})(?:\.(\d+))?$/

/**
 * Parses a decimal string ("12.5", "0.01", "-3.00") into cents without floating point.
 * Digits past the second decimal must be zeros ("12.500" is fine, "12.505" is not).
 */
export function parseCents (input: string, options: { allowNegative?: boolean } = {}): Cents {
  const text = String(input).trim()
  const match = DECIMAL.exec(text)
  if (match === null) throw new InvalidAmount(input, 'not a decimal number')
  const [, sign, whole, fraction = ''] = match
  if (/[^0]/.test(fraction.slice(2))) throw new InvalidAmount(input, 'more than two decimals')
  const cents = Number(whole) * 100 + Number((fraction + '00').slice(0, 2))
  if (!Number.isSafeInteger(cents)) throw new InvalidAmount(input, 'too large')
  if (sign === '-' && cents !== 0) {
    if (options.allowNegative !== true) throw new InvalidAmount(input, 'negative')
    return -cents as Cents
  }
  return cents as Cents
}

export function cents (n: number): Cents {
  if (!Number.isSafeInteger(n)) throw new InvalidAmount(n, 'not an integer number of cents')
  return n as Cents
}

/** "12.50": two decimals, no currency sign, no grouping; what CashNet and Alma expect. */
export function formatDecimal (amount: Cents): string {
  const sign = amount < 0 ? '-' : ''
  const abs = Math.abs(amount)
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`
}

export function sumCents (amounts: Iterable<Cents>): Cents {
  let total = 0
  for (const a of amounts) total += a
  return total as Cents
}

/** Building an Intl.NumberFormat costs far more than formatting with one: keep one per locale and currency. */
const moneyFormats = new Map<string, Intl.NumberFormat | null>()

/** "$12.50" for people; the currency code comes from configuration or Alma. */
export function formatMoney (amount: Cents, currency: string, locale = 'en-US'): string {
  const key = `${locale} ${currency}`
  let format = moneyFormats.get(key)
  if (format === undefined) {
    try {
      format = new Intl.NumberFormat(locale, { style: 'currency', currency })
    } catch {
      format = null
    }
    // Currency codes come from Alma: bound the cache rather than trust the set to stay small.
    if (moneyFormats.size < 256) moneyFormats.set(key, format)
  }
  return format === null ? `${formatDecimal(amount)} ${currency}` : format.format(amount / 100)
}
