// A connection the gateway answered and then half-closed (end()): its peer reads the answer and
// closes its side. One that never does kept the connection, and its max_connections place, for
// ever: no timer of node:http's watches a raw or upgraded socket. It is closed after a linger, as
// nginx's lingering_timeout does.

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
 * For an answer that goes before the request's body was read (a 413, a 408, a refusal): node:http
 * closes the socket as soon as the answer is written (destroySoon). A client still sending its body
 * met a closed socket, and the reset its next bytes drew discarded what it had received and not yet
 * read, the answer with it: it saw EPIPE or ECONNRESET, never why (nginx's lingering_close is for
 * this). Half-closed instead: the rest of the body is read and dropped (node:http dumps it) until
 * the client closes, or the linger ends.
 */
export function lingerAtClose(socket: Socket): void {
  socket.destroySoon = function lingeringClose(this: Socket): void {
    endAfterAnswer(this)
  }
}
