// The Alma sandbox in a process of its own, so a service under load does not share its event loop with its
// own fake Alma: the call record's times are when the calls reached Alma, as they would be at the real one.
// The bench and the rate-limit test drive it over IPC: add patrons, set faults, read and reset the call record.

import { AlmaSandbox, type AlmaFaults } from './alma.ts'
import { SANDBOX_API_KEY } from './stack.ts'
import type { SeedUser } from './seed.ts'

export interface CallStats {
  calls: number
  maxInAnySecond: number
  byStatus: Record<string, number>
  byUser: Record<string, number>
  firstStart: number
  lastEnd: number
}

const alma = new AlmaSandbox({ apiKey: SANDBOX_API_KEY })

function stats (): CallStats {
  const byStatus: Record<string, number> = {}
  const byUser: Record<string, number> = {}
  let firstStart = Infinity
  let lastEnd = 0
  for (const call of alma.calls) {
    byStatus[call.status] = (byStatus[call.status] ?? 0) + 1
    const user = /^\/almaws\/v1\/users\/([^/]+)/.exec(call.path)?.[1]
    if (user !== undefined) byUser[decodeURIComponent(user)] = (byUser[decodeURIComponent(user)] ?? 0) + 1
    firstStart = Math.min(firstStart, call.start)
    lastEnd = Math.max(lastEnd, call.end)
  }
  return { calls: alma.calls.length, maxInAnySecond: alma.maxCallsInAnySecond(), byStatus, byUser, firstStart, lastEnd }
}

const commands: Record<string, (args: any) => unknown> = {
  addUsers: (users: SeedUser[]) => { for (const user of users) alma.addUser(user); return alma.users.size },
  faults: (faults: Partial<AlmaFaults>) => { Object.assign(alma.faults, faults); return alma.faults },
  resetCalls: () => { alma.calls.length = 0; return 0 },
  stats: () => stats(),
  /** Every call recorded since the last reset: when it was read (start) and answered (end), its status and path. */
  calls: () => alma.calls.map(c => ({ start: c.start, end: c.end, status: c.status, method: c.method, path: c.path })),
  /** The Alma side of "paid exactly once": the fees of the users whose primary id starts with this prefix, by how many payments they carry. */
  payments: (prefix: string) => {
    const out = { fees: 0, paidOnce: 0, paidMoreThanOnce: 0, unpaid: 0 }
    for (const user of alma.users.values()) {
      if (!user.primaryId.startsWith(prefix)) continue
      for (const fee of user.fees) {
        const payments = fee.transactions.filter(t => t.type === 'PAYMENT').length
        out.fees++
        if (payments === 0) out.unpaid++
        else if (payments === 1) out.paidOnce++
        else out.paidMoreThanOnce++
      }
    }
    return out
  },
  memory: () => process.memoryUsage()
}

process.on('message', (message: { id: number, command: string, args: unknown }) => {
  let reply: { id: number, result?: unknown, error?: string }
  try {
    reply = { id: message.id, result: commands[message.command](message.args) }
  } catch (error) {
    reply = { id: message.id, error: (error as Error).message }
  }
  process.send?.(reply)
})
process.on('disconnect', () => { void alma.close().finally(() => process.exit(0)) })

const url = await alma.start(Number(process.env.PORT ?? 0))
process.send?.({ ready: url })
