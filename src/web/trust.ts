// Who is on the other end of the TCP connection, and whether they are on an allow-list (IPv4, IPv6, CIDR,
// ::ffff:-mapped IPv4 all handled by proxy-addr, the module Express and Fastify use for the same job).

import proxyAddr from 'proxy-addr'

export type PeerCheck = (address: string | undefined) => boolean

export function allowList (entries: readonly string[]): PeerCheck {
  if (entries.length === 0) return () => false
  const trust = proxyAddr.compile([...entries])
  return (address) => address !== undefined && address !== '' && trust(address, 0)
}
