// Atomic and durable output: every file of a run is written to a temporary name in its target directory and
// fsynced, and only when all are complete are they renamed into place; then each target directory is fsynced, so
// that the renames themselves survive a crash or power cut. A reader never sees half a file, a failed run leaves
// none, and a run that said it succeeded does not come back after a power cut as empty or missing files (an empty
// holds snapshot would mean holds never released).

import { stringify } from 'csv-stringify'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import type { OutputFile } from '../../src/jobs/output.ts'

/** The file-system operations the writer uses, in the order it uses them; a test passes its own to watch the order. */
export interface AtomicFs {
  mkdir: (dir: string) => Promise<void>
  /** writes a new file (never over an existing one) */
  writeFile: (path: string, file: OutputFile) => Promise<void>
  /** fsync of a file or a directory */
  fsync: (path: string) => Promise<void>
  rename: (from: string, to: string) => Promise<void>
  remove: (path: string) => Promise<void>
}

export const NODE_FS: AtomicFs = {
  mkdir: async dir => { await mkdir(dir, { recursive: true }) },
  writeFile: async (path, file) => {
    const out = createWriteStream(path, { flags: 'wx' })
    await once(out, 'open')
    if (file.csv !== undefined) {
      // CRLF and quoting only where needed: what Excel and PeopleSoft's file loaders both read.
      await pipeline(Readable.from(file.csv, { objectMode: true }), stringify({ record_delimiter: 'windows' }), out)
    } else {
      await pipeline(Readable.from(file.text ?? [], { objectMode: false }), out)
    }
  },
  fsync: async path => {
    // Read-only is enough: fsync flushes the inode whichever descriptor asks (and a directory opens no other way).
    const handle = await open(path, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  },
  rename,
  remove: async path => { await rm(path, { force: true }) }
}

function tempName (path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.tmp`)
}

/**
 * Writes all files or none: temporaries first (each fsynced), then renames in order, then an fsync of each target
 * directory; removes the temporaries on failure.
 */
export async function writeFilesAtomically (files: OutputFile[], fs: AtomicFs = NODE_FS): Promise<void> {
  const temps = files.map(f => tempName(f.path))
  try {
    for (let i = 0; i < files.length; i++) {
      await fs.mkdir(dirname(files[i].path))
      await fs.writeFile(temps[i], files[i])
      await fs.fsync(temps[i])
    }
    for (let i = 0; i < files.length; i++) await fs.rename(temps[i], files[i].path)
  } catch (error) {
    await Promise.all(temps.map(async t => { await fs.remove(t) }))
    throw error
  }
  for (const dir of new Set(files.map(f => dirname(f.path)))) await fs.fsync(dir)
}
