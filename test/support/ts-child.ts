// How a test starts a TypeScript child (the service, a batch job, the Alma sandbox): with the TypeScript loader
// this test process runs under. Under tap that is @tapjs/typescript (ts-node, transpile only), not tsx: tap
// records the children's coverage too, and c8 merges each file's entries from every process keeping the first
// one's source map. tsx maps src/app.ts to 3 generated lines where ts-node's map gives 135, so a file whose
// first entry came from a tsx child collapsed to a statement or two and the summary moved from run to run
// (303 to 16,634 statements). With one loader everywhere every entry has the same map and they merge.
// Run with plain node (no tap loader in process.execArgv), children get `--import tsx`, as npm scripts do.

import { readFileSync } from 'node:fs'

/** one --import / --loader flag, as `--flag=value`, from execArgv's `--flag=value` or `--flag value` */
function loaderFlags (execArgv: readonly string[]): string[] {
  const flags: string[] = []
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i] as string
    const joined = /^--(import|loader|experimental-loader)=/.exec(arg)
    if (joined !== null) flags.push(arg)
    else if (/^--(import|loader|experimental-loader)$/.test(arg) && i + 1 < execArgv.length) flags.push(`${arg}=${execArgv[++i] as string}`)
  }
  return flags
}

const TAP_TYPESCRIPT = /[\\/]@tapjs[\\/]typescript[\\/]|^--[a-z-]+=@tapjs\/typescript\b/

/**
 * The node flags that load TypeScript as this process does: tap's TypeScript loader (and --enable-source-maps,
 * which the coverage's source maps need) under tap, `--import tsx` otherwise. tap's coverage recorder
 * (@tapjs/processinfo) reaches the child through NODE_OPTIONS on its own, and @tapjs/mock is for test files.
 */
export function tsNodeArgs (execArgv: readonly string[] = process.execArgv): string[] {
  const tap = loaderFlags(execArgv).filter(flag => TAP_TYPESCRIPT.test(flag))
  if (tap.length === 0) return ['--import', 'tsx']
  return execArgv.includes('--enable-source-maps') ? [...tap, '--enable-source-maps'] : tap
}

/**
 * The variables tap's TypeScript loader reads (transpile only, which tsconfig, strip-only mode), for a child
 * whose environment is built from scratch rather than from process.env; empty when not under tap.
 */
export function tsNodeEnv (env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of ['TS_NODE_TRANSPILE_ONLY', 'TS_NODE_PROJECT', 'TAP_TYPE_STRIP_ONLY']) {
    const value = env[name]
    if (value !== undefined) out[name] = value
  }
  return out
}

/**
 * The arguments for process.execPath that run package.json's `npm run <name>` (`node [flags] file [args]`) with
 * its `--import tsx` swapped for tsNodeArgs(): the script's own file and flags, loaded as this process loads
 * TypeScript (`npm run` itself would start it with tsx, whose coverage does not merge with tap's). Throws if the
 * script is anything but a plain node command.
 */
export function npmScriptArgs (name: string): string[] {
  const scripts = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {}
  const script = scripts[name] ?? ''
  const words = script.trim().split(/\s+/)
  if (words[0] !== 'node' || words.length < 2 || /[|&;<>$`'"\\()*?]/.test(script)) throw new Error(`npm run ${name} is not a plain node command: ${JSON.stringify(script)}`)
  const args = words.slice(1)
  const tsx = args.findIndex((word, i) => word === '--import' && args[i + 1] === 'tsx')
  if (tsx !== -1) args.splice(tsx, 2, ...tsNodeArgs())
  return args
}
