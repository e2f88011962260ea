// One sandbox campus's variables for the campus benches (bench/campuses.ts, bench/lib/campus-memory.ts): '' is
// the one campus configured by the environment at /, any other id a campus of CAMPUSES_FILE under /{id}. The
// Alma budget and the per-patron limit are lifted: these benches measure what hosting many campuses costs.

import { SANDBOX_API_KEY } from '../../src/sandbox/stack.ts'

const BENCH_SECRET_HEADER = 'x-ezproxy-secret'

function benchEzproxySecret (id: string): string {
  return `bench-ezproxy-secret-${id === '' ? 'root' : id}`
}

/** What the campus's EZproxy would send for a signed-in patron. */
export function benchCampusHeaders (id: string, user: string): Record<string, string> {
  return { 'x-ezproxy-user': user, [BENCH_SECRET_HEADER]: benchEzproxySecret(id) }
}

export function benchCampusEnv (almaUrl: string, id: string): Record<string, string> {
  return {
    PUBLIC_URL: `https://fines.example.edu${id === '' ? '' : `/${id}`}`,
    ALMA_API_URL: `${almaUrl}/almaws/v1`,
    ALMA_API_KEY: SANDBOX_API_KEY,
    CASHNET_CHECKOUT_URL: 'https://train.cashnet.com/LIBFINESTEST',
    CASHNET_ITEM_CODE: 'LIB-FINE',
    CASHNET_POSTBACK_ALLOW: '127.0.0.4',
    EZPROXY_ALLOW: '127.0.0.1',
    // every campus's EZproxy on one address: each campus its own secret, or the service refuses to start
    EZPROXY_SECRET_HEADER: BENCH_SECRET_HEADER,
    EZPROXY_SECRET: benchEzproxySecret(id),
    LIBRARY_NAME: `University Library${id === '' ? '' : `, ${id}`}`,
    RELEASE_BLOCKS: 'FINES',
    PATRON_RATE_LIMIT: '100000'
  }
}
