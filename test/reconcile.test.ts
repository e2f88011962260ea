// npm run reconcile: real payments through the stack, then each kind of disagreement planted in the Alma sandbox,
// the ledger or CashNet's settlement file; the job must find each one, and stay silent on a clean ledger.

import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { readSettlementCsv, reconcile, type ReconcileReport } from '../src/jobs/reconcile.ts'
import { cents } from '../src/money.ts'
import { SANDBOX_API_KEY } from '../src/sandbox/stack.ts'
import { Browser, build, checkoutIdFrom, type TestStack, zedWhoseCampusIdIsAlice } from './helper.ts'
import { tsNodeArgs } from './support/ts-child.ts'

// Many runs of the reconcile CLI, each a child process: past tap's 180 s beside the rest of the suite on 2 cores.
t.setTimeout(480_000)

const SINCE = new Date(Date.now() - 86_400_000)
const TODAY = new Date().toISOString().slice(0, 10)

interface Run { code: number | null, stdout: string, stderr: string }

/** The command as cron runs it: a child process (async, so the in-process sandboxes keep answering). */
async function runCli (stack: TestStack, databasePath: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...tsNodeArgs(), 'scripts/reconcile.ts', ...args], {
      env: { PATH: process.env.PATH ?? '', DATABASE_PATH: databasePath, ALMA_API_URL: stack.alma.baseUrl, ALMA_API_KEY: SANDBOX_API_KEY, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => { stdout += String(c) })
    child.stderr.on('data', (c) => { stderr += String(c) })
    child.on('error', reject)
    child.on('close', (code) => { resolve({ code, stdout, stderr }) })
  })
}

/** A patron pays the chosen fees on the CashNet sandbox; returns the checkout's id and the form CashNet got. */
async function pay (stack: TestStack, user: string, feeIds?: string[]): Promise<{ id: string, fields: Array<[string, string]> }> {
  const browser = new Browser(stack).login(user)
  const { fields, action } = await browser.checkout(feeIds)
  await browser.payOnCashnet(action, fields)
  return { id: checkoutIdFrom(fields), fields }
}

function session (fields: Array<[string, string]>, overrides: Record<string, string> = {}): { fields: Map<string, string>, id: string, finished: boolean } {
  const map = new Map(fields.map(([k, v]) => [k.toLowerCase(), v]))
  for (const [k, v] of Object.entries(overrides)) map.set(k, v)
  return { fields: map, id: 'planted', finished: false }
}

async function run (stack: TestStack, settlement?: Array<{ tx: string, amount: number, date: string, line: number }>, now?: Date): Promise<ReconcileReport> {
  return await reconcile({ ledger: stack.app.ledger, alma: stack.app.alma, since: SINCE, now, settlement: settlement?.map(r => ({ ...r, amount: cents(r.amount) })) })
}

t.test('a clean ledger after real payments: nothing found, and the command is silent with exit 0', async t => {
  const dir = t.testdir()
  const databasePath = join(dir, 'ledger.sqlite')
  const stack = await build(t, { env: { DATABASE_PATH: databasePath } })
  const alice = await pay(stack, 'alice', ['100001', '100003'])
  const carol = await pay(stack, 'carol')
  await stack.app.worker.idle()
  t.equal((await stack.app.ledger.getCheckout(alice.id))?.state, 'POSTED')
  const feeReads = (): number => stack.alma.calls.filter(c => c.method === 'GET' && /\/fees\/\d+$/.test(c.path)).length
  const readsBefore = feeReads()
  const report = await run(stack)
  t.same(report.findings, [])
  t.equal(feeReads() - readsBefore, 3, 'Alma saw one GET per posted fee')
  t.equal(report.checked.postedLines, 3, 'every posted line was checked against Alma')
  t.equal(report.checked.feesRead, 3, 'one GET per posted fee')

  const carolTx = (await stack.app.ledger.getCheckout(carol.id))?.tx as string
  const aliceTx = (await stack.app.ledger.getCheckout(alice.id))?.tx as string
  const csv = join(dir, 'settlement.csv')
  writeFileSync(csv, `tx,amount,date\n${aliceTx},17.25,${TODAY}\n${carolTx},2.50,${TODAY}\n`)
  const quiet = await runCli(stack, databasePath, ['--cashnet', csv])
  t.equal(quiet.code, 0)
  t.equal(quiet.stdout, '', 'silent when everything agrees (cron mails only problems)')
  const json = await runCli(stack, databasePath, ['--json'], { RECONCILE_CASHNET_FILE: csv })
  t.equal(json.code, 0)
  const parsed = JSON.parse(json.stdout) as ReconcileReport
  t.same(parsed.findings, [])
  t.equal(parsed.checked.settlementRows, 2, 'the file came from RECONCILE_CASHNET_FILE')

  stack.alma.faults.failNext = 1000
  const down = await runCli(stack, databasePath, [])
  t.equal(down.code, 1, 'Alma down is never a clean run')
  t.match(down.stderr, 'could not read Alma')
})

t.test('each planted disagreement is found with its kind, and the command exits 1 with a report', async t => {
  const dir = t.testdir()
  const databasePath = join(dir, 'ledger.sqlite')
  const stack = await build(t, { env: { DATABASE_PATH: databasePath } })
  const alice = await pay(stack, 'alice', ['100001', '100003'])
  const carol = await pay(stack, 'carol')
  const erin = await pay(stack, 'erin')
  const zoeBrowser = new Browser(stack).login('zoe')
  const zoeForm = await zoeBrowser.checkout()
  stack.alma.payAtDesk('400002', 400)
  await zoeBrowser.payOnCashnet(zoeForm.action, zoeForm.fields)
  await stack.app.worker.idle()
  const ledger = stack.app.ledger
  const tx = async (id: string): Promise<string> => (await ledger.getCheckout(id))?.tx as string
  t.equal((await ledger.getCheckout(checkoutIdFrom(zoeForm.fields)))?.state, 'NEEDS_ATTENTION', 'zoe: 4.00 could not be applied')

  // Alma lost alice's payment on one fee and recorded a different amount on the other.
  stack.alma.fee('100001').transactions.length = 0
  stack.alma.fee('100003').transactions[0].amountCents -= 100
  // CashNet charged carol a second time, and sent a success for a checkout nobody started.
  const second = stack.cashnet.resultFields(session(carol.fields), 'pay')
  t.equal((await stack.cashnet.sendPostback(second)).status, 200)
  const orphan = stack.cashnet.resultFields(session(carol.fields, { ref1val1: 'f'.repeat(32) }), 'pay')
  t.equal((await stack.cashnet.sendPostback(orphan)).status, 200)
  // The settlement: alice right, carol for a different amount, a tx nobody knows, zoe's missing.
  const settlement = [
    { tx: await tx(alice.id), amount: 1725, date: TODAY, line: 2 },
    { tx: await tx(carol.id), amount: 300, date: TODAY, line: 3 },
    { tx: await tx(erin.id), amount: 8600, date: TODAY, line: 4 },
    { tx: 'CN-999999', amount: 1000, date: TODAY, line: 5 }
  ]

  const report = await run(stack, settlement)
  const found = (kind: string): Array<Record<string, any>> => report.findings.filter(f => f.kind === kind)
  t.match(found('posted-not-in-alma'), [{ checkoutId: alice.id, tx: await tx(alice.id), feeId: '100001', amount: 500, almaAmount: 0 }])
  t.match(found('amount-difference'), [
    { checkoutId: alice.id, feeId: '100003', amount: 100, ledgerAmount: 1225, almaAmount: 1125 },
    { checkoutId: checkoutIdFrom(zoeForm.fields), amount: 400, ledgerAmount: 1375, almaAmount: 975 }
  ])
  t.equal(found('amount-difference').length, 2)
  t.match(found('double-charge'), [{ checkoutId: carol.id, tx: second.tx, amount: 250, action: new RegExp(`Refund CashNet tx ${second.tx}`) }])
  t.match(found('orphan'), [{ tx: orphan.tx, checkoutId: 'f'.repeat(32), patron: 'carol', amount: 250 }])
  t.match(found('settled-unknown'), [{ tx: 'CN-999999', cashnetAmount: 1000 }])
  t.match(found('settled-amount-differs'), [{ checkoutId: carol.id, amount: 50, ledgerAmount: 250, cashnetAmount: 300 }])
  t.match(found('not-settled'), [{ checkoutId: checkoutIdFrom(zoeForm.fields), tx: await tx(checkoutIdFrom(zoeForm.fields)), amount: 1375 }])
  t.same(found('paid-not-posted'), [], 'everything paid was posted')
  t.equal(report.findings.length, 8, 'nothing else: erin\'s payment agrees everywhere')
  for (const f of report.findings) t.match(f.action, /\S/, `${f.kind} says what to do`)

  const csv = join(dir, 'settlement.csv')
  writeFileSync(csv, 'tx,amount,date\n' + settlement.map(r => `${r.tx},${(r.amount / 100).toFixed(2)},${r.date}`).join('\n') + '\n')
  const human = await runCli(stack, databasePath, ['--cashnet', csv])
  t.equal(human.code, 1, 'exit 1: something needs a person')
  t.match(human.stdout, 'Posted in the ledger, missing in Alma (posted-not-in-alma, 1)')
  t.match(human.stdout, `alice (Alice Archer) · checkout ${alice.id} · tx ${await tx(alice.id)} · fee 100001 · $5.00`)
  t.match(human.stdout, /→ Refund CashNet tx/)
  t.match(human.stdout, /8 finding\(s\) need a person: 1 posted-not-in-alma \(\$5\.00\), 2 amount-difference \(\$5\.00\)/)
  const json = await runCli(stack, databasePath, ['--json', '--cashnet', csv, '--since', SINCE.toISOString().slice(0, 10)])
  t.equal(json.code, 1)
  t.same((JSON.parse(json.stdout) as ReconcileReport).findings.map(f => f.kind).sort(), report.findings.map(f => f.kind).sort())
})

t.test('Alma reading a patron\'s primary id as another patron\'s identifier: the fee is unchecked, never reported missing', async t => {
  const stack = await build(t)
  const alice = await pay(stack, 'alice', ['100001'])
  await stack.app.worker.idle()
  t.equal((await stack.app.ledger.getCheckout(alice.id))?.state, 'POSTED')
  // zed's campus id is "alice", and Alma (all_unique) now answers a read of "alice" with zed
  stack.alma.addUser(zedWhoseCampusIdIsAlice())
  stack.alma.faults.sharedIdentifierMatch = 'other-identifier'
  const report = await run(stack)
  t.same(report.findings.filter(f => f.kind === 'posted-not-in-alma'), [], 'no false alarm that alice\'s payment is missing from Alma')
  t.match(report.findings, [{ kind: 'unchecked', checkoutId: alice.id, feeId: '100001', amount: 500, detail: /could not check fee 100001: Alma answered a read of primary id "alice" with patron "zed"/, action: /Make the identifier "alice" unique in Alma/ }])
  t.equal(report.findings.length, 1)

  // once Alma answers with alice again, the same run is clean; a fee alice's own record no longer has is reported
  stack.alma.faults.sharedIdentifierMatch = 'primary-id'
  t.same((await run(stack)).findings, [])
  const aliceInAlma = stack.alma.users.get('alice')
  if (aliceInAlma === undefined) throw new Error('alice is in the sandbox')
  aliceInAlma.fees = aliceInAlma.fees.filter(fee => fee.id !== '100001')
  t.match((await run(stack)).findings, [{ kind: 'posted-not-in-alma', feeId: '100001', detail: 'fee 100001 no longer exists in Alma' }])
})

t.test('a payment held back from posting is paid-not-posted once it is older than a few minutes', async t => {
  const stack = await build(t, { app: { startWorker: false } })
  const carol = await pay(stack, 'carol')
  t.equal((await stack.app.ledger.getCheckout(carol.id))?.state, 'PAID')
  t.same((await run(stack)).findings, [], 'just paid: the worker still has it')
  const later = await run(stack, undefined, new Date(Date.now() + 3_600_000))
  t.match(later.findings, [{ kind: 'paid-not-posted', checkoutId: carol.id, patron: 'carol (Carol Chen)', amount: 250, action: /Retry posting/ }])
  t.equal(later.findings.length, 1)
  t.equal(stack.alma.calls.filter(c => c.method === 'POST').length, 0, 'and indeed nothing was paid in Alma')
})

t.test('bad input and usage errors: exit 1 naming the file and line, exit 2 for options and configuration', async t => {
  const dir = t.testdir()
  const databasePath = join(dir, 'ledger.sqlite')
  const stack = await build(t, { env: { DATABASE_PATH: databasePath } })
  const bad = join(dir, 'bad.csv')
  writeFileSync(bad, 'tx,amount,date\n1001,12.50,2026-01-02\n1002,12.505,2026-01-02\n')
  const badRun = await runCli(stack, databasePath, ['--cashnet', bad])
  t.equal(badRun.code, 1)
  t.match(badRun.stderr, `${bad}: line 3: amount: invalid amount "12.505"`)
  const read = async (name: string, text: string): Promise<unknown> => {
    writeFileSync(join(dir, name), text)
    const rows = []
    for await (const row of readSettlementCsv(join(dir, name))) rows.push(row)
    return rows
  }
  t.same(await read('ok.csv', '\uFEFFTX,Amount,Date\r\n1001,12.50,2026-01-02\r\n\r\n1002,-3,2026-01-03T10:00:00Z\r\n'), [
    { tx: '1001', amount: 1250, date: '2026-01-02', line: 2 },
    { tx: '1002', amount: -300, date: '2026-01-03', line: 4 }
  ], 'a BOM, CRLF, blank lines, a refund and a timestamp are read')
  await t.rejects(read('header.csv', 'transaction,amount\n1,2\n'), { kind: 'BadInput', message: `${join(dir, 'header.csv')}: line 1: the header must be tx,amount,date` })
  await t.rejects(read('ragged.csv', 'tx,amount,date\n1001,1.00\n'), { kind: 'BadInput', message: `${join(dir, 'ragged.csv')}: line 2:` })
  await t.rejects(read('date.csv', 'tx,amount,date\n1001,1.00,02/01/2026\n'), { kind: 'BadInput', message: /line 2: date "02\/01\/2026" is not YYYY-MM-DD/ })
  await t.rejects(read('empty.csv', ''), { kind: 'BadInput', message: /is empty/ })

  // Independent runs at once: each child spends seconds loading TypeScript.
  const [since, bogus, missing, noKey, noLedger, help] = await Promise.all([
    runCli(stack, databasePath, ['--since', '2026-02-30']),
    runCli(stack, databasePath, ['--bogus']),
    runCli(stack, databasePath, ['--cashnet', join(dir, 'missing.csv')]),
    runCli(stack, databasePath, [], { ALMA_API_KEY: '' }),
    runCli(stack, join(dir, 'nowhere.sqlite'), []),
    runCli(stack, databasePath, ['--help'])
  ])
  t.equal(since.code, 2)
  t.match(since.stderr, '--since: "2026-02-30" is not a calendar date')
  t.equal(bogus.code, 2)
  t.equal(missing.code, 2)
  t.equal(noKey.code, 2)
  t.match(noKey.stderr, 'ALMA_API_KEY is required')
  t.equal(noLedger.code, 2, 'a missing ledger is never created and reported clean')
  t.match(noLedger.stderr, 'DATABASE_PATH')
  t.equal(help.code, 0)
  for (const variable of ['RECONCILE_SINCE', 'RECONCILE_CASHNET_FILE', 'RECONCILE_JSON', 'DATABASE_PATH', 'ALMA_API_KEY']) t.match(help.stdout, variable)
})
