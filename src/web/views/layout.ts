// The page shell shared by every patron and staff page: branding from configuration, a skip link, the
// language attribute, relative links only (EZproxy rewrites hosts and may mount the service under a path).

import { type Html, html, trusted } from '../html.ts'

export interface Branding {
  libraryName: string
  libraryLogoUrl: string
  accentColor: string
}

export interface PageOptions {
  /** what the page is, first in the title: "Your library fines" */
  title: string
  /** relative path from this page to the service root: "./", "../" or "../../" */
  root: string
  branding: Branding
  body: Html
  scripts?: string[]
  /** seconds before the page reloads itself (receipt while the library system is being updated) */
  refreshSeconds?: number
}

export function page (options: PageOptions): string {
  const { branding, root } = options
  const accent = /^#[0-9A-Fa-f]{6}$/.test(branding.accentColor) ? branding.accentColor : '#1d4f91'
  return '<!doctype html>\n' + html`<html lang="en" style="${trusted(`--accent: ${accent}`)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
${options.refreshSeconds !== undefined ? trusted(`<meta http-equiv="refresh" content="${Math.max(1, Math.floor(options.refreshSeconds))}">`) : ''}
<title>${options.title} – ${branding.libraryName}</title>
<link rel="stylesheet" href="${root}assets/style.css">
</head>
<body>
<a class="skip-link" href="#main">Skip to main content</a>
<header class="site"><div class="inner">
${branding.libraryLogoUrl !== '' ? html`<img src="${branding.libraryLogoUrl}" alt="">` : ''}
<a class="name" href="${root}">${branding.libraryName}</a>
</div></header>
<main id="main" tabindex="-1"><div class="inner">
${options.body}
</div></main>
<footer class="site"><div class="inner">Payments are processed by CashNet; card details never reach the library.</div></footer>
${(options.scripts ?? []).map(s => html`<script src="${root}assets/${s}" defer></script>`)}
</body>
</html>
`.value
}
