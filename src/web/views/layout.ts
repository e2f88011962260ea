// The page shell shared by every patron and staff page: branding from configuration, a skip link, the
// language attribute, relative links only (EZproxy rewrites hosts and may mount the service under a path).

import { type Html, html, trusted } from '../html.ts'

export interface Branding {
  libraryName: string
  libraryLogoUrl: string
  accentColor: string
  /** who processes the payments, named in the footer (default CashNet) */
  paymentProvider?: 'cashnet' | 'paypal'
}

export interface PageOptions {
  /** what the page is, first in the title: "Your library fines" */
  title: string
  /** relative path from this page to the service root: "./", "../" or "../../" */
  root: string
  branding: Branding
  body: Html
  scripts?: string[]
  /**
   * Without JavaScript only: seconds before the page reloads itself (a receipt still waiting). With JavaScript the
   * page's script checks in the background instead, so no reload takes a screen reader's place (WCAG 2.2.1).
   */
  noscriptRefreshSeconds?: number
  /**
   * A patron's own page: the header offers "Sign out" (the service's `logout`, relative, which ends our session and
   * sends the browser on to EZproxy's sign-out), for a shared library computer and to switch user.
   */
  signOut?: boolean
}

/** WCAG relative luminance of a #rrggbb colour. */
function luminance (hex: string): number {
  const channel = (i: number): number => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
  }
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
}

export function contrast (a: string, b: string): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x)
  return (light + 0.05) / (dark + 0.05)
}

function darken (hex: string, factor: number): string {
  const part = (i: number): string => Math.round(parseInt(hex.slice(i, i + 2), 16) * factor).toString(16).padStart(2, '0')
  return `#${part(1)}${part(3)}${part(5)}`
}

/**
 * The library's colours, safe whatever ACCENT_COLOR a library configures: the header keeps the brand colour with
 * white or near-black text (whichever reads better); links, buttons and ticks use the accent darkened until it
 * reaches 5:1 on white (4.5:1 with room for the grey panels).
 */
export function accentColours (accentColor: string): { accent: string, onAccent: string, ink: string } {
  const accent = /^#[0-9A-Fa-f]{6}$/.test(accentColor) ? accentColor.toLowerCase() : '#1d4f91'
  const onAccent = contrast(accent, '#ffffff') >= 4.5 || contrast(accent, '#ffffff') >= contrast(accent, '#1b1f24') ? '#ffffff' : '#1b1f24'
  let ink = accent
  for (let factor = 0.9; contrast(ink, '#ffffff') < 5 && factor > 0; factor -= 0.1) ink = darken(accent, factor)
  return { accent, onAccent, ink }
}

/**
 * The one inline style: the accent colours as custom properties. The Content-Security-Policy allows exactly this
 * text by its hash (app.ts), so no 'unsafe-inline' is needed and no other inline style can run.
 */
export function accentCss (accentColor: string): string {
  const { accent, onAccent, ink } = accentColours(accentColor)
  return `:root{--accent:${accent};--on-accent:${onAccent};--accent-ink:${ink}}`
}

export function page (options: PageOptions): string {
  const { branding, root } = options
  return '<!doctype html>\n' + html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
${options.noscriptRefreshSeconds !== undefined ? trusted(`<noscript><meta http-equiv="refresh" content="${Math.max(5, Math.floor(options.noscriptRefreshSeconds))}"></noscript>`) : ''}
<title>${options.title} – ${branding.libraryName}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${root}assets/style.css">
<style>${trusted(accentCss(branding.accentColor))}</style>
</head>
<body>
<a class="skip-link" href="#main">Skip to main content</a>
<header class="site"><div class="inner">
<a class="name" href="${root}">${branding.libraryLogoUrl !== '' ? html`<img src="${branding.libraryLogoUrl}" alt="">` : ''}<span>${branding.libraryName}</span></a>
<span class="service">Fines and fees</span>
${options.signOut === true ? html`<a class="sign-out" href="${root}logout">Sign out</a>` : ''}
</div></header>
<main id="main" tabindex="-1"><div class="inner">
${options.body}
</div></main>
<footer class="site"><div class="inner">Payments are processed by ${branding.paymentProvider === 'paypal' ? 'PayPal' : 'CashNet'}; card details never reach the library.</div></footer>
${(options.scripts ?? []).map(s => html`<script src="${root}assets/${s}" defer></script>`)}
</body>
</html>
`.value
}
