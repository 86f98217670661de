// Binding a listener (the gateway's, the admin API's, a worker's admin socket), and what it says
// of the errors a listening server emits afterwards.
import type { AddressInfo, ListenOptions, Server as NetServer } from 'node:net'
import type { Logger } from '../telemetry/index.ts'

/** Failed accepts in one turn of the event loop past which the failure is taken as lasting. */
const ACCEPT_FAILURES_PER_TURN = 20

/**
 * Listening, the server keeps one 'error' listener that logs: what it emits then is an accept that
 * failed (EMFILE, ENFILE, ENOMEM: the process or host out of descriptors or memory), one connection
 * lost, not the gateway. The bind's one-shot listener was left behind instead: it swallowed the first
 * such error, and the second, with no listener, was an uncaught exception that drained and stopped
 * the gateway (found by two helpers' reviews).
 */
export async function listen(server: NetServer, where: ListenOptions, logger: Logger, name: string): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error) => {
      server.off('listening', listening)
      reject(err)
    }
    const listening = () => {
      server.off('error', failed)
      resolve()
    }
    server.once('error', failed).once('listening', listening).listen(where)
  })
  // libuv tries the accept again at once after each failure, within one turn of the loop: one that
  // keeps failing (out of memory; EMFILE once its reserve descriptor is gone) never ends the turn.
  // Past a few in one turn it is thrown, to the process's last resort (drain, exit 1, a restart).
  let failedThisTurn = 0
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (failedThisTurn++ === 0) setImmediate(() => (failedThisTurn = 0))
    if (failedThisTurn > ACCEPT_FAILURES_PER_TURN) throw err
    logger.error({ listener: name, code: err.code, reason: err.message }, 'a connection could not be accepted')
  })
  return server.address() as AddressInfo
}
