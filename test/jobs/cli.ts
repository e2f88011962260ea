// Test helpers for the batch jobs: run a script as cron would (a child process with only the variables given,
// none of the web service's), and a temporary directory per test.

import { parse } from 'csv-parse/sync'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Test } from 'tap'
import { tsNodeArgs, tsNodeEnv } from '../support/ts-child.ts'

const ROOT = resolve(import.meta.dirname, '..', '..')

export interface Run {
  code: number
  stdout: string
  stderr: string
}

export async function runScript (script: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return await new Promise(resolve => {
    execFile(process.execPath, [...tsNodeArgs(), join(ROOT, 'scripts', script), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TZ: 'UTC', ...tsNodeEnv(), ...env },
      maxBuffer: 16 * 1024 * 1024
    }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr })
    })
  })
}

export function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'alma-cashnet-jobs-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

/** Every file under a directory with its content, to show that a failed run changed nothing. */
export function contents (dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  let names: string[] = []
  try {
    names = readdirSync(dir)
  } catch {
    return out
  }
  for (const name of names.sort()) out[name] = readFileSync(join(dir, name), 'utf8')
  return out
}

/** A CSV file's rows as objects keyed by the header. */
export function csvFile (path: string): Array<Record<string, string>> {
  return parse(readFileSync(path, 'utf8'), { columns: true }) as Array<Record<string, string>>
}
