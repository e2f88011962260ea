// Server-rendered HTML with escaping by default: every interpolated value is escaped unless it is already
// Html (made by this tag). Alma's titles, names and notes can never become markup.

import escapeHtml from 'escape-html'

export class Html {
  constructor (readonly value: string) {}
  toString (): string { return this.value }
}

type Value = Html | string | number | null | undefined | false | Value[]

function render (value: Value): string {
  if (value === null || value === undefined || value === false) return ''
  if (value instanceof Html) return value.value
  if (Array.isArray(value)) return value.map(render).join('')
  return escapeHtml(String(value))
}

export function html (strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]
  return new Html(out)
}

/** For markup this codebase wrote itself (never for outside data). */
export function trusted (markup: string): Html {
  return new Html(markup)
}
