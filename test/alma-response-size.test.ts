// An Alma answer larger than ALMA_MAX_RESPONSE_BYTES (default 4 MiB) is refused: by its Content-Length before
// any of it is read, or by counting while it arrives when it has none. The connection is dropped, so the
// sandbox stops producing the body; the patron gets the calm "not available" page; the operator gets the
// alma.call line with RESPONSE_TOO_LARGE and the alma.unavailable line naming the variable. Before this a
// 140 MB body was read whole and took the service to 623 MB resident.

import t, { type Test } from 'tap'
import { DEFAULT_MAX_RESPONSE_BYTES } from '../src/alma/client.ts'
import { Browser, build, type TestStack } from './helper.ts'

const HUGE = 140 * 1024 * 1024
const MB = 1024 * 1024

async function hugePage (t: Test, stack: TestStack, announced: boolean): Promise<void> {
  Object.assign(stack.alma.faults, { hugeNext: 1, hugeBytes: HUGE, hugeAnnounced: announced })
  const rssBefore = process.memoryUsage().rss
  const page = await new Browser(stack).login('alice').get('/')
  const grewMb = (process.memoryUsage().rss - rssBefore) / MB

  t.equal(page.status, 503, 'the patron gets a 503')
  t.match(page.body, 'The library system is not available', 'the calm page')
  t.notMatch(page.body, /RESPONSE_TOO_LARGE|Error|stack|\.ts/, 'no internals on the page')

  const [huge] = stack.alma.hugeAnswers
  t.ok(huge !== undefined, 'the sandbox served the huge answer')
  t.ok(huge.cut, 'the service dropped the connection before the end of the body')
  t.ok(huge.producedBytes < DEFAULT_MAX_RESPONSE_BYTES + 16 * MB, `the sandbox produced ${Math.round(huge.producedBytes / MB)} of its ${HUGE / MB} MB before the service stopped reading`)
  t.ok(grewMb < 64, `the process grew by ${Math.round(grewMb)} MB resident for a ${HUGE / MB} MB answer`)

  const call = stack.logLines().find(l => l.event === 'alma.call' && l.alma?.errorCode === 'RESPONSE_TOO_LARGE')
  t.ok(call, 'an alma.call line says RESPONSE_TOO_LARGE')
  t.equal(call?.level, 40, 'at warn')
  t.equal(call?.alma.status, 200, 'with the status Alma sent')
  const unavailable = stack.logLines().find(l => l.event === 'alma.unavailable')
  t.match(unavailable?.msg, /over ALMA_MAX_RESPONSE_BYTES \(4194304\): refused unread/, 'the operator line names the variable and its value')
  t.equal(unavailable?.alma.errorCode, 'RESPONSE_TOO_LARGE')
}

t.test('a 140 MB answer announced by Content-Length: refused before it is read', async t => {
  const stack = await build(t)
  await hugePage(t, stack, true)
})

t.test('a 140 MB answer sent chunked, size unknown: refused once 4 MiB have arrived', async t => {
  const stack = await build(t)
  await hugePage(t, stack, false)
})

t.test('ALMA_MAX_RESPONSE_BYTES is the limit: a 100 KB answer is refused under a 64 KiB cap, ordinary pages are served', async t => {
  const stack = await build(t, { env: { ALMA_MAX_RESPONSE_BYTES: '65536' } })
  const browser = new Browser(stack).login('alice')
  t.equal((await browser.get('/')).status, 200, 'the fines page (documents of a few KB) is served')
  Object.assign(stack.alma.faults, { hugeNext: 1, hugeBytes: 100 * 1024, hugeAnnounced: false })
  t.equal((await browser.get('/')).status, 503, 'a 100 KB answer is refused')
  t.match(stack.logLines().find(l => l.event === 'alma.unavailable')?.msg, 'over ALMA_MAX_RESPONSE_BYTES (65536)')
  Object.assign(stack.alma.faults, { hugeNext: 1, hugeBytes: 60 * 1024, hugeAnnounced: true })
  t.equal((await browser.get('/')).status, 200, 'a 60 KB answer, under the cap, is read')
  t.equal(stack.logLines().filter(l => l.event === 'alma.call' && l.alma?.errorCode === 'RESPONSE_TOO_LARGE').length, 1, 'only the 100 KB answer was refused')
})
