// Progress for a job: a bar when stderr is a terminal, otherwise a plain log line every few seconds (cron mail
// and journald keep those; they would be garbage with a bar's carriage returns).

import cliProgress from 'cli-progress'
import type { Progress } from '../../src/jobs/progress.ts'

export function createProgress (command: string, stream: NodeJS.WriteStream = process.stderr, everyMs = 5000): Progress {
  const stamp = (): string => new Date().toISOString()
  const line = (message: string): void => { stream.write(`${stamp()} ${command}: ${message}\n`) }
  if (stream.isTTY === true) {
    let bar: cliProgress.SingleBar | undefined
    return {
      start (total, unit) {
        bar = new cliProgress.SingleBar({ stream, format: `${command} [{bar}] {percentage}% {value}/{total} ${unit} eta {eta_formatted}`, hideCursor: true }, cliProgress.Presets.shades_classic)
        bar.start(total, 0)
      },
      update (done) { bar?.update(done) },
      stop () { bar?.stop(); bar = undefined },
      log (message) {
        if (bar !== undefined) stream.write('\n')
        line(message)
      }
    }
  }
  let total = 0
  let unit = ''
  let last = 0
  let current = 0
  return {
    start (t, u) { total = t; unit = u; last = Date.now(); line(`started: ${t} ${u} to read`) },
    update (done) {
      current = done
      if (Date.now() - last >= everyMs) {
        last = Date.now()
        line(`${done}/${total} ${unit} (${total > 0 ? Math.floor(done * 100 / total) : 0}%)`)
      }
    },
    stop () { if (total > 0) line(`read ${current}/${total} ${unit}`) },
    log: line
  }
}
