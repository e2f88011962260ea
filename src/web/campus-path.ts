// A campus of a system deployment is served under its prefix (/{campus}, src/app.ts), and Fastify reports a
// request's URL and route with that prefix. Rules that name a path ('/', '/cashnet/return', '/assets/') are
// written as for the one campus at /: these give the path as the campus sees it. `campusPrefix` is the campus
// plugin's own `fastify.prefix` ('' for a single-library deployment), not the route's (which may be deeper).

import type { FastifyRequest } from 'fastify'

/** A path or URL without its campus's prefix: '/springfield/history?x' → '/history?x', '/springfield' → '/'. */
export function pathInCampus (url: string, campusPrefix: string): string {
  if (campusPrefix === '' || !url.startsWith(campusPrefix)) return url
  const rest = url.slice(campusPrefix.length)
  if (rest === '' || rest.startsWith('?')) return `/${rest}`
  return rest.startsWith('/') ? rest : url
}

/** The route a request matched, as it was declared in the campus ('/', '/cashnet/return'); undefined for none. */
export function routeInCampus (request: FastifyRequest, campusPrefix: string): string | undefined {
  const route = request.routeOptions.url
  return route === undefined ? undefined : pathInCampus(route, campusPrefix)
}
