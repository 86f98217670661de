// Who is calling: X-Forwarded-For is believed only from peers in server.trusted_proxies, and then
// only up to the first address that is not itself a trusted proxy (read from the right, the
// end the trusted proxies wrote). A client cannot spoof its address by sending the header itself.
import { isIP } from 'node:net'
import { unmapIpv4, type AddressSet } from '../config/index.ts'

export interface ClientAddress {
  /** The address limits, policies and the audit log use. */
  clientIp: string
  /** The X-Forwarded-For value to send upstream. */
  forwardedFor: string
  /** Whether the direct peer is a trusted proxy (so its X-Forwarded-Proto/-Host are kept). */
  viaTrustedProxy: boolean
}

export function clientAddressOf(peerAddress: string | undefined, forwardedFor: string | undefined, trusted: AddressSet): ClientAddress {
  const peer = unmapIpv4(peerAddress ?? '')
  if (forwardedFor === undefined || trusted.size === 0 || !trusted.contains(peer)) {
    return { clientIp: peer, forwardedFor: peer, viaTrustedProxy: trusted.size > 0 && trusted.contains(peer) }
  }
  const hops = forwardedFor.split(',')
  let clientIp = peer
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = unmapIpv4(stripPort((hops[i] as string).trim()))
    if (isIP(hop) === 0) break // garbage: stop at the last hop a trusted proxy vouched for
    clientIp = hop
    if (!trusted.contains(hop)) break
  }
  return { clientIp, forwardedFor: `${forwardedFor}, ${peer}`, viaTrustedProxy: true }
}

/** Some proxies append `1.2.3.4:5678` or `[2001:db8::1]:443`. */
function stripPort(hop: string): string {
  if (hop.startsWith('[')) return hop.slice(1, hop.indexOf(']'))
  const colon = hop.indexOf(':')
  return colon !== -1 && colon === hop.lastIndexOf(':') ? hop.slice(0, colon) : hop
}
