// Binding a listener (the gateway's, the admin API's, a worker's admin socket), and what it says
// of the errors a listening server emits afterwards.
import type { AddressInfo, ListenOptions, Server as NetServer } from 'node:net'
import type { Logger } from '../telemetry/index.ts'

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
  server.on('error', (err: NodeJS.ErrnoException) => logger.error({ listener: name, code: err.code, reason: err.message }, 'a connection could not be accepted'))
  return server.address() as AddressInfo
}
