// Atomic output: every file of a run is written to a temporary name in its target directory, and only when all
// are complete are they renamed into place. A reader never sees half a file, and a failed run leaves none.

import { stringify } from 'csv-stringify'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import type { OutputFile } from '../../src/jobs/output.ts'

function tempName (path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.tmp`)
}

async function writeOne (file: OutputFile, temp: string): Promise<void> {
  await mkdir(dirname(file.path), { recursive: true })
  const out = createWriteStream(temp, { flags: 'wx' })
  await once(out, 'open')
  if (file.csv !== undefined) {
    // CRLF and quoting only where needed: what Excel and PeopleSoft's file loaders both read.
    await pipeline(Readable.from(file.csv, { objectMode: true }), stringify({ record_delimiter: 'windows' }), out)
  } else {
    await pipeline(Readable.from(file.text ?? [], { objectMode: false }), out)
  }
}

/** Writes all files or none: temporaries first, then renames in order; removes the temporaries on failure. */
export async function writeFilesAtomically (files: OutputFile[]): Promise<void> {
  const temps = files.map(f => tempName(f.path))
  try {
    for (let i = 0; i < files.length; i++) await writeOne(files[i], temps[i])
    for (let i = 0; i < files.length; i++) await rename(temps[i], files[i].path)
  } catch (error) {
    await Promise.all(temps.map(async t => { await rm(t, { force: true }) }))
    throw error
  }
}
