// A pay link's token is a bearer credential (whoever has it opens that patron's session until it expires), so
// no log line may carry it: not the request line, not the operator's line when the ledger is busy, not the line
// of an unexpected error, and not under a campus's prefix (/{campus}/pay/<token>).

import Database from 'better-sqlite3'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { type Answer, Browser, build, buildCampuses, readForm, send, UNTRUSTED_PEER } from '../helper.ts'
import { tempDir } from '../jobs/cli.ts'
import { runningMailServer } from '../support/mail-server.ts'

/** Staff look the patron up on /admin/pay-links and send the link; the token, as the e-mail carries it. */
async function issueLink (staff: Browser, mails: Array<{ text: string }>, identifier: string): Promise<string> {
  const page = await staff.get(`/admin/pay-links?id=${encodeURIComponent(identifier)}`)
  const sent = await staff.post('/admin/pay-links', readForm(page.body, 'send-pay-link').fields)
  if (sent.status !== 303) throw new Error(`sending the pay link answered ${sent.status}`)
  const match = /\/pay\/(pl1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/.exec(mails.at(-1)?.text ?? '')
  if (match === null) throw new Error('no pay link in the e-mail')
  return match[1]
}

/** The lines that carry the token or any of its parts (its payload or its signature alone open nothing, but are still not for logs). */
function linesWithToken (logs: string[], token: string): string[] {
  const [, payload, mac] = token.split('.')
  return logs.filter(line => line.includes(token) || line.includes(payload) || line.includes(mac))
}

/** Holds the SQLite write lock on a ledger file from another connection, as an operator's sqlite3 shell might. */
function holdWriteLock (t: Test, path: string): Database.Database {
  const holder = new Database(path)
  t.teardown(() => { if (holder.inTransaction) holder.exec('ROLLBACK'); if (holder.open) holder.close() })
  holder.exec('BEGIN IMMEDIATE')
  return holder
}

t.test('a pay link opened while the ledger is locked: 503, and the token is in no log line', async t => {
  const smtp = await runningMailServer(t)
  const databasePath = join(tempDir(t), 'payments.sqlite')
  const stack = await build(t, { env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, DATABASE_PATH: databasePath } })
  const token = await issueLink(new Browser(stack).login('staff'), smtp.mails, 'alice')

  const holder = holdWriteLock(t, databasePath)
  const busy = await send(`${stack.serviceUrl}/pay/${token}`, { from: UNTRUSTED_PEER })
  t.equal(busy.status, 503, 'the session cannot be recorded: try again in a moment')
  t.match(busy.body, 'try again')
  const line = stack.logLines().find(l => l.event === 'ledger.busy')
  t.ok(line, 'the operator is told the ledger was locked')
  t.equal(line?.path, '/pay/[token]', 'on which path, without the token')
  holder.exec('ROLLBACK')

  // with the lock gone the same link works: it was refused for the lock, not for itself
  let opened: Answer = busy
  for (let i = 0; i < 40 && opened.status === 503; i++) {
    await new Promise(resolve => setTimeout(resolve, 50))
    opened = await send(`${stack.serviceUrl}/pay/${token}`, { from: UNTRUSTED_PEER })
  }
  t.equal(opened.status, 302, 'the link opens a session once the lock is released')
  // the router decodes the path before matching, so this is the same link
  const encoded = await send(`${stack.serviceUrl}/p%61y/${token.replace(/\./g, '%2E')}`, { from: UNTRUSTED_PEER })
  t.equal(encoded.status, 302, 'percent-encoded, it is the same link')
  t.same(stack.logLines().filter(l => l.req !== undefined && l.res?.statusCode !== 200).map(l => `${l.res?.statusCode as number} ${l.req?.url as string}`).slice(-3), ['503 /pay/[token]', '302 /pay/[token]', '302 /pay/[token]'], 'the request lines name the route, not the token')
  t.same(linesWithToken(stack.logs, token), [], 'the token is in no log line')
})

t.test('a pay link whose request fails unexpectedly: 500, and the token is in no log line', async t => {
  const smtp = await runningMailServer(t)
  const databasePath = join(tempDir(t), 'payments.sqlite')
  const stack = await build(t, { env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, DATABASE_PATH: databasePath } })
  const token = await issueLink(new Browser(stack).login('staff'), smtp.mails, 'alice')

  // an operator's mistake the service does not expect: the sessions table is gone
  const operator = new Database(databasePath)
  operator.exec('ALTER TABLE sessions RENAME TO sessions_moved')
  operator.close()
  const failed = await send(`${stack.serviceUrl}/pay/${token}`, { from: UNTRUSTED_PEER })
  t.equal(failed.status, 500)
  t.notMatch(failed.body, 'sessions', 'no detail for the patron')
  const line = stack.logLines().find(l => l.event === 'request.failed')
  t.ok(line, 'the operator gets the unexpected error')
  t.match(line?.msg, 'unexpected error on GET /pay/[token]: ', 'naming the route, not the token')
  t.same(linesWithToken(stack.logs, token), [], 'the token is in no log line')
})

t.test('under a campus\'s prefix too: a pay link used, and one opened while the campus\'s ledger is locked', async t => {
  const smtp = await runningMailServer(t)
  const directory = tempDir(t)
  const stack = await buildCampuses(t, { env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, DATABASE_PATH: join(directory, 'payments.sqlite') } })
  const [springfield] = stack.campuses
  const staff = new Browser({ publicUrl: springfield.ezproxyUrl, ezproxy: springfield.ezproxy }, { prefix: '/springfield' }).login('staff-springfield')
  const token = await issueLink(staff, smtp.mails, 'alice')
  t.match(smtp.mails[0].text, `/springfield/pay/${token}`, 'the link is under the campus\'s prefix')

  const holder = holdWriteLock(t, join(directory, 'springfield.sqlite'))
  const busy = await send(`${stack.serviceUrl}/springfield/pay/${token}`, { from: UNTRUSTED_PEER })
  t.equal(busy.status, 503)
  t.equal(stack.logLines().find(l => l.event === 'ledger.busy')?.path, '/springfield/pay/[token]')
  holder.exec('ROLLBACK')

  let opened: Answer = busy
  for (let i = 0; i < 40 && opened.status === 503; i++) {
    await new Promise(resolve => setTimeout(resolve, 50))
    opened = await send(`${stack.serviceUrl}/springfield/pay/${token}`, { from: UNTRUSTED_PEER })
  }
  t.equal(opened.status, 302, 'the link opens a session')
  t.ok(stack.logLines().some(l => l.req?.url === '/springfield/pay/[token]' && l.res?.statusCode === 302), 'its request line names the route, not the token')
  t.same(linesWithToken(stack.logs, token), [], 'the token is in no log line')
})
