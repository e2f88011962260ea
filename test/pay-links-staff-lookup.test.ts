// /admin/pay-links finds the patron a link is for: a pay link is for an Alma primary id, so staff find a patron
// by primary id first (then by any unique id, a barcode say), whatever ALMA_USER_ID_TYPE says about EZproxy
// usernames, and the send form (which names the patron by primary id) sends exactly the patron the page showed.
// Here ALMA_USER_ID_TYPE=UNIV_ID and zed's campus id (UNIV_ID) is "alice", Alice's primary id.

import t, { type Test } from 'tap'
import { seedUsers } from '../src/sandbox/seed.ts'
import { Browser, build, readForm, type TestStack, zedWhoseCampusIdIsAlice } from './helper.ts'
import { type MailServer, runningMailServer } from './support/mail-server.ts'

async function scene (t: Test): Promise<{ stack: TestStack, smtp: MailServer, staff: Browser }> {
  const smtp = await runningMailServer(t)
  const stack = await build(t, { env: { PAY_LINKS: 'on', SMTP_URL: smtp.url, ADMIN_USERS: 'staff', ALMA_USER_ID_TYPE: 'UNIV_ID' } })
  stack.alma.addUser(zedWhoseCampusIdIsAlice())
  // a community borrower with an e-mail but no campus id
  stack.alma.addUser({ ...seedUsers()[0], primaryId: 'comm-7', firstName: 'Cora', lastName: 'Community', email: 'cora@example.org', identifiers: [], fees: [] })
  return { stack, smtp, staff: new Browser(stack).login('staff') }
}

t.test('ALMA_USER_ID_TYPE=UNIV_ID: staff looking up a primary id find that patron, and the link goes to them', async t => {
  const { stack, smtp, staff } = await scene(t)

  const page = await staff.get('/admin/pay-links?id=alice')
  t.equal(page.status, 200)
  t.match(page.body, 'Alice Archer', 'the patron whose primary id is "alice"')
  t.notMatch(page.body, 'Zed', 'not the one whose campus id is "alice"')
  const send = readForm(page.body, 'send-pay-link')
  t.same(send.fields.find(([k]) => k === 'id'), ['id', 'alice'], 'the form names alice by primary id')
  const sent = await staff.post('/admin/pay-links', send.fields)
  t.equal(sent.status, 303)
  t.same(smtp.mails.map(m => m.to), [['alice.archer@example.edu']], 'the e-mail goes to alice, not to zed')
  t.match(await stack.app.ledger.payLinksFor('alice', 10), [{ patronId: 'alice', primaryId: 'alice' }], 'the link is for alice')
  t.same(await stack.app.ledger.payLinksFor('zed', 10), [], 'none for zed')
  const back = await staff.get(String(sent.headers.location).replace(/^pay-links/, '/admin/pay-links'))
  t.match(back.body, 'The pay link was sent.')
  t.match(back.body, 'Alice Archer', 'the page after sending shows alice')
  t.match(back.body, 'Active', 'and her link')

  const community = await staff.get('/admin/pay-links?id=comm-7')
  t.match(community.body, 'Cora Community', 'a patron without a campus id is found by primary id')
  t.equal((await staff.post('/admin/pay-links', readForm(community.body, 'send-pay-link').fields)).status, 303, 'and can be sent a link')
  t.same(smtp.mails.map(m => m.to), [['alice.archer@example.edu'], ['cora@example.org']])

  const barcode = await staff.get('/admin/pay-links?id=21000000001')
  t.match(barcode.body, 'Alice Archer', 'another unique id (a barcode) still finds the patron')
  t.same(readForm(barcode.body, 'send-pay-link').fields.find(([k]) => k === 'id'), ['id', 'alice'], 'named by primary id in the form')
  const zed = await staff.get('/admin/pay-links?id=zed')
  t.match(zed.body, 'Zed Zimmermann', 'zed by his own primary id')
})

t.test('the send form sends only the patron with exactly that primary id, never one whose other id it is', async t => {
  const { smtp, staff } = await scene(t)
  const page = await staff.get('/admin/pay-links?id=zed')
  const fields = readForm(page.body, 'send-pay-link').fields.map(([k, v]): [string, string] => [k, k === 'id' ? '21000000001' : v])
  const refused = await staff.post('/admin/pay-links', fields)
  t.equal(refused.status, 404, 'a barcode is no primary id: nothing sent')
  t.same(smtp.mails, [])
})

t.test('Alma answering a read of "alice" with zed (whose campus id it is): a link for primary id "alice" is sent to nobody', async t => {
  const { stack, smtp, staff } = await scene(t)
  const page = await staff.get('/admin/pay-links?id=alice')
  const fields = readForm(page.body, 'send-pay-link').fields
  t.same(fields.find(([k]) => k === 'id'), ['id', 'alice'], 'the form, as Alma answered before, names alice')
  stack.alma.faults.sharedIdentifierMatch = 'other-identifier'
  const refused = await staff.post('/admin/pay-links', fields)
  t.equal(refused.status, 404, 'Alma\'s answer is not the patron with primary id "alice": nothing sent')
  t.notMatch(refused.body, 'The pay link was sent')
  t.same(smtp.mails, [], 'no e-mail, to zed or anyone')
  t.same(await stack.app.ledger.payLinksFor('zed', 10), [], 'no link for zed')
  t.same(await stack.app.ledger.payLinksFor('alice', 10), [], 'nor for alice')
})
