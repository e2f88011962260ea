// The receipt e-mail as a patron and the library mailbox read it: amounts from cents, the date and time in the
// library's zone with the zone named, part payments as "paid X of Y, Z left", the reference explained, Alma's text
// escaped in the HTML, and an honest different message when the payment needs staff.

import t from 'tap'
import { cents } from '../src/money.ts'
import { formatReceiptTime, isPlausibleEmail, type ReceiptBranding, receiptMessages, type ReceiptPayment, renderLibraryCopy, renderPatronReceipt } from '../src/payments/receipts.ts'

const BRANDING: ReceiptBranding = {
  libraryName: 'Hillside University Library',
  accentColor: '#7a0019',
  logoUrl: '/assets/logo.png',
  publicUrl: 'https://fines.library.example.edu',
  timeZone: 'America/Chicago'
}

function payment (overrides: Partial<ReceiptPayment> = {}): ReceiptPayment {
  return {
    reference: '0f754d6038f6f17603b4505678bc1476',
    outcome: 'recorded',
    patronName: 'Dana Quinn',
    patronId: 'dquinn',
    primaryId: '2900012345',
    // 02:30 UTC on 9 March is still 8 March in Chicago, 21:30 daylight time (CDT began that morning at 2:00)
    paidAt: new Date('2026-03-09T02:30:00Z'),
    currency: 'USD',
    providerTransaction: '810001',
    lines: [
      { description: 'Overdue fine', title: 'The Art of Computer Programming', amount: cents(1250), balanceBefore: cents(1250) },
      { description: 'Lost item replacement', title: 'Gödel, Escher, Bach', amount: cents(1000), balanceBefore: cents(6500) }
    ],
    ...overrides
  }
}

t.test('a recorded payment: subject, amounts per line and total, date in the library zone, the reference explained', async t => {
  const mail = renderPatronReceipt(payment(), BRANDING)
  t.equal(mail.subject, 'Hillside University Library: receipt for your payment of $22.50')
  for (const body of [mail.text, mail.html]) {
    t.match(body, 'March 8, 2026 at 9:30 PM CDT', 'the wall clock in Chicago, with the zone, on the day daylight time began')
    t.match(body, '$12.50')
    t.match(body, '$22.50')
    t.match(body, 'Quote it if you contact the library about this payment')
    t.match(body, '0f754d6038f6f17603b4505678bc1476')
    t.match(body, '810001')
  }
  t.match(mail.text, 'Overdue fine: The Art of Computer Programming\n    $12.50')
  t.match(mail.text, 'Total: $22.50')
  t.match(mail.text, 'Your library account has been updated')
})

t.test('a part payment shows what was paid, of what, and what is left', async t => {
  const mail = renderPatronReceipt(payment(), BRANDING)
  t.match(mail.text, 'Lost item replacement: Gödel, Escher, Bach\n    paid $10.00 of $65.00, $55.00 left')
  t.match(mail.html, 'paid $10.00 of $65.00,<br>$55.00 left')
  t.notMatch(mail.text, 'paid $12.50 of', 'a fee paid in full is not called a part payment')
})

t.test('the zone is the library\'s: the same instant reads differently elsewhere, and daylight time is named', async t => {
  const at = new Date('2026-07-01T16:05:00Z')
  t.equal(formatReceiptTime(at, 'America/Chicago'), 'July 1, 2026 at 11:05 AM CDT')
  t.equal(formatReceiptTime(at, 'Europe/Helsinki'), 'July 1, 2026 at 7:05 PM GMT+3')
  t.equal(formatReceiptTime(at, 'UTC'), 'July 1, 2026 at 4:05 PM UTC')
  const helsinki = renderPatronReceipt(payment({ paidAt: at }), { ...BRANDING, timeZone: 'Europe/Helsinki' })
  t.match(helsinki.text, 'Date: July 1, 2026 at 7:05 PM GMT+3')
  t.throws(() => renderPatronReceipt(payment(), { ...BRANDING, timeZone: 'Mars/Olympus' }), RangeError, 'a zone that does not exist is a configuration fault')
})

t.test('amounts come from cents exactly, in the payment\'s currency', async t => {
  const odd = payment({ currency: 'EUR', lines: [{ description: 'Fine', title: '', amount: cents(1), balanceBefore: cents(1) }, { description: 'Fee', title: '', amount: cents(1999999), balanceBefore: cents(1999999) }] })
  const mail = renderPatronReceipt(odd, BRANDING)
  t.match(mail.text, '€0.01')
  t.match(mail.text, '€19,999.99')
  t.match(mail.text, 'Total: €20,000.00')
  const tenths = renderPatronReceipt(payment({ lines: [0.1, 0.2].map(() => ({ description: 'Fine', title: '', amount: cents(10), balanceBefore: cents(10) })) }), BRANDING)
  t.match(tenths.text, 'Total: $0.20', 'no floating-point drift')
})

t.test('Alma\'s text and the names are escaped in the HTML and kept on one line in the subject', async t => {
  const hostile = payment({
    patronName: 'Eve <img src=x onerror=alert(1)>',
    reference: 'ref"><script>x</script>',
    providerTransaction: '81&0001',
    lines: [{ description: 'Fine <b>bold</b>', title: 'Tom & Jerry "<script>alert(1)</script>"', amount: cents(500), balanceBefore: cents(500) }]
  })
  const branding = { ...BRANDING, libraryName: 'Library\r\nBcc: victim@example.com <i>' }
  for (const mail of [renderPatronReceipt(hostile, branding), renderLibraryCopy(hostile, branding)]) {
    t.notMatch(mail.html, '<script>', 'no script element')
    t.notMatch(mail.html, '<img src=x', 'no injected image')
    t.notMatch(mail.html, '<b>bold', 'no injected markup')
    t.notMatch(mail.html, '<i>', 'no markup from the library name')
    t.match(mail.html, 'Tom &amp; Jerry &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;')
    t.match(mail.html, '81&amp;0001')
    t.notMatch(mail.subject, /[\r\n]/, 'no line break in the subject')
    t.match(mail.text, 'Tom & Jerry "<script>alert(1)</script>"', 'the plain text is the text itself')
  }
  t.match(renderLibraryCopy(hostile, branding).html, 'Eve &lt;img src=x onerror=alert(1)&gt;')
  t.match(renderLibraryCopy(hostile, branding).text, `${BRANDING.publicUrl}/admin/payments/ref%22%3E%3Cscript%3Ex%3C%2Fscript%3E`, 'the admin link is encoded')
})

t.test('branded: the accent colour and the logo, made absolute for a mail client', async t => {
  const mail = renderPatronReceipt(payment(), BRANDING)
  t.match(mail.html, 'background:#7a0019')
  t.match(mail.html, '<img src="https://fines.library.example.edu/assets/logo.png" alt=""')
  t.match(mail.html, 'Hillside University Library</div>')
  t.notMatch(renderPatronReceipt(payment(), { ...BRANDING, logoUrl: '' }).html, '<img', 'no logo configured, none shown')
  t.match(renderPatronReceipt(payment(), { ...BRANDING, accentColor: 'red;background:url(x)' }).html, 'background:#1d4f91', 'a colour that is not #rrggbb falls back')
  t.match(renderPatronReceipt(payment({ receiptUrl: 'https://fines.library.example.edu/receipts/abc' }), BRANDING).html, '<a href="https://fines.library.example.edu/receipts/abc"')
  t.notMatch(mail.html, 'See or print this receipt', 'no link when there is no receipt page')
})

t.test('a payment that needs staff gets an honest message: received, staff are checking, nothing more to do', async t => {
  const mail = renderPatronReceipt(payment({ outcome: 'needs_staff' }), BRANDING)
  t.equal(mail.subject, 'Hillside University Library: we received your payment of $22.50')
  for (const body of [mail.text, mail.html]) {
    t.match(body, 'We received your payment of $22.50')
    t.match(body, 'Library staff are checking it')
    t.match(body, 'There is nothing more you need to do')
    t.match(body, 'you do not need to pay again')
    t.notMatch(body, /recorded|has been updated|Fees paid/, 'it does not claim the account is updated')
  }
  t.match(mail.text, 'The fees this payment is for:')
})

t.test('the library copy says who paid, and where staff look', async t => {
  const copy = renderLibraryCopy(payment(), BRANDING)
  t.equal(copy.subject, 'Hillside University Library: copy of receipt: Dana Quinn $22.50 (0f754d6038f6f17603b4505678bc1476)')
  t.match(copy.text, 'Dana Quinn (dquinn, Alma 2900012345)')
  t.match(copy.text, 'https://fines.library.example.edu/admin/payments/0f754d6038f6f17603b4505678bc1476')
  const staff = renderLibraryCopy(payment({ outcome: 'needs_staff' }), BRANDING)
  t.match(staff.subject, 'payment needs staff: Dana Quinn $22.50')
  t.match(staff.text, 'It is not yet fully recorded in Alma')
  t.notMatch(renderPatronReceipt(payment(), BRANDING).text, '2900012345', 'the patron\'s own copy does not show internal identifiers')
})

t.test('the outbox rows for a payment: the patron\'s and, when configured, the library\'s; stable ids', async t => {
  const addresses = { patronEmail: 'dana@example.edu', libraryCopyTo: '', from: 'fines@library.example.edu' }
  const alone = receiptMessages(payment(), BRANDING, addresses)
  t.same(alone.map(m => [m.id, m.to, m.from]), [['receipt-0f754d6038f6f17603b4505678bc1476-recorded-patron', 'dana@example.edu', 'fines@library.example.edu']])
  const both = receiptMessages(payment(), BRANDING, { ...addresses, libraryCopyTo: 'circ@library.example.edu' })
  t.same(both.map(m => m.to), ['dana@example.edu', 'circ@library.example.edu'])
  t.match(both[1].subject, 'copy of receipt')
  t.same(receiptMessages(payment(), BRANDING, addresses).map(m => m.id), alone.map(m => m.id), 'the same ids every time')
  t.not(receiptMessages(payment({ outcome: 'needs_staff' }), BRANDING, addresses)[0].id, alone[0].id, 'needs-staff and recorded are two messages')
  t.same(receiptMessages(payment(), BRANDING, { ...addresses, patronEmail: '', libraryCopyTo: 'circ@library.example.edu' }).map(m => m.to), ['circ@library.example.edu'], 'no patron address: the library copy still goes')
  t.same(receiptMessages(payment(), BRANDING, { ...addresses, patronEmail: 'not an address' }), [], 'an unusable address is not queued')
  const odd = receiptMessages(payment({ reference: 'with spaces/and slashes' }), BRANDING, addresses)[0].id
  t.match(odd, /^receipt-[0-9a-f]{32}-recorded-patron$/, 'a reference that is not id-safe is hashed')
})

t.test('what counts as a usable patron address', async t => {
  for (const ok of ['dana@example.edu', 'd.quinn+fines@mail.example.co.uk']) t.ok(isPlausibleEmail(ok), ok)
  for (const bad of ['', 'dana', 'dana@', '@example.edu', 'dana@example', 'a b@example.edu', 'dana@example.edu\r\nBcc: x@y.z', '<dana@example.edu>', 'a,b@example.edu', `${'a'.repeat(250)}@example.edu`]) {
    t.notOk(isPlausibleEmail(bad), JSON.stringify(bad))
  }
})

t.test('needing staff with what was received not what was due: both stated, lines as due, no "pay again" for money not taken', async t => {
  const short = renderPatronReceipt(payment({ outcome: 'needs_staff', received: cents(1000) }), BRANDING)
  t.equal(short.subject, 'Hillside University Library: we received $10.00 of the $22.50 due')
  for (const body of [short.text, short.html]) {
    t.match(body, 'Library staff will look at the $12.50 difference and contact you')
    t.notMatch(body, 'paid $10.00 of $65.00', 'no line is called paid')
    t.notMatch(body, 'you do not need to pay again')
  }
  t.match(short.text, 'Received: $10.00\nDue: $22.50')
  t.match(short.text, 'Total due: $22.50')
  const over = renderPatronReceipt(payment({ outcome: 'needs_staff', received: cents(3000) }), BRANDING)
  t.equal(over.subject, 'Hillside University Library: we received $30.00, more than the $22.50 due')
  t.match(over.text, 'Library staff will look at the $7.50 difference and contact you. You do not need to pay again.')
  for (const received of [null, cents(0)]) {
    const unconfirmed = renderPatronReceipt(payment({ outcome: 'needs_staff', received }), BRANDING)
    t.equal(unconfirmed.subject, 'Hillside University Library: we could not confirm the amount of your payment')
    t.match(unconfirmed.text, 'Received: not confirmed')
    t.notMatch(unconfirmed.text, '$0.00')
  }
  const copy = renderLibraryCopy(payment({ outcome: 'needs_staff', received: cents(1000) }), BRANDING)
  t.match(copy.subject, 'payment needs staff: Dana Quinn $10.00 received of $22.50 due')
})

t.test('received as due, or a recorded receipt: exactly the receipt it always was', async t => {
  t.same(renderPatronReceipt(payment({ outcome: 'needs_staff', received: cents(2250) }), BRANDING), renderPatronReceipt(payment({ outcome: 'needs_staff' }), BRANDING))
  t.same(renderLibraryCopy(payment({ outcome: 'needs_staff', received: cents(2250) }), BRANDING), renderLibraryCopy(payment({ outcome: 'needs_staff' }), BRANDING))
  t.same(renderPatronReceipt(payment({ received: cents(100) }), BRANDING), renderPatronReceipt(payment(), BRANDING), 'a recorded receipt tells what Alma took')
})
