// Writing to a client faster than it reads: wait until its socket has room again, or until it has
// gone. Waiting for 'drain' alone waits for ever on a client that went (events.once rejects on
// 'error' only), holding whatever the writer holds (an export's records, a dataset's cursor).

/** A response of node:http or node:http2. */
interface ClientResponse {
  readonly destroyed: boolean
  once(event: 'drain' | 'close', listener: () => void): unknown
  removeListener(event: 'drain' | 'close', listener: () => void): unknown
}

/** True once the client has taken what was written; false if it has gone (or goes first). */
export function drainedOrClosed(res: ClientResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false)
  return new Promise((resolve) => {
    const settle = (drained: boolean) => () => {
      res.removeListener('drain', onDrain)
      res.removeListener('close', onClose)
      resolve(drained)
    }
    const onDrain = settle(true)
    const onClose = settle(false)
    res.once('drain', onDrain)
    res.once('close', onClose)
  })
}
