// Escaping for the sandboxes' hand-written XML.

export function xmlEscape (value: string): string {
  return value.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string)
}

export function element (name: string, value: string, attrs: Record<string, string> = {}): string {
  const attributes = Object.entries(attrs).map(([k, v]) => ` ${k}="${xmlEscape(v)}"`).join('')
  return value === '' ? `<${name}${attributes}/>` : `<${name}${attributes}>${xmlEscape(value)}</${name}>`
}
