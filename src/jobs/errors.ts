// Errors the batch jobs raise as values. BadInput is a problem in a file or a report the job was given (exit 1):
// its message always names the source and, where there is one, the record or line.

export class BadInput extends Error {
  readonly kind = 'BadInput'
  constructor (readonly source: string, readonly where: string, reason: string) {
    super(`${source}${where !== '' ? `: ${where}` : ''}: ${reason}`)
  }
}

/** A job's progress, reported to whatever the caller shows (a bar on a terminal, log lines otherwise). */
export interface Progress {
  start: (total: number, unit: string) => void
  update: (done: number) => void
  stop: () => void
  log: (message: string) => void
}

export const SILENT: Progress = { start () {}, update () {}, stop () {}, log () {} }
