// The children the tests start (service, jobs, sandboxes) load TypeScript as the test process does
// (test/support/ts-child.ts), so tap's coverage of them merges with the test process's.

import t from 'tap'
import { npmScriptArgs, tsNodeArgs, tsNodeEnv } from './support/ts-child.ts'

const TS = 'file:///app/node_modules/@tapjs/typescript/dist/esm/import.mjs'

t.test('under tap: tap\'s TypeScript loader and source maps, not tsx, mocks or the coverage recorder', async t => {
  t.same(tsNodeArgs([`--import=${TS}`, '--import=file:///app/node_modules/@tapjs/mock/dist/esm/import.mjs', '--enable-source-maps', '--import=file:///app/node_modules/@tapjs/processinfo/dist/esm/import.mjs']), [`--import=${TS}`, '--enable-source-maps'])
  t.same(tsNodeArgs(['--loader', '@tapjs/typescript/esm']), ['--loader=@tapjs/typescript/esm'], 'a loader given as two words')
})

t.test('this process\'s: tap\'s loader under tap, tsx under `node --import tsx`', async t => {
  const here = tsNodeArgs()
  if (process.execArgv.some(flag => flag.includes('@tapjs/typescript'))) {
    t.ok(here.some(flag => flag.includes('@tapjs/typescript')), here.join(' '))
    t.notOk(here.includes('tsx'))
  } else t.same(here, ['--import', 'tsx'])
})

t.test('with plain node: --import tsx, as the npm scripts run', async t => {
  t.same(tsNodeArgs([]), ['--import', 'tsx'])
  t.same(tsNodeArgs(['--expose-gc', '--import=tsx']), ['--import', 'tsx'])
})

t.test('the loader\'s variables, for a child whose environment is built from scratch', async t => {
  t.same(tsNodeEnv({ TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: '/app/tsconfig.json', PATH: '/bin' }), { TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: '/app/tsconfig.json' })
  t.same(tsNodeEnv({}), {})
})

t.test('npm run demo: package.json\'s command with this process\'s loader in place of tsx', async t => {
  t.same(npmScriptArgs('demo'), [...tsNodeArgs(), 'scripts/demo.ts'])
  t.throws(() => npmScriptArgs('build'), /not a plain node command/)
  t.throws(() => npmScriptArgs('no-such-script'), /not a plain node command/)
})
