// Pages are linked relatively, so they keep working when EZproxy serves the service under a rewritten host or
// path: a page needs the way back from its own URL to the service root.

/** Relative path from a URL back to the service root ('./' at the top, '../' one level down, ...). */
export function rootFor (url: string): string {
  const depth = url.split('?')[0].split('/').length - 2
  return depth <= 0 ? './' : '../'.repeat(depth)
}
