// The documentation a library gets when it clones the repository: every setting the code reads is in
// docs/configuration.md, every route is in the README, and every link and file path in the documents
// resolves inside the repository (nothing points at files that are not shipped).

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'

const ROOT = resolve(import.meta.dirname, '..')

function filesUnder (dir: string, ending: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...filesUnder(path, ending))
    else if (entry.name.endsWith(ending)) out.push(path)
  }
  return out.sort()
}

const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8')

/** The keys of the env-schema in src/config.ts: the lines `NAME: { type: …` inside `properties: {`. */
export function schemaVariables (source: string): string[] {
  const start = source.indexOf('properties: {')
  if (start < 0) return []
  const names: string[] = []
  for (const match of source.slice(start).matchAll(/^\s+([A-Z][A-Z0-9_]*)\s*:\s*\{\s*type\s*:/gm)) names.push(match[1])
  return names
}

/** Environment variables a job or script reads: option specs (`env: 'NAME'`) and direct reads of the environment. */
export function jobVariables (source: string): string[] {
  const patterns = [
    /\benv\s*:\s*'([A-Z][A-Z0-9_]*)'/g, // { name: 'out', env: 'HOLDS_OUT_DIR', … }
    /process\.env\.([A-Z][A-Z0-9_]*)/g,
    /process\.env\[\s*'([A-Z][A-Z0-9_]*)'\s*\]/g,
    /\benv\.([A-Z][A-Z0-9_]*)/g, // readEnv(env): env.DATABASE_PATH
    /\benv\[\s*'([A-Z][A-Z0-9_]*)'\s*\]/g,
    /\(\s*env\s*,\s*'([A-Z][A-Z0-9_]*)'/g // integer(env, 'ALMA_RATE_LIMIT', …)
  ]
  const names = new Set<string>()
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) names.add(match[1])
  return [...names]
}

t.test('every variable the service\'s schema and the jobs read is in docs/configuration.md', async t => {
  t.ok(existsSync(join(ROOT, 'docs/configuration.md')), 'docs/configuration.md exists')
  const doc = existsSync(join(ROOT, 'docs/configuration.md')) ? read('docs/configuration.md') : ''
  const documented = new Set([...doc.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map(m => m[1]))

  const service = schemaVariables(read('src/config.ts'))
  t.ok(service.includes('PUBLIC_URL') && service.includes('COOKIE_SECRET') && service.length >= 40, `the schema was read (${service.length} variables)`)
  for (const name of service) t.ok(documented.has(name), `${name} (src/config.ts) is documented`)

  const jobs = new Map<string, string[]>()
  for (const file of [...filesUnder('scripts', '.ts'), ...filesUnder('src/jobs', '.ts')]) {
    for (const name of jobVariables(read(file))) jobs.set(name, [...(jobs.get(name) ?? []), file])
  }
  t.ok(jobs.has('HOLDS_OUT_DIR') && jobs.has('RECONCILE_SINCE') && jobs.has('DEMO_PORT'), `the jobs were read (${jobs.size} variables)`)
  for (const [name, files] of jobs) t.ok(documented.has(name), `${name} (${files.join(', ')}) is documented`)
})

t.test('the variable finder finds what it should and nothing else', async t => {
  t.same(schemaVariables("const schema = { properties: {\n    PORT: { type: 'integer' },\n    HOST: { type: 'string' }\n  } }"), ['PORT', 'HOST'])
  t.same(jobVariables("{ name: 'out', env: 'X_OUT' }, process.env.X_LEVEL, env.X_PATH, integer(env, 'X_RATE', 5), env: { NOT_READ: '1' }").sort(),
    ['X_LEVEL', 'X_OUT', 'X_PATH', 'X_RATE'])
})

/** The documents a library reads. */
function documents (): string[] {
  return ['README.md', 'SECURITY.md', ...filesUnder('docs', '.md'), ...readdirSync(join(ROOT, 'ezproxy-config')).filter(n => n.endsWith('.md')).map(n => join('ezproxy-config', n))]
    .filter(path => existsSync(join(ROOT, path)))
}

const inside = (path: string): boolean => {
  const rel = relative(ROOT, path)
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith('/')
}

t.test('every link and repository path in the documents resolves inside the repository', async t => {
  const docs = documents()
  t.ok(docs.includes('README.md') && docs.includes('docs/configuration.md') && docs.includes('ezproxy-config/README.md'))
  for (const doc of docs) {
    const text = read(doc)
    // Markdown links and images, relative to the document.
    for (const match of text.matchAll(/!?\[[^\]]*\]\(\s*([^)\s]+)(?:\s+"[^"]*")?\s*\)/g)) {
      const target = match[1]
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue
      const path = resolve(ROOT, dirname(doc), decodeURIComponent(target.split('#')[0]))
      t.ok(inside(path) && existsSync(path), `${doc}: link ${target} resolves to a file in the repository`)
    }
    // Repository paths written as code (`docs/logging.md`, `config/gl-map.example.json`), relative to the root.
    for (const match of text.matchAll(/`((?:\.\.\/|\.\/)*(?:src|docs|config|scripts|test|ezproxy-config|bench|shared)\/[^`\s]*)`/g)) {
      const written = match[1]
      if (/[{}<>*]/.test(written)) continue // a template, not a file
      const path = resolve(ROOT, written)
      t.ok(inside(path) && existsSync(path), `${doc}: ${written} is in the repository`)
    }
    for (const [pattern, what] of [[/\.\.\/shared/, '../shared'], [/\bSPEC\.md\b/, 'SPEC.md'], [/\bSTYLE\.md\b/, 'STYLE.md'], [/(^|[\s`(/])reference\//m, 'reference/'], [/\bSPEC section\b/, 'SPEC section']] as const) {
      t.notOk(pattern.test(text), `${doc} does not point at ${what}, which is not in the repository`)
    }
  }
  t.ok(statSync(join(ROOT, 'docs/configuration.md')).isFile())
  t.match(read('README.md'), '`docs/configuration.md`', 'the README points at the configuration reference')
})

/** METHOD path of every route the web service registers. */
export function registeredRoutes (source: string): string[] {
  return [...source.matchAll(/\bfastify\.(get|post|put|patch|delete)\s*(?:<[^(]*>)?\(\s*'([^']+)'/g)].map(m => `${m[1].toUpperCase()} ${m[2]}`)
}

t.test('the README lists every route the service registers', async t => {
  const routes = filesUnder('src/web', '.ts').flatMap(file => registeredRoutes(read(file)))
  t.ok(routes.includes('POST /cashnet/postback') && routes.includes('GET /admin/payments/:id'), `routes were read (${routes.length})`)
  const readme = read('README.md')
  const section = readme.slice(readme.indexOf('## Routes'), readme.indexOf('\n## ', readme.indexOf('## Routes') + 1))
  t.ok(readme.includes('## Routes'), 'the README has a Routes section')
  for (const route of routes) t.ok(section.includes(`\`${route}\``), `${route} is in the README's Routes table`)
})

t.test('docs/logging.md describes the posting\'s alma.call lines as they are logged', async t => {
  const { build, Browser, checkoutIdFrom } = await import('./helper.ts')
  const stack = await build(t)
  const alice = new Browser(stack).login('alice')
  const { action, fields } = await alice.checkout()
  await alice.payOnCashnet(action, fields)
  await stack.app.worker.idle()
  const id = checkoutIdFrom(fields)
  const checkout = await stack.app.ledger.getCheckout(id)
  t.equal(checkout?.state, 'POSTED')
  const posting = stack.logLines().filter(l => l.event === 'alma.call' && l.checkout === id)
  t.ok(posting.some(l => l.alma.method === 'POST' && /^users\/[^/]+\/fees\/[^/]+$/.test(l.alma.path)), 'one POST users/<primary id>/fees/<fee id> per fee')
  t.ok(posting.some(l => l.alma.method === 'GET' && /^users\/[^/]+\/fees$/.test(l.alma.path)), 'the fee list read first')
  for (const line of posting) {
    t.match(line, { component: 'worker', checkout: id, tx: checkout?.tx, user: 'alice', alma: { method: String, path: String, status: Number, ms: Number } })
    t.notOk('reqId' in line, 'outside any request')
  }
  const doc = read('docs/logging.md')
  t.match(doc, 'each with `component` `worker`, `checkout`, `tx` and `user`')
  t.notMatch(doc, /alma\.call` lines have no `reqId`, `user` or `checkout`/, 'the old, wrong description is gone')
})
