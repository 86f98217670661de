// A WebSocket tunnel outlives its handshake, the only request that was authenticated: it is closed
// when the credential that opened it expires (a JWT's `exp`, a session's absolute end, an API key's
// expiry), as an MCP notification stream is. The client reconnects with a fresh one.
import type { Duplex } from 'node:stream'
import type { Identity } from '../request/index.ts'

/** Node's timers fire at once past 2^31-1 ms (24.8 days): a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** How long the close frame may take to reach the client before both sockets are cut anyway. */
const CLOSE_FLUSH_MS = 1000

/** A WebSocket close frame, server to client (unmasked), status 1008 policy violation (RFC 6455 §5.5.1, §7.4.1). */
const CLOSE_POLICY_VIOLATION = Buffer.from([0x88, 0x02, 0x03, 0xf0])

/** The record's note for a tunnel closed at its credential's expiry. */
export function credentialExpiredNote(expiresAt: number): string {
  return `The caller's credential expired at ${new Date(expiresAt * 1000).toISOString()}: the gateway closed the tunnel.`
}

/**
 * Arms `expired` for the identity's expiry (seconds since the epoch); a credential without one
 * (0: an API key that never expires, a public route) arms nothing. Returns the disarm.
 */
export function atExpiry(identity: Identity | null, expired: () => void): () => void {
  const expiresAt = identity?.expiresAt ?? 0
  if (expiresAt <= 0) return () => {}
  let timer: NodeJS.Timeout
  const arm = () => {
    const left = expiresAt * 1000 - Date.now()
    if (left <= 0) return expired()
    timer = setTimeout(left > MAX_TIMER_MS ? arm : expired, Math.min(left, MAX_TIMER_MS))
    timer.unref()
  }
  arm()
  return () => clearTimeout(timer)
}

/**
 * Ends a tunnel from the gateway's side: the client is sent a close frame 1008 then the TCP close,
 * the upstream the TCP close. The gateway does not parse frames: a frame the upstream had half
 * relayed is cut, and the client sees the connection end either way.
 */
export function closeTunnel(client: Duplex, upstream: Duplex): void {
  upstream.unpipe(client)
  client.unpipe(upstream)
  const cut = () => {
    client.destroy()
    upstream.destroy()
  }
  const fallback = setTimeout(cut, CLOSE_FLUSH_MS)
  fallback.unref()
  client.end(CLOSE_POLICY_VIOLATION, () => {
    clearTimeout(fallback)
    cut()
  })
}
