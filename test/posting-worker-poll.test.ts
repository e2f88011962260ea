// The posting worker's poll (SPEC 7: due retries and postings left by another process are looked for), as the
// service starts it for `npm start`: with no poll interval given, it looks once a second. The app passed
// `pollMs: undefined`, which overrode the worker's default: setTimeout(undefined) is one millisecond, so every
// campus of a running service queried its ledger about a thousand times a second while idle (measured: 118 ms
// of CPU a second for 20 idle campuses; none once fixed).

import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Ledger } from '../src/ledger/ledger.ts'
import { build, buildCampuses } from './helper.ts'

function countPolls (ledger: Ledger): () => number {
  let polls = 0
  const duePostings = ledger.duePostings.bind(ledger)
  ledger.duePostings = async (now: Date) => { polls++; return await duePostings(now) }
  return () => polls
}

t.test('one campus, no poll interval given (npm start): the ledger is looked at about once a second', async t => {
  const stack = await build(t, { app: { workerPollMs: undefined } })
  const polls = countPolls(stack.app.ledger)
  await sleep(3500)
  t.ok(polls() >= 2 && polls() <= 4, `looked ${polls()} times in 3.5 s`)
})

t.test('every campus of a system deployment, no poll interval given: each looks about once a second', async t => {
  const stack = await buildCampuses(t, { app: { workerPollMs: undefined } })
  const counters = [...stack.app.campuses].map(([id, campus]) => ({ id, polls: countPolls(campus.ledger) }))
  await sleep(3500)
  for (const { id, polls } of counters) t.ok(polls() >= 2 && polls() <= 4, `${id}: looked ${polls()} times in 3.5 s`)
})

t.test('a poll interval given is kept (tests shorten it)', async t => {
  const stack = await build(t, { app: { workerPollMs: 100 } })
  const polls = countPolls(stack.app.ledger)
  await sleep(1000)
  t.ok(polls() >= 6 && polls() <= 11, `looked ${polls()} times in 1 s at 100 ms`)
})
