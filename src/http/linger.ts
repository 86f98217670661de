// A connection the gateway answered and then half-closed (end()): its peer reads the answer and
// closes its side. One that never does kept the connection, and its max_connections place, for
// ever: no timer of node:http's watches a raw or upgraded socket. It is closed after a linger, as
// nginx's lingering_timeout does.

import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'

/** How long an answered connection may stay for its peer to read the answer and close. */
export const ANSWER_LINGER_MS = 5_000

/** Call once the socket is ended: it is closed for good `ANSWER_LINGER_MS` later unless its peer closed it first. */
export function closeAfterLinger(socket: Duplex): void {
  if (socket.destroyed) return
  const linger = setTimeout(() => socket.destroy(), ANSWER_LINGER_MS).unref()
  socket.once('close', () => clearTimeout(linger))
}

/** The answer is all written: half-close the socket, and close it for good after the linger. */
export function endAfterAnswer(socket: Duplex): void {
  socket.end()
  closeAfterLinger(socket)
}

/**
 * For an answer the gateway gives before the request's body was read (a 413, a 408, a refusal):
 * node:http closes the socket as soon as the answer is written (destroySoon). A client still
 * sending its body met a closed socket, and the reset its next bytes drew discarded what it had
 * received and not yet read, the answer with it: it saw EPIPE or ECONNRESET, never why (nginx's
 * lingering_close is for this). Half-closed instead, until the client closes or the linger ends,
 * with the rest of the body dropped as it comes. Requests pipelined behind it are not served
 * (server.ts: the connection is ended).
 */
export function lingerAtClose(socket: Socket, req: IncomingMessage): void {
  socket.destroySoon = function lingeringClose(this: Socket): void {
    // node:http drops a body only if nothing read it (resOnFinish); one read in part (paused, or
    // piped and unpiped at its refusal) was pushed into until it held 64 KiB, then the socket was
    // no longer read: the client's close unseen, and the linger's end a reset after all. _dump is
    // node:http's own way to drop the rest (the parser skips a dumped request's body).
    ;(req as IncomingMessage & { _dump(): void })._dump()
    endAfterAnswer(this)
  }
}
