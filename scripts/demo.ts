// npm run demo: the Alma and CashNet sandboxes, the service and the EZproxy stand-in on this machine, no
// accounts anywhere. Prints the one URL to open. DEMO_AUTH_MODE=userobject runs the UserObject identity mode,
// DEMO_AUTH_MODE=primo the Primo VE sign-in (a stand-in library card page with signed "Pay fine" links);
// DEMO_PROVIDER=paypal a PayPal campus (the PayPal stand-in's approval page, its webhooks delivered to the service);
// DEMO_CAMPUSES=1 a system deployment of two campuses (SPEC 12), each with its own Alma sandbox, CashNet store,
// branding and EZproxy stand-in, served by one service under /springfield/ and /shelbyville/.

import { mkdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { startCampusStack, startStack } from '../src/sandbox/stack.ts'

const mode = process.env.DEMO_AUTH_MODE === 'userobject' || process.env.DEMO_AUTH_MODE === 'primo' ? process.env.DEMO_AUTH_MODE : 'header'
const provider = process.env.DEMO_PROVIDER === 'paypal' ? 'paypal' : 'cashnet'
const port = Number(process.env.DEMO_PORT ?? 8080)
const databasePath = process.env.DEMO_DATABASE_PATH ?? 'data/demo.sqlite'
mkdirSync('data', { recursive: true })

if (process.env.DEMO_CAMPUSES === '1') await campuses()
else await oneCampus()

async function campuses (): Promise<void> {
  // each campus's ledger is <directory of DATABASE_PATH>/<campus>.sqlite: here data/demo-campuses/
  const directory = join(dirname(databasePath), 'demo-campuses')
  mkdirSync(directory, { recursive: true })
  for (const campus of ['springfield', 'shelbyville']) for (const suffix of ['', '-wal', '-shm']) rmSync(join(directory, `${campus}.sqlite${suffix}`), { force: true })
  const stack = await startCampusStack({
    ports: { ezproxy: port, service: 0 },
    directory,
    env: { DATABASE_PATH: join(directory, 'payments.sqlite'), LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', RELEASE_BLOCKS: 'FINES', POSTING_RETRY_BASE_MS: '2000', ALMA_TIMEOUT_MS: '10000' }
  })
  process.stdout.write(`
alma-cashnet demo is running: two campuses in one deployment (CAMPUSES_FILE ${join(directory, 'campuses.json')}).

${stack.campuses.map(c => `  ${c.config.libraryName}: open ${c.ezproxyUrl}/login?url=/${c.id}/  (its own EZproxy stand-in)
    a patron, or "Library staff" (user ${[...c.config.adminUsers].join(', ')}) for ${c.ezproxyUrl}/${c.id}/admin
    its Alma sandbox at ${c.alma.url}, its CashNet store at ${c.cashnet.checkoutUrl}, its ledger ${c.config.databasePath}`).join('\n')}

  The same usernames exist at both campuses, with different fees: alice at one is not alice at the other.
  The service itself is at ${stack.serviceUrl} (GET / lists the campuses). Press Ctrl+C to stop.

`)
  stopOnSignal(stack.close)
}

async function oneCampus (): Promise<void> {
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

  stopOnSignal(stack.close)
}

function stopOnSignal (close: () => Promise<void>): void {
  let closing = false
  const stop = (): void => {
    if (closing) return
    closing = true
    close().then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}
