// WEB_CONCURRENCY service processes on one machine (SPEC 11), so every core is used. The primary process only
// supervises: it forks that many workers (each the whole service: routes, posting worker, its own ledger
// connection; node:cluster shares the listening port among them), forks a new one when one dies unexpectedly,
// and on SIGTERM/SIGINT forwards the signal to every worker and exits once they have all stopped gracefully.
// What must hold across processes (one posting at a time, the Alma budget) is held in the ledger, not here.

import cluster, { type Worker } from 'node:cluster'
import type { Logger } from 'pino'

/** A worker that dies this soon after starting is restarted after a pause, so a broken start cannot spin. */
const QUICK_DEATH_MS = 5000
const RESTART_PAUSE_MS = 1000

export async function runPrimary (processes: number, logger: Logger): Promise<void> {
  let stopping = false
  const started = new Map<number, number>()

  const fork = (): void => {
    const worker = cluster.fork()
    started.set(worker.id, Date.now())
  }

  cluster.on('exit', (worker: Worker, code, signal) => {
    const lived = Date.now() - (started.get(worker.id) ?? 0)
    started.delete(worker.id)
    if (stopping) return
    logger.error({ event: 'cluster.worker_died', pid: worker.process.pid, code, signal },
      `service process ${worker.process.pid ?? '?'} died (${signal ?? `exit ${code ?? '?'}`}); starting another`)
    if (lived < QUICK_DEATH_MS) setTimeout(fork, RESTART_PAUSE_MS)
    else fork()
  })

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return
    stopping = true
    logger.info({ event: 'cluster.stopping', signal }, `stopping (${signal}): every service process finishes its requests and postings`)
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal)
    const check = setInterval(() => {
      if (Object.keys(cluster.workers ?? {}).length > 0) return
      clearInterval(check)
      logger.info({ event: 'cluster.stopped' }, 'every service process has stopped')
      process.exit(0)
    }, 100)
  }
  process.on('SIGTERM', () => { stop('SIGTERM') })
  process.on('SIGINT', () => { stop('SIGINT') })

  for (let i = 0; i < processes; i++) fork()
  logger.info({ event: 'cluster.started', processes, pid: process.pid }, `started ${processes} service processes (WEB_CONCURRENCY)`)
}
