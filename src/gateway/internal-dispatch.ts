// Runs an MCP tool call's request through the pipeline, in-process: Node's HTTP server and client
// speak over a duplex pair (no socket, no port), so the request is parsed, matched, authorized,
// throttled, forwarded and audited exactly as a client's would be. The connection carries the
// caller the MCP endpoint authenticated (request/tool-call.ts); nothing outside this process can
// open one, so no client can claim to be an internal call.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { duplexPair } from 'node:stream'
import { INTERNAL_CALL, createContext, type InternalConnection, type InternalDispatch, type InternalRequest, type InternalResponse } from '../request/index.ts'
import { handle } from './pipeline.ts'
import type { GatewayState } from './state.ts'

export function createInternalDispatch(state: GatewayState): InternalDispatch {
  const server = createServer({ insecureHTTPParser: false, requireHostHeader: false, joinDuplicateHeaders: false })
  server.on('request', (req: IncomingMessage, res: ServerResponse) => void handle(state, createContext(req, res)))
  return function dispatchInternally(request: InternalRequest): Promise<InternalResponse> {
    const [client, served] = duplexPair()
    ;(served as unknown as InternalConnection)[INTERNAL_CALL] = request
    server.emit('connection', served)
    return new Promise((resolve, reject) => {
      const outgoing = httpRequest({
        method: request.method,
        path: request.target,
        headers: { ...request.headers, host: 'bouncer.internal', connection: 'close', 'content-length': String(request.body?.length ?? 0) },
        // No agent: Node then opens the one connection with createConnection.
        createConnection: () => client as never,
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => {
          client.destroy()
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) })
        })
        res.on('error', reject)
      })
      outgoing.on('error', reject)
      outgoing.end(request.body ?? undefined)
    })
  }
}
