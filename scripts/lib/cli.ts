// The command-line contract every job shares (SPEC section 8): options with an environment variable each,
// --help listing both, validation before any work, exit 0 / 1 (bad input) / 2 (usage), one clear message.

import { statSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { campusJobEnvironment } from '../../src/campuses/config.ts'
import { ConfigError } from '../../src/config.ts'
import { BadInput } from '../../src/jobs/errors.ts'

export const EXIT_OK = 0
export const EXIT_BAD_INPUT = 1
export const EXIT_USAGE = 2

export class UsageError extends Error {
  readonly kind = 'UsageError'
}

export interface OptionSpec {
  /** long option name without dashes */
  name: string
  env: string
  description: string
  /** shown in --help and used when neither the option nor the variable is set */
  default?: string
  required?: boolean
  /** a flag without a value ("yes" when given) */
  flag?: boolean
  /** checks and normalises the raw text; throws UsageError with a reason */
  parse?: (value: string) => string
}

export interface CommandSpec {
  name: string
  summary: string
  options: OptionSpec[]
  /** extra lines for --help (examples, notes) */
  epilog?: string
}

export function helpText (spec: CommandSpec): string {
  const rows = spec.options.map(o => {
    const left = `--${o.name}${o.flag === true ? '' : ' VALUE'}`
    const tail = [`env ${o.env}`, o.required === true ? 'required' : o.default !== undefined && o.default !== '' ? `default ${o.default}` : ''].filter(s => s !== '').join('; ')
    return `  ${left.padEnd(26)} ${o.description} (${tail})`
  })
  return [`Usage: npm run ${spec.name} -- [options]`, '', spec.summary, '', 'Options (each may also be set by its environment variable; the option wins):', ...rows,
    `  ${'--help'.padEnd(26)} this text`, '', 'Exit codes: 0 done, 1 bad input (the message names the file and the record or line), 2 usage error.',
    `  ${'--campus ID'.padEnd(26)} with CAMPUSES_FILE (required then): this campus's settings, ledger and files (env CAMPUS)`,
    ...(spec.epilog !== undefined ? ['', spec.epilog] : []), ''].join('\n')
}

/** Reads argv then the environment; returns the validated values by option name, or throws UsageError. */
export function parseOptions (spec: CommandSpec, argv: string[], env: Record<string, string | undefined>): Record<string, string> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries(spec.options.map(o => [o.name, { type: o.flag === true ? 'boolean' as const : 'string' as const }]))
    })
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0])
  }
  const values: Record<string, string> = {}
  for (const option of spec.options) {
    const fromArg = (parsed.values as Record<string, string | boolean | undefined>)[option.name]
    const fromEnv = env[option.env]
    let raw = fromArg === undefined ? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : option.default ?? '') : String(fromArg === true ? 'yes' : fromArg)
    if (option.flag === true) raw = /^(yes|true|1|on)$/i.test(raw) ? 'yes' : ''
    const origin = fromArg !== undefined ? `--${option.name}` : fromEnv !== undefined && fromEnv !== '' ? option.env : `--${option.name}`
    if (raw === '' && option.required === true) throw new UsageError(`${origin} is required (or set ${option.env}): ${option.description}`)
    try {
      values[option.name] = raw === '' || option.parse === undefined ? raw : option.parse(raw)
    } catch (error) {
      throw new UsageError(`${origin}: ${(error as Error).message}`)
    }
  }
  return values
}

/**
 * --campus ID (or CAMPUS), taken off the arguments: with CAMPUSES_FILE the job reads that campus's settings,
 * ledger and holds snapshot (src/campuses/config.ts); without it, the environment as it is.
 */
export function campusArguments (argv: string[], env: Record<string, string | undefined>): { argv: string[], env: Record<string, string | undefined>, campus: string } {
  const rest: string[] = []
  let campus = env.CAMPUS ?? ''
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--campus') {
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new UsageError('--campus needs a campus id')
      campus = argv[++i]
    } else if (arg.startsWith('--campus=')) {
      campus = arg.slice('--campus='.length)
    } else {
      rest.push(arg)
    }
  }
  return { argv: rest, env: campusJobEnvironment(env, campus), campus }
}

/** Runs a command: --help, options, the work; maps errors to exit codes and one line on stderr. */
export async function runCommand (spec: CommandSpec, work: (options: Record<string, string>, env: Record<string, string | undefined>) => Promise<void>): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(helpText(spec))
    return
  }
  let options: Record<string, string>
  let env: Record<string, string | undefined>
  try {
    const campus = campusArguments(process.argv.slice(2), process.env)
    env = campus.env
    options = parseOptions(spec, campus.argv, env)
  } catch (error) {
    process.stderr.write(`${spec.name}: ${(error as Error).message}\nTry: npm run ${spec.name} -- --help\n`)
    process.exitCode = EXIT_USAGE
    return
  }
  try {
    await work(options, env)
    process.exitCode = EXIT_OK
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      process.stderr.write(`${spec.name}: ${error.message}\n`)
      process.exitCode = EXIT_USAGE
    } else if (error instanceof BadInput) {
      process.stderr.write(`${spec.name}: bad input: ${error.message}\nNothing was written.\n`)
      process.exitCode = EXIT_BAD_INPUT
    } else {
      // Anything else (Alma down, disk full) is not the operator's input; still exit 1 so cron reports it.
      process.stderr.write(`${spec.name}: failed: ${(error as Error)?.message ?? String(error)}\nNothing was written.\n`)
      process.exitCode = EXIT_BAD_INPUT
    }
  }
}

// Validators shared by the commands.

export function isoDate (value: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) throw new UsageError(`"${value}" is not a date YYYY-MM-DD`)
  const date = new Date(`${value}T00:00:00Z`)
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value) throw new UsageError(`"${value}" is not a calendar date`)
  return value
}

export function oneOf (...choices: string[]): (value: string) => string {
  return (value) => {
    if (!choices.includes(value)) throw new UsageError(`"${value}" must be one of ${choices.join(', ')}`)
    return value
  }
}

export function wholeNumber (min: number, max: number): (value: string) => string {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`"${value}" must be a whole number from ${min} to ${max}`)
    return value
  }
}

export function list (value: string): string[] {
  return value.split(',').map(s => s.trim()).filter(s => s !== '')
}

export function maxLength (n: number, what: string): (value: string) => string {
  return (value) => {
    if (value.length > n) throw new UsageError(`"${value}" is longer than ${n} characters (${what})`)
    return value
  }
}

/** A file name template: no directories, may use {date}. */
export function fileTemplate (value: string): string {
  if (/[/\\]/.test(value) || value.startsWith('.')) throw new UsageError(`"${value}" must be a plain file name (it goes in the output directory)`)
  return value
}

/** An existing, readable file given on the command line. */
export function existingFile (value: string): string {
  try {
    if (!statSync(value).isFile()) throw new UsageError(`"${value}" is not a file`)
  } catch (error) {
    if (error instanceof UsageError) throw error
    throw new UsageError(`cannot read "${value}" (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  return value
}
