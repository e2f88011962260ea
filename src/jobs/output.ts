// What a job hands to its caller to write: named files of CSV rows or text. The caller (scripts/lib/atomic.ts)
// writes them all-or-nothing; the jobs stay free of file-system policy and are easy to test.

export interface OutputFile {
  path: string
  /** CSV rows, the header first */
  csv?: Iterable<string[]>
  /** raw text chunks (fixed-width files) */
  text?: Iterable<string>
}

export type WriteFiles = (files: OutputFile[]) => Promise<void>
