// Bytes of upstream answers held for clients slower than their upstream. Streamed with backpressure
// alone, an answer whose client reads slowly (or, on HTTP/2, opens no flow-control window) paused
// its upstream and held the upstream connection until send_timeout: two HTTP/2 connections of 100
// such streams each held an upstream's whole pool in a probe. Up to server.response_buffer_bytes of
// each answer wait in the gateway's memory instead, so an answer that fits frees its upstream
// connection at once, as nginx's proxy_buffering does; the total across answers is bounded by
// server.response_buffer_total_bytes (per process: each worker counts its own). The answers of one
// connection share its response_buffer_bytes: an HTTP/2 connection carries up to 100 at once, and
// one that opened 100 downloads and read none of them held 21.6 MB (an HTTP/1.1 connection, whose
// answers go one at a time: 256 KB), three such took the whole total from every other client.

export interface ResponseBufferLimits {
  /** Bytes one connection's answers may hold past its client's own buffer (0: none, pause at once). */
  perResponse: number
  /** Bytes all answers together may hold. */
  total: number
}

let heldBytes = 0
/** What each client connection's answers hold now (its TLS or TCP socket; an HTTP/2 stream's is its session's). */
const heldByConnection = new WeakMap<object, number>()

/** What all answers hold now (the tests read it). */
export function heldResponseBytes(): number {
  return heldBytes
}

/** One answer's share: taken while its client's buffer is full, given back when it drains or the answer ends. */
export class ResponseBuffer {
  readonly #limits: ResponseBufferLimits
  readonly #connection: object
  #held = 0

  /** `connection`: the client connection the answer goes out on (RequestContext.connection). */
  constructor(limits: ResponseBufferLimits, connection: object) {
    this.#limits = limits
    this.#connection = connection
  }

  /** True when `bytes` more may wait for the client, so the upstream need not pause; call release() when the client drains. */
  take(bytes: number): boolean {
    const connectionHeld = heldByConnection.get(this.#connection) ?? 0
    if (connectionHeld + bytes > this.#limits.perResponse || heldBytes + bytes > this.#limits.total) return false
    this.#held += bytes
    heldBytes += bytes
    heldByConnection.set(this.#connection, connectionHeld + bytes)
    return true
  }

  get holding(): boolean {
    return this.#held > 0
  }

  release(): void {
    if (this.#held === 0) return
    heldBytes -= this.#held
    heldByConnection.set(this.#connection, (heldByConnection.get(this.#connection) ?? 0) - this.#held)
    this.#held = 0
  }
}
