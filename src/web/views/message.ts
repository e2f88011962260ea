// The calm page every answer that is not a fines page, a hand-off or a receipt uses: a heading, one message,
// and optionally the way back to the fines (refusals, errors, not found, sign-out).

import { html } from '../html.ts'
import { type Branding, page } from './layout.ts'

export interface Message {
  title: string
  heading: string
  message: string
  /** relative path from the page back to the service root, so links work under EZproxy */
  root?: string
  tone?: 'ok' | 'warn' | 'bad'
  linkHome?: boolean
  signOut?: boolean
}

export function messagePage (branding: Branding, options: Message): string {
  return page({
    title: options.title,
    root: options.root ?? './',
    branding,
    signOut: options.signOut,
    body: html`<h1>${options.heading}</h1>
<div class="notice ${options.tone ?? 'warn'}" role="status"><p>${options.message}</p></div>
${options.linkHome === true ? html`<p><a href="${options.root ?? './'}">Back to your fines</a></p>` : ''}`
  })
}
