// Errors the batch jobs raise as values. BadInput is a problem in a file or a report the job was given (exit 1):
// its message always names the source and, where there is one, the record or line.

export class BadInput extends Error {
  readonly kind = 'BadInput'
  constructor (readonly source: string, readonly where: string, reason: string) {
    super(`${source}${where !== '' ? `: ${where}` : ''}: ${reason}`)
  }
}
