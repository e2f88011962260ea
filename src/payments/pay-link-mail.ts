// The pay-link e-mail: plain text, to the patron's preferred address in Alma, through SMTP_URL (nodemailer, as the
// staff alerts). Sent while the staff member waits, so the page can say whether it went.

export interface PayLinkMail {
  smtpUrl: string
  from: string
  to: string
  libraryName: string
  patronName: string
  url: string
  expiresAt: Date
  timeZone: string
}

export function payLinkMessage (mail: PayLinkMail): { subject: string, text: string } {
  const until = new Intl.DateTimeFormat('en-US', { timeZone: mail.timeZone, year: 'numeric', month: 'long', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZoneName: 'short' }).format(mail.expiresAt)
  return {
    subject: `${mail.libraryName}: a link to pay your library fines`,
    text: `Dear ${mail.patronName},

Library staff sent you this link to see and pay your library fines and fees online:

${mail.url}

The link is for you alone; please do not forward it. It works until ${until}. If it has expired, ask the library for a new one.

If you did not expect this e-mail, you can ignore it, or tell the library.

${mail.libraryName}
`
  }
}

const transports = new Map<string, Promise<{ sendMail: (m: object) => Promise<unknown> }>>()

/** Sends the pay-link e-mail; rejects when the mail server refuses or cannot be reached. */
export async function sendPayLinkMail (mail: PayLinkMail): Promise<void> {
  if (mail.smtpUrl === '') throw new Error('SMTP_URL is not set')
  let transport = transports.get(mail.smtpUrl)
  if (transport === undefined) {
    transport = import('nodemailer').then(m => m.default.createTransport(mail.smtpUrl))
    transports.set(mail.smtpUrl, transport)
  }
  const { subject, text } = payLinkMessage(mail)
  await (await transport).sendMail({ from: mail.from, to: mail.to, subject, text })
}
