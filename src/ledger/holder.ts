// Who this process is in the ledger's records: the holder of a posting's lease, the process a share of the Alma
// budget was last granted to. Host, process and a random part, so a restarted process with the same pid is
// someone else.

import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'

export function processHolder (): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
}
