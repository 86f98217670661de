// A WebSocket tunnel outlives its handshake, the only request that was authenticated: it is closed
// when the credential that opened it expires (a JWT's `exp` plus its issuer's clock_tolerance, a
// session's absolute end, an API key's expiry), as an MCP notification stream is (the same rule,
// armed by the same registry). The client reconnects with a fresh one. The open tunnels' registry
// arms it (gateway/tunnels.ts), where revocations, reloads and the drain close them too.
import { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Identity, TunnelCloseCode } from '../request/index.ts'

/** Node's timers fire at once past 2^31-1 ms (24.8 days): a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** How long the close frame may take to reach the client before both sockets are cut anyway. */
const CLOSE_FLUSH_MS = 1000

/** WebSocket close frames, server to client (unmasked), by status (RFC 6455 §5.5.1, §7.4.1): 1001 going away, 1008 policy violation. */
const CLOSE_FRAMES: Readonly<Record<TunnelCloseCode, Buffer>> = {
  1001: Buffer.from([0x88, 0x02, 0x03, 0xe9]),
  1008: Buffer.from([0x88, 0x02, 0x03, 0xf0]),
}

/** The record's note for a tunnel (`what`: or a stream) closed at its credential's expiry (`toleranceSec` past it: a token's clock tolerance). */
export function credentialExpiredNote(expiresAt: number, toleranceSec: number, what = 'the tunnel'): string {
  const tolerance = toleranceSec > 0 ? ` (clock tolerance ${toleranceSec}s)` : ''
  return `The caller's credential expired at ${new Date(expiresAt * 1000).toISOString()}${tolerance}: the gateway closed ${what}.`
}

/** The record's note for a tunnel closed for its idleness (server.websocket_idle_timeout). */
export function idleNote(idleMs: number): string {
  return `The tunnel carried no bytes either way for ${idleMs / 1000}s (server.websocket_idle_timeout): the gateway closed it (1001 going away).`
}

/**
 * Calls `idle` once the client's socket has neither read nor written anything for `ms`: every byte
 * of the tunnel crosses it, one way or the other. Node's own inactivity timer, reset by its reads
 * and writes: nothing is added per chunk.
 */
export function atIdle(socket: Duplex, ms: number, idle: () => void): void {
  if (!(socket instanceof Socket)) return
  socket.setTimeout(ms, idle)
}

/**
 * Arms `expired` for the identity's expiry (seconds since the epoch) plus `toleranceSec`, the
 * instant its verification stops accepting it (a JWT is accepted up to `exp` + its issuer's
 * clock_tolerance); a credential without one (0: an API key that never expires, a public route)
 * arms nothing. Returns the disarm.
 */
export function atExpiry(identity: Identity | null, toleranceSec: number, expired: () => void): () => void {
  const expiresAt = identity?.expiresAt ?? 0
  if (expiresAt <= 0) return () => {}
  let timer: NodeJS.Timeout
  const arm = () => {
    const left = (expiresAt + toleranceSec) * 1000 - Date.now()
    if (left <= 0) return expired()
    timer = setTimeout(left > MAX_TIMER_MS ? arm : expired, Math.min(left, MAX_TIMER_MS))
    timer.unref()
  }
  arm()
  return () => clearTimeout(timer)
}

/**
 * Ends a tunnel from the gateway's side: the client is sent a close frame `code` then the TCP close,
 * the upstream the TCP close. The gateway does not parse frames: a frame the upstream had half
 * relayed is cut, and the client sees the connection end either way.
 */
export function closeTunnel(client: Duplex, upstream: Duplex, code: TunnelCloseCode): void {
  upstream.unpipe(client)
  client.unpipe(upstream)
  const cut = () => {
    client.destroy()
    upstream.destroy()
  }
  const fallback = setTimeout(cut, CLOSE_FLUSH_MS)
  fallback.unref()
  client.end(CLOSE_FRAMES[code], () => {
    clearTimeout(fallback)
    cut()
  })
}
