// How a job reports its progress, without knowing who watches: the command line shows a bar on a terminal and
// log lines otherwise (scripts/lib/progress.ts); tests and library callers pass SILENT.

/** A job's progress, reported to whatever the caller shows (a bar on a terminal, log lines otherwise). */
export interface Progress {
  start: (total: number, unit: string) => void
  update: (done: number) => void
  stop: () => void
  log: (message: string) => void
}

export const SILENT: Progress = { start () {}, update () {}, stop () {}, log () {} }
