// A real SMTP server on an ephemeral port for the e-mail tests (receipts, the outbox, alerts, pay links): it keeps
// every message it accepts, can be stopped and started again on the same port (the mail server down for a
// while), and refuses chosen recipients with a 550.

import type { Test } from 'tap'
import { SMTPServer } from 'smtp-server'
import { freePort } from '../helper.ts'

export interface CapturedMail {
  /** the envelope's sender ('' for the null sender) */
  from: string
  to: string[]
  /** the message as sent, quoted-printable soft line breaks and escapes undone */
  text: string
  /** the same with folded header lines joined first: what the Subject and Message-ID are read from */
  readable: string
  subject: string
  messageId: string
}

export interface MailServer {
  port: number
  /** SMTP_URL for it */
  url: string
  mails: CapturedMail[]
  start: () => Promise<void>
  stop: () => Promise<void>
}

const undoQuotedPrintable = (text: string): string =>
  text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))

/** Not listening until start(); stopped when the test ends. `refuse`: recipients answered 550. */
export async function mailServer (t: Test, options: { refuse?: string[] } = {}): Promise<MailServer> {
  const port = await freePort()
  const refuse = options.refuse ?? []
  const mails: CapturedMail[] = []
  let server: SMTPServer | undefined
  const stop = async (): Promise<void> => {
    const s = server
    server = undefined
    if (s !== undefined) await new Promise<void>(resolve => { s.close(() => { resolve() }) })
  }
  const start = async (): Promise<void> => {
    const s = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onRcptTo (address, _session, done) {
        if (refuse.includes(address.address)) { const e = new Error('mailbox unavailable') as Error & { responseCode: number }; e.responseCode = 550; done(e); return }
        done()
      },
      onData (stream, session, done) {
        let raw = ''
        stream.setEncoding('utf8')
        stream.on('data', (chunk: string) => { raw += chunk })
        stream.on('end', () => {
          const readable = undoQuotedPrintable(raw.replace(/\r\n(?=[ \t])/g, ''))
          mails.push({
            from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
            to: session.envelope.rcptTo.map(r => r.address),
            text: undoQuotedPrintable(raw),
            readable,
            subject: /^Subject: (.*)$/mi.exec(readable)?.[1].trim() ?? '',
            messageId: /^Message-ID: (.*)$/mi.exec(readable)?.[1].trim() ?? ''
          })
          done()
        })
      }
    })
    server = s
    await new Promise<void>(resolve => { s.listen(port, '127.0.0.1', resolve) })
  }
  t.teardown(stop)
  return { port, url: `smtp://127.0.0.1:${port}`, mails, start, stop }
}

/** A mail server already listening. */
export async function runningMailServer (t: Test): Promise<MailServer> {
  const server = await mailServer(t)
  await server.start()
  return server
}
