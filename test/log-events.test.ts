// The event catalogue an admin reads is the one the code emits: every `event: '<name>'` literal in src/ has a
// row in the catalogue table, and every row names an event the code still emits. The table is read from the
// README's "## Log events" section when there is one, else from docs/logging.md.

import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const EVENT_NAME = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.isFile() && entry.name.endsWith('.ts') ? [path] : []
  })
}

/** event name → the files that emit it; and any event whose name is computed, which the catalogue cannot check. */
export function emittedEvents (srcDir: string): { events: Map<string, string[]>, computed: string[] } {
  const events = new Map<string, string[]>()
  const computed: string[] = []
  for (const file of sourceFiles(srcDir)) {
    const text = readFileSync(file, 'utf8')
    const where = relative(ROOT, file)
    for (const match of text.matchAll(/\bevent\s*:\s*(['"])([^'"\n]*)\1/g)) {
      events.set(match[2], [...(events.get(match[2]) ?? []), where])
    }
    for (const match of text.matchAll(/\bevent\s*:\s*`/g)) {
      computed.push(`${where}:${text.slice(0, match.index).split('\n').length}`)
    }
  }
  return { events, computed }
}

/** The first column of the table under "## Log events", backticks removed. */
export function catalogueEvents (markdown: string): { events: string[], source: string } {
  const lines = markdown.split('\n')
  const start = lines.findIndex(line => /^##\s+Log events\s*$/i.test(line))
  if (start < 0) return { events: [], source: 'no "## Log events" section' }
  const section: string[] = []
  for (const line of lines.slice(start + 1)) {
    if (/^##?\s/.test(line)) break
    section.push(line)
  }
  const rows = section.filter(line => line.trim().startsWith('|'))
  const events = rows.slice(2) // the header row and the |---| row
    .map(row => row.trim().split('|')[1]?.trim().replace(/`/g, '') ?? '')
  return { events, source: `${rows.length} table rows` }
}

function catalogueFile (): { path: string, text: string } {
  const readme = join(ROOT, 'README.md')
  if (existsSync(readme)) {
    const text = readFileSync(readme, 'utf8')
    if (/^##\s+Log events\s*$/im.test(text)) return { path: 'README.md', text }
  }
  return { path: 'docs/logging.md', text: readFileSync(join(ROOT, 'docs/logging.md'), 'utf8') }
}

t.test('the event catalogue lists exactly the events the code emits', async t => {
  const { events: emitted, computed } = emittedEvents(join(ROOT, 'src'))
  const catalogue = catalogueFile()
  const { events: listed, source } = catalogueEvents(catalogue.text)
  t.comment(`catalogue read from ${catalogue.path} (${source}); ${emitted.size} events in src/`)

  t.ok(emitted.size >= 20, 'the scan of src/ found the events (sanity check of the scanner)')
  t.ok(listed.length > 0, `${catalogue.path} has a "## Log events" table`)
  t.same(computed, [], 'every event name in src/ is a literal, so it can be checked (no `event: \\`...\\`` templates)')

  const badNames = [...emitted.keys()].filter(name => !EVENT_NAME.test(name))
  t.same(badNames, [], 'event names look like area.what_happened')
  const duplicates = listed.filter((name, i) => listed.indexOf(name) !== i)
  t.same(duplicates, [], 'each event is listed once')

  const missing = [...emitted.keys()].filter(name => !listed.includes(name)).sort()
  t.same(missing, [], `every emitted event has a row in ${catalogue.path}` +
    (missing.length > 0 ? `: add ${missing.map(name => `${name} (${emitted.get(name)?.join(', ')})`).join('; ')}` : ''))
  const stale = listed.filter(name => !emitted.has(name)).sort()
  t.same(stale, [], `every row in ${catalogue.path} is an event the code emits` + (stale.length > 0 ? `: remove or fix ${stale.join(', ')}` : ''))
})

t.test('the scanner and the table reader do what the catalogue test relies on', async t => {
  const table = [
    '# x', '## Log events', 'intro', '| event | level |', '|---|---|', '| `a.b` | info |', '| `c.d_e` | warn |', '', 'text after', '## Next', '| `not.this` | x |'
  ].join('\n')
  t.same(catalogueEvents(table).events, ['a.b', 'c.d_e'], 'only the first column of the Log events table, until the next heading')
  t.same(catalogueEvents('# nothing here').events, [])
})
