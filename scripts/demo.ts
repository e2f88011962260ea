// npm run demo: the Alma and CashNet sandboxes, the service and the EZproxy stand-in on this machine, no
// accounts anywhere. Prints the one URL to open. DEMO_AUTH_MODE=userobject runs the UserObject identity mode,
// DEMO_AUTH_MODE=primo the Primo VE sign-in (a stand-in library card page with signed "Pay fine" links);
// DEMO_PROVIDER=paypal a PayPal campus (the PayPal stand-in's approval page, its webhooks delivered to the service).

import { mkdirSync, rmSync } from 'node:fs'
import { startStack } from '../src/sandbox/stack.ts'

const mode = process.env.DEMO_AUTH_MODE === 'userobject' || process.env.DEMO_AUTH_MODE === 'primo' ? process.env.DEMO_AUTH_MODE : 'header'
const provider = process.env.DEMO_PROVIDER === 'paypal' ? 'paypal' : 'cashnet'
const port = Number(process.env.DEMO_PORT ?? 8080)
const databasePath = process.env.DEMO_DATABASE_PATH ?? 'data/demo.sqlite'
mkdirSync('data', { recursive: true })
// The sandbox Alma starts fresh on every run, so the demo ledger does too.
for (const suffix of ['', '-wal', '-shm']) rmSync(databasePath + suffix, { force: true })

const stack = await startStack({
  ports: { ezproxy: port, service: 0 },
  env: {
    AUTH_MODE: mode,
    PAYMENT_PROVIDER: provider,
    DATABASE_PATH: databasePath,
    RELEASE_BLOCKS: 'FINES',
    ADMIN_USERS: 'staff',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    POSTING_RETRY_BASE_MS: '2000',
    ALMA_TIMEOUT_MS: '10000'
  }
})

const start = stack.primo !== null
  ? `Open ${stack.primo.libraryCardUrl}  (Primo VE's library card) and select a patron's "Pay fine" link.
  In primo mode everyone signs in through Primo, staff too: the admin pages are for a Primo user in ADMIN_USERS.`
  : `Open ${stack.publicUrl}/login?url=/  and choose a patron, or "Library staff" for the admin pages.`
process.stdout.write(`
alma-cashnet demo is running (${mode} mode, ${provider === 'paypal' ? 'PayPal' : 'CashNet'}).

  ${start}
  "Sign out" on the service's pages brings you back to that sign-in page to switch user.

  Behind it: the service at ${stack.serviceUrl}, the Alma sandbox at ${stack.alma.url},
  ${stack.paypal !== null ? `the PayPal stand-in at ${stack.paypal.url} (captures and refunds: ${stack.paypal.url}/sandbox/captures)` : `the CashNet sandbox at ${stack.cashnet.checkoutUrl}`}. The ledger is ${stack.config.databasePath}.
  The admin pages are at ${stack.publicUrl}/admin (user "staff"). Press Ctrl+C to stop.

`)

let closing = false
const stop = (): void => {
  if (closing) return
  closing = true
  stack.close().then(() => process.exit(0), () => process.exit(1))
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
