// The Alma XML parser: no DOCTYPE, no entity definitions (so no billion laughs, no external entities), and
// tolerant of what Alma really sends: namespaces on error bodies, single and empty elements, desc attributes.

import t, { type Test } from 'tap'
import { mapFeeList, mapSingleFee, mapUser, parseErrorBody, parseXml, XmlRejected } from '../../src/alma/xml.ts'

const rejects = (t: Test, what: string, fn: () => unknown): void => {
  try {
    fn()
    t.fail(`${what}: accepted`)
  } catch (error) {
    t.ok(error instanceof XmlRejected, `${what}: XmlRejected`)
  }
}

t.test('DOCTYPE and entity definitions are refused before parsing', async t => {
  const laughs = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><user><primary_id>&lol3;</primary_id></user>'
  const external = '<?xml version="1.0"?><!DOCTYPE user [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><user><primary_id>&xxe;</primary_id></user>'
  const parameter = '<?xml version="1.0"?><!DOCTYPE user [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><user/>'
  const lowerCase = '<!doctype user><user><primary_id>a</primary_id></user>'
  const spaced = '<?xml version="1.0"?>\n  <!DOCTYPE\n user SYSTEM "http://127.0.0.1:9/user.dtd"><user/>'
  for (const [what, xml] of Object.entries({ laughs, external, parameter, lowerCase, spaced })) {
    const started = Date.now()
    rejects(t, what, () => parseXml(xml))
    t.ok(Date.now() - started < 1000, `${what}: refused at once`)
  }
  t.equal(parseErrorBody(laughs), null, 'an error body with a DOCTYPE is not read either')
})

t.test('undefined entities are not expanded, and the predefined ones and character references stay text', async t => {
  t.equal(mapUser(parseXml('<user><primary_id>&xxe;</primary_id></user>')).primaryId, '&xxe;', 'an undefined entity stays literal text')
  const user = mapUser(parseXml('<user><primary_id>a&amp;b</primary_id><first_name>&lt;script&gt;&#65;&#x42;</first_name><last_name>Zo&#235; &amp;#65;</last_name></user>'))
  t.equal(user.primaryId, 'a&b')
  t.equal(user.firstName, '<script>AB', 'decoded to text, which the views escape again')
  t.equal(user.lastName, 'Zoë &#65;', 'decoded once, never twice')
})

t.test('namespaces on Alma error bodies, prefixed or default, XML or JSON', async t => {
  const expected = { errorCode: '401861', errorMessage: 'User with identifier x was not found.', trackingId: 'E01-1234' }
  const bodies = [
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><web_service_result xmlns="http://com/exlibris/urm/general/xmlbeans"><errorsExist>true</errorsExist><errorList><error><errorCode>401861</errorCode><errorMessage>User with identifier x was not found.</errorMessage><trackingId>E01-1234</trackingId></error></errorList></web_service_result>',
    '<ns2:web_service_result xmlns:ns2="http://com/exlibris/urm/general/xmlbeans"><ns2:errorsExist>true</ns2:errorsExist><ns2:errorList><ns2:error><ns2:errorCode>401861</ns2:errorCode><ns2:errorMessage>User with identifier x was not found.</ns2:errorMessage><ns2:trackingId>E01-1234</ns2:trackingId></ns2:error></ns2:errorList></ns2:web_service_result>',
    '  \n<web_service_result><errorList><error><errorCode>401861</errorCode><errorMessage>User with identifier x was not found.</errorMessage><trackingId>E01-1234</trackingId></error><error><errorCode>2</errorCode></error></errorList></web_service_result>',
    '{"errorsExist":true,"errorList":{"error":[{"errorCode":"401861","errorMessage":"User with identifier x was not found.","trackingId":"E01-1234"}]},"result":null}',
    '{"errorsExist":true,"errorList":{"error":{"errorCode":"401861","errorMessage":"User with identifier x was not found.","trackingId":"E01-1234"}}}'
  ]
  for (const body of bodies) t.same(parseErrorBody(body), expected, body.slice(0, 50))
  for (const body of ['', 'Service Unavailable', '<html><body>502 Bad Gateway</body></html>', '<web_service_result/>', '{"errorList":{}}', '{broken', '<unclosed']) {
    t.equal(parseErrorBody(body), null, `${JSON.stringify(body)}: no error body`)
  }
})

t.test('single elements, empty elements and desc attributes', async t => {
  const user = mapUser(parseXml(`<user><primary_id>zoe</primary_id><first_name/><last_name></last_name><full_name>Zoë</full_name>
    <contact_info><emails><email preferred="false"><email_address>a@x</email_address></email><email preferred="true"><email_address>b@x</email_address></email></emails></contact_info>
    <user_identifiers><user_identifier><id_type desc="University ID">UNIV_ID</id_type><value>42</value></user_identifier></user_identifiers>
    <user_blocks><user_block><block_type desc="General">GENERAL</block_type><block_description desc="Fines over limit">FINE</block_description><block_note/></user_block></user_blocks>
    <fees currency="USD">12.50</fees></user>`))
  t.equal(user.firstName, '', 'an empty element is empty text')
  t.equal(user.lastName, '')
  t.equal(user.preferredEmail, 'b@x', 'the preferred address')
  t.same(user.identifiers, [{ type: 'UNIV_ID', value: '42', status: 'ACTIVE' }], 'one identifier is still a list')
  t.same(user.blocks[0].description, { code: 'FINE', desc: 'Fines over limit' }, 'desc attributes are read')
  t.equal(user.blocks[0].note, '')
  t.equal(user.feeBalance, 1250)
  const noLists = mapUser(parseXml('<user><primary_id>bob</primary_id><contact_info><emails/></contact_info><user_identifiers/><user_blocks></user_blocks></user>'))
  t.same([noLists.preferredEmail, noLists.identifiers, noLists.blocks], ['', [], []], 'empty lists')

  const one = mapFeeList(parseXml('<fees total_record_count="1" total_sum="5.0" currency="USD"><fee><id>1</id><type desc="Overdue fine">OVERDUEFINE</type><balance>5.0</balance><owner desc="Main">MAIN</owner><transactions/></fee></fees>'))
  t.equal(one.fees.length, 1, 'one fee is a list of one')
  t.same(one.fees[0].type, { code: 'OVERDUEFINE', desc: 'Overdue fine' })
  t.equal(one.totalSum, 500)
  t.equal(one.fees[0].currency, 'USD', 'the list currency is inherited')
  const none = mapFeeList(parseXml('<fees total_record_count="0" total_sum="0.0" currency="USD"/>'))
  t.same([none.fees, none.totalSum], [[], 0], 'an empty fee list')
  const credit = mapSingleFee(parseXml('<fee><id>9</id><balance currency="EUR">-4.00</balance></fee>'))
  t.same([credit.balance, credit.currency], [-400, 'EUR'], 'a credit, with the currency on the balance')
})

t.test('what is not Alma\'s shape is a typed error, never a crash', async t => {
  rejects(t, 'no user', () => mapUser(parseXml('<fees/>')))
  rejects(t, 'user without primary id', () => mapUser(parseXml('<user><first_name>x</first_name></user>')))
  rejects(t, 'user as text', () => mapUser(parseXml('<user>text</user>')))
  rejects(t, 'fee without id', () => mapFeeList(parseXml('<fees><fee><balance>1</balance></fee></fees>')))
  rejects(t, 'fee amount with three decimals', () => mapFeeList(parseXml('<fees><fee><id>1</id><balance>1.005</balance></fee></fees>')))
  rejects(t, 'fee amount as words', () => mapFeeList(parseXml('<fees><fee><id>1</id><balance>ten</balance></fee></fees>')))
  rejects(t, 'absurd amount', () => mapFeeList(parseXml('<fees><fee><id>1</id><balance>99999999999999999</balance></fee></fees>')))
  rejects(t, 'not XML', () => parseXml('{"user":{}}'))
  rejects(t, 'truncated', () => parseXml('<user><primary_id>a</primary_id>'))
  rejects(t, 'empty', () => parseXml(''))
  rejects(t, 'deep nesting', () => mapUser(parseXml('<a>'.repeat(20000) + '</a>'.repeat(20000))))
})

t.test('the document shape: attributes, text, repeated and namespaced elements, CDATA', async t => {
  t.same(parseXml('<a x=" 1 " xmlns="urn:x" xmlns:p="urn:p" p:y="2"><p:b>one</p:b><b>two</b><c/><d z="3"/><e z="4"> text </e></a>'), {
    a: { '@x': '1', '@y': '2', b: ['one', 'two'], c: '', d: { '@z': '3' }, e: { '@z': '4', '#text': 'text' } }
  }, 'namespace prefixes and declarations dropped, values trimmed, repeated elements become a list')
  t.same(parseXml('<fees><fee><id>1</id></fee></fees>'), { fees: { fee: [{ id: '1' }] } }, 'a list element is a list even alone')
  t.same(parseXml('<a>x<b/>y<![CDATA[ <z> & ]]></a>'), { a: { b: '', '#text': 'xy <z> &' } }, 'CDATA is text, never markup')
  t.same(parseXml('<a><toString>1</toString><hasOwnProperty>2</hasOwnProperty></a>'), { a: { __toString: '1', __hasOwnProperty: '2' } }, 'names that would shadow methods are renamed')
  t.equal(parseXml('<a __proto__="1" constructor="2"/>').a['@__proto__'], '1', 'any attribute name is an ordinary key')
})

t.test('what is not one well-formed document is refused', async t => {
  rejects(t, 'two roots', () => parseXml('<a/><b/>'))
  rejects(t, 'a truncated document', () => parseXml('<fees><fee><id>1</id></fee>'))
  rejects(t, 'a closing tag that does not match', () => parseXml('<fees><fee><id>1</id></fees>'))
  rejects(t, 'text after the root', () => parseXml('<a/>tail'))
  rejects(t, 'nothing', () => parseXml(''))
  rejects(t, 'an element named __proto__', () => parseXml('<a><__proto__><polluted>1</polluted></__proto__></a>'))
  rejects(t, 'constructor as an element', () => parseXml('<a><constructor>1</constructor></a>'))
  rejects(t, 'nesting deeper than 100', () => parseXml('<a>'.repeat(101) + '</a>'.repeat(101)))
  t.ok(parseXml('<a>'.repeat(100) + '</a>'.repeat(100)), '100 levels are read')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was touched')
})
