// npm run demo: the Alma and CashNet sandboxes, the service and the EZproxy stand-in on this machine, no
// accounts anywhere. Prints the URLs to open. By default a system deployment of two campuses (SPEC 12), each with
// its own Alma sandbox, CashNet store, branding and EZproxy stand-in, served by one service under /springfield/
// and /shelbyville/, so a newcomer sees the system office's shape first. DEMO_CAMPUSES=0 runs one library
// instead, and so do the variants that are single-campus: DEMO_AUTH_MODE=userobject (the UserObject identity
// mode), DEMO_AUTH_MODE=primo (the Primo VE sign-in: a stand-in library card page with signed "Pay fine" links)
// and DEMO_PROVIDER=paypal (the PayPal stand-in's approval page, its webhooks delivered to the service).

import { mkdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { campusSandboxAddresses, startCampusStack, startStack } from '../src/sandbox/stack.ts'

const mode = process.env.DEMO_AUTH_MODE === 'userobject' || process.env.DEMO_AUTH_MODE === 'primo' ? process.env.DEMO_AUTH_MODE : 'header'
const provider = process.env.DEMO_PROVIDER === 'paypal' ? 'paypal' : 'cashnet'
const port = Number(process.env.DEMO_PORT ?? 8080)
const databasePath = process.env.DEMO_DATABASE_PATH ?? 'data/demo.sqlite'
const campusesAsked = process.env.DEMO_CAMPUSES ?? ''
if (campusesAsked !== '' && campusesAsked !== '0' && campusesAsked !== '1') {
  process.stderr.write(`DEMO_CAMPUSES must be 1 (two campuses, the default) or 0 (one library), not "${campusesAsked}"\n`)
  process.exit(2)
}
mkdirSync('data', { recursive: true })

const CAMPUSES = ['springfield', 'shelbyville']
const single = campusesAsked === '0'
  ? 'DEMO_CAMPUSES=0'
  : campusesAsked === '' && mode !== 'header'
    ? `DEMO_AUTH_MODE=${mode} is a one-library demo`
    : campusesAsked === '' && provider === 'paypal' ? 'DEMO_PROVIDER=paypal is a one-library demo' : null
if (single !== null) await oneCampus(single)
else {
  // each campus's stand-ins connect from loopback addresses of their own (so each campus's allow-lists refuse
  // the other's), which macOS lacks unless aliased: there the default falls back to one library and says why
  const missing = await unavailableAddresses(CAMPUSES.flatMap((_, index) => Object.values(campusSandboxAddresses(index))))
  const lacking = `the two-campus demo needs the loopback addresses ${missing.join(', ')}, which this machine does not answer on (add them with: ${missing.map(address => `sudo ifconfig lo0 alias ${address}`).join('; ')})`
  if (missing.length === 0) await campuses()
  else if (campusesAsked === '1') {
    process.stderr.write(`DEMO_CAMPUSES=1: ${lacking}\n`)
    process.exit(1)
  } else await oneCampus(lacking)
}

/** Those of the addresses no socket can listen on here (not configured on any interface). */
async function unavailableAddresses (addresses: string[]): Promise<string[]> {
  const answers = await Promise.all(addresses.map(async address => await new Promise<boolean>(resolve => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(0, address, () => server.close(() => resolve(true)))
  })))
  return addresses.filter((_, i) => !answers[i])
}

async function campuses (): Promise<void> {
  // each campus's ledger is <directory of DATABASE_PATH>/<campus>.sqlite: here data/demo-campuses/
  const directory = join(dirname(databasePath), 'demo-campuses')
  mkdirSync(directory, { recursive: true })
  for (const campus of CAMPUSES) for (const suffix of ['', '-wal', '-shm']) rmSync(join(directory, `${campus}.sqlite${suffix}`), { force: true })
  const stack = await startCampusStack({
    ports: { ezproxy: port, service: 0 },
    directory,
    env: { DATABASE_PATH: join(directory, 'payments.sqlite'), LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', RELEASE_BLOCKS: 'FINES', POSTING_RETRY_BASE_MS: '2000', ALMA_TIMEOUT_MS: '10000' }
  })
  process.stdout.write(`
alma-cashnet demo is running: a university system, two campus libraries served by one deployment
(CAMPUSES_FILE ${join(directory, 'campuses.json')}). Each campus has its own Alma sandbox data, CashNet store,
branding, staff and EZproxy stand-in sign-in, as each campus's own EZproxy would in production.

${stack.campuses.map(c => `  ${c.config.libraryName}: open ${c.ezproxyUrl}/login?url=/${c.id}/  (its own EZproxy stand-in)
    a patron, or "Library staff" (user ${[...c.config.adminUsers].join(', ')}) for ${c.ezproxyUrl}/${c.id}/admin
    its Alma sandbox at ${c.alma.url}, its CashNet store at ${c.cashnet.checkoutUrl}, its ledger ${c.config.databasePath}`).join('\n')}

  The same usernames exist at both campuses, with different fees: alice at one is not alice at the other.
  The service itself is at ${stack.serviceUrl} (GET / lists the campuses).
  One library instead of a system: DEMO_CAMPUSES=0 npm run demo (its sign-in at http://127.0.0.1:${port}/login?url=/).
  Press Ctrl+C to stop.

`)
  stopOnSignal(stack.close)
}

async function oneCampus (why: string): Promise<void> {
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
alma-cashnet demo is running (${mode} mode, ${provider === 'paypal' ? 'PayPal' : 'CashNet'}): one library, not the
two-campus system that plain \`npm run demo\` shows (${why}).

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
