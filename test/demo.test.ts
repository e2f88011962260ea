// npm run demo for one library, as a newcomer runs it: one command, then the URL it prints, a seeded patron's
// fees, a payment on the CashNet sandbox, and the fines page empty afterwards. Plain `npm run demo` shows two
// campuses (test/campuses-demo.test.ts); DEMO_CAMPUSES=0 asks for one library, and the UserObject mode is a
// one-library demo by itself.

import t from 'tap'
import { Browser } from './helper.ts'
import { runDemo } from './support/service-process.ts'

const variants = [
  { mode: 'header', env: { DEMO_CAMPUSES: '0' }, why: '(DEMO_CAMPUSES=0)' },
  { mode: 'userobject', env: { DEMO_AUTH_MODE: 'userobject' }, why: '(DEMO_AUTH_MODE=userobject is a one-library demo)' }
] as const
for (const { mode, env, why } of variants) {
  t.test(`${Object.entries(env).map(([name, value]) => `${name}=${value}`).join(' ')} npm run demo (${mode} mode, one library): sign in, see the fees, pay them all, nothing left to pay`, async t => {
    const { port, output } = await runDemo(t, 'alma-cashnet-demo-', env)
    const publicUrl = `http://127.0.0.1:${port}`
    t.match(output(), `Open ${publicUrl}/login?url=/`, 'it prints the one URL to open')
    t.match(output(), `alma-cashnet demo is running (${mode} mode, CashNet): one library`, 'one library, in the mode asked for')
    t.match(output(), why, 'it says why one library, not the two campuses plain npm run demo shows')
    t.notMatch(output(), 'CAMPUSES_FILE', 'not the system deployment')

    const browser = new Browser({ publicUrl } as any)
    const login = await browser.get('/login?url=/')
    t.match(login.body, 'Alice Archer', 'the login page lists the seeded patrons')
    const signedIn = await browser.follow(await browser.signIn('carol'), `${publicUrl}/login`)
    t.equal(signedIn.status, 200)
    t.match(signedIn.body, 'Gödel, Escher, Bach', 'carol\'s fee')
    t.match(signedIn.body, '$2.50')
    const { fields, action } = await browser.checkout()
    t.match(action, /^http:\/\/127\.0\.0\.1:\d+\/LIBFINESTEST$/, 'handed to the CashNet sandbox')
    const receipt = await browser.payOnCashnet(action, fields)
    t.equal(receipt.status, 200)
    t.match(receipt.body, /Payment received/)
    const fines = await browser.getUntil('/', 'Nothing to pay')
    t.match(fines.body, 'Nothing to pay', 'the fines page is empty afterwards')

    // a newcomer's first patron looks like a real account; the HTML-title case is a test patron of its own
    t.match(login.body, /Alice Archer<\/button> <span>alice: three fees, one of them at the Law Library/)
    t.match(login.body, /Mallory Markup<\/button> <span>mallory: test patron: a fee title with HTML in it/)

    // sign out (or switch user): the link on the patron's page leads back to the stand-in's sign-in page
    t.match(fines.body, '<a class="sign-out" href="./logout">Sign out</a>', 'the patron pages offer a sign-out link, relative')
    // the service ends its own session and sends the browser on to EZproxy's sign-out, which shows its sign-in page
    const out = await browser.get('logout')
    t.equal(out.status, 302)
    t.equal(out.headers.location, `${publicUrl}/ezproxy/logout`, 'on to the stand-in\'s own sign-out')
    const standInOut = await browser.get('/ezproxy/logout')
    t.equal(standInOut.status, 303)
    t.equal(standInOut.headers.location, '/login', 'back to the sign-in page, to switch user')
    const signInAgain = await browser.follow(standInOut, `${publicUrl}/ezproxy/logout`)
    t.match(signInAgain.body, 'Library sign-in (EZproxy stand-in)')
    t.notMatch(signInAgain.body, 'Signed in as', 'signed out of the stand-in')
    const gone = await browser.get('/')
    t.equal(gone.status, 302, 'the fines page asks for a sign-in again')

    // the staff choice on the sign-in page lands on /admin
    const staffForm = /<form method="post" action="([^"]+)" id="staff-sign-in"><ul><li><button type="submit" name="user" value="staff">Library staff<\/button>/.exec(signInAgain.body)
    t.ok(staffForm, 'the sign-in page offers "Library staff"')
    // a fresh browser: in userobject mode the service's own session of the previous patron ends only at its /logout
    const staff = mode === 'header' ? browser : new Browser({ publicUrl } as any)
    const staffIn = await staff.request(staffForm?.[1].replace(/&amp;/g, '&') ?? '/login', { method: 'POST', body: 'user=staff' })
    t.equal(staffIn.status, 303)
    t.equal(staffIn.headers.location, '/admin', 'staff are sent to /admin')
    const admin = await staff.follow(staffIn, `${publicUrl}/login`)
    t.equal(admin.status, 200)
    t.match(admin.body, '<h1>Payments</h1>', 'the admin payments list')
    t.match(admin.body, /Carol Chen/, 'with the payment just made')
  })
}
