// The gateway's node:http listener. Node's strict parser stays on (never `insecureHTTPParser`):
// it already refuses most smuggling shapes, and `request-headers.ts` refuses the rest.
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { ERROR_CODES, GatewayError, problemBody, type ErrorCode } from '../errors/index.ts'
import type { ServerConfig } from '../config/index.ts'
import { createContext } from './context.ts'
import { handle } from './pipeline.ts'
import type { GatewayState } from './state.ts'

export interface ClientErrorInfo {
  code: ErrorCode
  status: number
  detail: string
  requestId: string
  peer: string
}

export function createGatewayServer(state: GatewayState, onClientError: (info: ClientErrorInfo) => void = () => {}): Server {
  const settings = state.runtime.config.server
  const server = createServer({
    maxHeaderSize: settings.max_header_bytes,
    insecureHTTPParser: false,
    // Checked in the pipeline instead, so the refusal is a problem+json like every other.
    requireHostHeader: false,
    joinDuplicateHeaders: false,
    // Node checks request and header timeouts on this interval (30 s by default): keep it tight.
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, settings.headers_timeout / 4, settings.request_timeout / 4)),
  })
  applyTimeouts(server, settings)

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    void handle(state, createContext(req, res))
  }
  server.on('request', onRequest)
  // With a listener, Node does not answer `Expect: 100-continue` itself: the forwarder sends
  // 100 Continue only once the request is authorized, so a refused upload is never sent.
  server.on('checkContinue', onRequest)
  // Any other Expect: refused by the pipeline in SPEC's format (Node would answer a bare 417).
  server.on('checkExpectation', onRequest)
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const res = new ServerResponse(req)
    res.assignSocket(socket as Socket)
    res.shouldKeepAlive = false
    socket.on('error', () => socket.destroy())
    void handle(state, createContext(req, res, { socket, head }))
  })
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    writeRawProblem(socket, new GatewayError('bad_path', { detail: 'CONNECT tunnels are not supported.' }))
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const info = answerClientError(err, socket)
    if (info) onClientError(info)
  })
  return server
}

/** Timeouts that a reload may change on a running listener. */
export function applyTimeouts(server: Server, settings: ServerConfig): void {
  server.requestTimeout = settings.request_timeout
  server.headersTimeout = Math.min(settings.headers_timeout, settings.request_timeout)
  server.keepAliveTimeout = settings.keep_alive_timeout
}

/** Requests Node's parser refused before our handler ran: answer in SPEC's format and close. */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): ClientErrorInfo | undefined {
  const inProgress = (socket as { _httpMessage?: ServerResponse })._httpMessage
  if (err.code === 'ECONNRESET' || !socket.writable || inProgress?.headersSent) {
    socket.destroy()
    return undefined
  }
  const error = clientErrorOf(err)
  const requestId = writeRawProblem(socket, error)
  return { code: error.code, status: error.status, detail: error.detail, requestId, peer: (socket as Socket).remoteAddress ?? '' }
}

function clientErrorOf(err: NodeJS.ErrnoException): GatewayError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new GatewayError('headers_too_large', { detail: 'The request headers exceed max_header_bytes.' })
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return new GatewayError('request_timeout', { detail: 'The request was not received in time.' })
    default: {
      const reason = err.message.replace(/^Parse Error:\s*/, '')
      return new GatewayError('bad_request', { detail: `Malformed HTTP request: ${reason}.` })
    }
  }
}

function writeRawProblem(socket: Duplex, error: GatewayError): string {
  const requestId = crypto.randomUUID()
  const body = problemBody(error, requestId)
  socket.end(
    `HTTP/1.1 ${error.status} ${ERROR_CODES[error.code].title}\r\ncontent-type: application/problem+json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
  )
  return requestId
}
