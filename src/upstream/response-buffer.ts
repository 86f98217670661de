// Bytes of upstream answers held for clients slower than their upstream. Streamed with backpressure
// alone, an answer whose client reads slowly (or, on HTTP/2, opens no flow-control window) paused
// its upstream and held the upstream connection until send_timeout: two HTTP/2 connections of 100
// such streams each held an upstream's whole pool in a probe. Up to server.response_buffer_bytes of
// each answer wait in the gateway's memory instead, so an answer that fits frees its upstream
// connection at once, as nginx's proxy_buffering does; the total across answers is bounded by
// server.response_buffer_total_bytes (per process: each worker counts its own).

export interface ResponseBufferLimits {
  /** Bytes one answer may hold past its client's own buffer (0: none, pause at once). */
  perResponse: number
  /** Bytes all answers together may hold. */
  total: number
}

let heldBytes = 0

/** What all answers hold now (the tests read it). */
export function heldResponseBytes(): number {
  return heldBytes
}

/** One answer's share: taken while its client's buffer is full, given back when it drains or the answer ends. */
export class ResponseBuffer {
  readonly #limits: ResponseBufferLimits
  #held = 0

  constructor(limits: ResponseBufferLimits) {
    this.#limits = limits
  }

  /** True when `bytes` more may wait for the client, so the upstream need not pause; call release() when the client drains. */
  take(bytes: number): boolean {
    if (this.#held + bytes > this.#limits.perResponse || heldBytes + bytes > this.#limits.total) return false
    this.#held += bytes
    heldBytes += bytes
    return true
  }

  get holding(): boolean {
    return this.#held > 0
  }

  release(): void {
    heldBytes -= this.#held
    this.#held = 0
  }
}
