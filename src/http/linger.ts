// A connection the gateway answered and then half-closed (end()): its peer reads the answer and
// closes its side. One that never does kept the connection, and its max_connections place, for
// ever: no timer of node:http's watches a raw or upgraded socket. It is closed after a linger, as
// nginx's lingering_timeout does.

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
