// The gateway's listener: node:http, or with server.tls node:https, or with server.http2 too a
// node:http2 secure server that takes HTTP/1.1 alongside (allowHTTP1: the same node:http code
// serves those connections). Node's strict parser stays on (never `insecureHTTPParser`): it already
// refuses most smuggling shapes, and `request-headers.ts` refuses the rest.
import type { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { constants as h2constants, createSecureServer, type Http2Session } from 'node:http2'
import type { Server as NetServer, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Server as TlsServer, TLSSocket } from 'node:tls'
import { GatewayError, parserRefusal, sendRawProblem, type ErrorCode } from '../errors/index.ts'
import { closeAfterLinger, nodeHttp } from '../http/index.ts'
import { readTlsMaterial, workerCount, x509Issuers, type Config, type ServerConfig, type TlsConfig, type TlsMaterial } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'
import { createContext, markCut, overHttp2 } from '../request/index.ts'
import { createSessionTracker, http2Options, type GatewayHttp2Response } from './http2.ts'
import { handle } from './pipeline.ts'
import type { GatewayState } from './state.ts'
import type { CrlExpiry } from './crl-expiry.ts'
import { clientAuthOptions, createTlsReloader, secureContextOptions, type TlsReloader } from './tls.ts'

const { createServer, Server: HttpServer, ServerResponse: HttpServerResponse } = nodeHttp // not imported: http/node-http.ts says why


/** A connection's pipelined requests, served one at a time (inTurn). */
const IN_TURN = Symbol('pipelined requests')
interface Turns {
  busy: boolean
  /** Requests parsed and not started: request, response, request, response, … */
  waiting: Array<IncomingMessage | ServerResponse>
  paused: boolean
  next: () => void
}
/** Pipelined requests held, parsed, before the connection is no longer read (two entries each in Turns.waiting). */
const PIPELINED_AHEAD = 16
/**
 * Pipelined requests held, parsed, past which the connection is closed. node:http parses a whole
 * read before the pause above takes effect: one 64 KiB write of minimal GETs was 2,520 requests
 * held (≈ 4 MB of heap; 200 such connections +794 MB, a probe). No client pipelines this deep.
 */
const PIPELINED_MAX = 64

export interface ClientErrorInfo {
  code: ErrorCode
  status: number
  detail: string
  requestId: string
  peer: string
}

/** The gateway's listener, whatever it speaks: what starting, reloading and draining it needs. */
export interface GatewayServer {
  /** What `listen()` is called on. */
  readonly server: NetServer
  /** TLS on this listener (its URL is https://). */
  readonly secure: boolean
  /** The certificate it serves now (null without TLS): /metrics says which, and until when. */
  certificate(): X509Certificate | null
  /** When each CA's CRL of server.tls.client_crl goes out of date: /metrics says so too. */
  crlExpiries(): readonly CrlExpiry[]
  /** Applies a reloaded config's server settings: timeouts, the connection bound, the TLS files as the reload read them (and server.workers' new ticket keys). */
  reconfigure(settings: ServerConfig, tlsMaterial: TlsMaterial | null, ticketKeys?: Buffer): void
  /** Stops accepting; idle HTTP/2 sessions get GOAWAY, and the busy ones once their streams end. */
  close(): void
  closeIdleConnections(): void
  closeAllConnections(): void
}

export interface GatewayServerOptions {
  /** Returns a promise when the raw answer must wait for the record's commit (audit.durability: sync). */
  onClientError?: (info: ClientErrorInfo) => Promise<void> | void
  /** Called when server.tls's files change on disk: the instance reloads (as on SIGHUP). */
  onTlsFilesChanged?: () => void
  /** server.workers: the session ticket keys every worker shares (tls.ts secureContextOptions). */
  ticketKeys?: Buffer
  /** Whether this listener logs client CRLs going out of date (default true; with server.workers, the first worker alone). */
  warnsOfCrls?: boolean
}

export function createGatewayServer(state: GatewayState, options: GatewayServerOptions = {}): GatewayServer {
  const onClientError = options.onClientError ?? (() => {})
  const settings = state.runtime.config.server
  const listener = createListener(settings, options.ticketKeys)
  const server = listener.server
  applyTimeouts(server, settings)
  closeIdleAfterReading(server)
  warnIfFileLimitTooLow(state.runtime.config, state.logger)
  reportRefusedConnections(server, state.logger, () => state.metrics.countRefusedConnection())

  const cutIfStalled = function (this: ServerResponse, socket: Socket) {
    if (socket.writableLength === 0) return // quiet (a slow upstream, a long poll), not stalled
    state.logger.debug({ peer: socket.remoteAddress, unsent_bytes: socket.writableLength }, 'send_timeout: closing a connection whose client stopped reading')
    markCut(this, 'send_timeout') // its audit record says so
    socket.destroy()
  }
  // HTTP/2: a stream's timeout fires when nothing moved on it; only the stream is cut, not its session.
  const cutStreamIfStalled = function (this: GatewayHttp2Response) {
    const stream = this.stream
    if (stream.writableLength === 0) return
    state.logger.debug({ peer: stream.session?.socket?.remoteAddress, unsent_bytes: stream.writableLength }, 'send_timeout: resetting a stream whose client stopped reading')
    markCut(this, 'send_timeout')
    stream.close(h2constants.NGHTTP2_CANCEL)
    // A client that stopped reading the whole connection does not take the RST_STREAM either: the
    // stream would wait to close, its request in flight, for good. Destroyed, it ends here.
    stream.destroy()
  }
  const serve = (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // send_timeout. A client that stops reading pauses the upstream (backpressure), and undici's
    // body timeout does not run while paused: without this the connection, its upstream pool slot
    // and the buffered bytes would be held forever. Node's socket timeout counts every byte the
    // kernel takes as progress (net.Socket#_onTimeout), so only a true stall fires it; Node
    // re-arms its keep-alive timeout once the response is done. One timer per response, as Node
    // already arms one per keep-alive response: bench CPU µs/req with and without it were within
    // noise (bare 58.3 / 59.2, full pipeline 98.0 / 100.8).
    res.setTimeout(state.runtime.config.server.send_timeout)
    res.on('timeout', overHttp2(req) ? cutStreamIfStalled : cutIfStalled)
    if (upgradeIgnored(req)) res.shouldKeepAlive = false
    return handle(state, createContext(req, res))
  }
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (overHttp2(req)) void serve(req, res) // streams run side by side, 100 at most
    else inTurn(req.socket, req, res)
  }
  /**
   * HTTP/1.1 pipelining: node:http emits every request it parses at once and only holds their
   * answers in order, so one connection's pipelined requests all ran together: 20,000 GETs (580 KB)
   * on one connection were 20,000 requests in flight (+190 MB), and 2,000 took the whole upstream
   * pool from other clients. A connection's requests are served one after another, as nginx does;
   * past PIPELINED_AHEAD parsed and waiting, the connection is not read until they drain. A
   * connection that does not pipeline pays one promise per request.
   */
  const inTurn = (socket: Socket & { [IN_TURN]?: Turns }, req: IncomingMessage, res: ServerResponse) => {
    // The rest of a read whose connection was closed below (node:http goes on parsing it), or one
    // pipelined behind a refusal whose connection lingers, ended (http/linger.ts): dropped, as
    // RFC 9112 §9.6 asks of a connection the server is closing.
    if (socket.destroyed || socket.writableEnded) return
    let turns = socket[IN_TURN]
    if (turns === undefined) {
      const line: Turns = { busy: false, waiting: [], paused: false, next: () => nextTurn(socket, line) }
      turns = socket[IN_TURN] = line
      // Requests parsed and never started are dropped with their connection (nginx reads a
      // pipelined request only when it gets to it).
      socket.once('close', () => (line.waiting.length = 0))
    }
    if (!turns.busy) {
      turns.busy = true
      void serve(req, res).then(turns.next, turns.next)
      return
    }
    turns.waiting.push(req, res)
    if (turns.waiting.length > 2 * PIPELINED_MAX) {
      state.logger.debug({ peer: socket.remoteAddress, pipelined_max: PIPELINED_MAX }, 'closing a connection that pipelined more requests than are held')
      socket.destroy()
      return
    }
    if (turns.waiting.length >= 2 * PIPELINED_AHEAD) {
      // Again each time: node:http resumes a connection it paused itself once an answer is out.
      turns.paused = true
      socket.pause()
    }
  }
  const nextTurn = (socket: Socket, turns: Turns) => {
    if (turns.waiting.length === 0) {
      turns.busy = false
      return
    }
    const req = turns.waiting.shift() as IncomingMessage
    const res = turns.waiting.shift() as ServerResponse
    if (turns.paused && turns.waiting.length < PIPELINED_AHEAD) {
      turns.paused = false
      socket.resume()
    }
    void serve(req, res).then(turns.next, turns.next)
  }
  server.on('request', onRequest)
  // With a listener, Node does not answer `Expect: 100-continue` itself: the forwarder sends
  // 100 Continue only once the request is authorized, so a refused upload is never sent.
  server.on('checkContinue', onRequest)
  // Any other Expect: refused by the pipeline in SPEC's format (Node would answer a bare 417).
  server.on('checkExpectation', onRequest)
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    destroyOnError(socket)
    // Pipelined behind a refusal whose connection lingers (ended): not a request to serve.
    if (socket.writableEnded) return void socket.destroy()
    // From the handshake on, not only once it is a tunnel: one still waiting for its upstream at the
    // shutdown's deadline was not cut, and its request went unrecorded. (node:http no longer counts
    // the socket among its connections: a request pipelined ahead of the handshake is cut with it.)
    state.tunnels.add(socket)
    socket.once('close', () => state.tunnels.delete(socket))
    // A handshake pipelined behind requests still being answered: node:http emits it at once, and
    // the socket is their answers' until they are out (assigned here, Node threw
    // ERR_HTTP_SOCKET_ASSIGNED, uncaught: the gateway ended). It waits its turn, as they do.
    afterAnswersAhead(socket, () => {
      const res = new HttpServerResponse(req)
      res.assignSocket(socket as Socket)
      res.shouldKeepAlive = false
      void handle(state, createContext(req, res, { socket, head }))
    })
  })
  server.on('connect', (req: IncomingMessage, socketOrResponse: Duplex | ServerResponse) => {
    // HTTP/2's CONNECT is a stream with a response: the pipeline refuses it and audits it.
    if (overHttp2(req)) return onRequest(req, socketOrResponse as ServerResponse)
    const socket = socketOrResponse as Duplex
    destroyOnError(socket)
    if (socket.writableEnded) return void socket.destroy()
    // Refused before the pipeline, and audited as the parser's refusals are: every request has its
    // record. After the answers of requests pipelined ahead of it, as theirs came in order.
    const error = new GatewayError('bad_path', { detail: 'CONNECT tunnels are not supported.' })
    afterAnswersAhead(socket, () => answerRawAfterRecord(socket, error, req.socket.remoteAddress ?? '', onClientError))
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A TLS client asking to renegotiate (refused: secureHandshakes) is no request: answered in HTTP
    // and recorded as one, it had a 400 "Malformed HTTP request" written into its handshake.
    if (err.code === 'ERR_TLS_RENEGOTIATION_DISABLED') return refuseRenegotiation(socket as TLSSocket, state.logger)
    answerClientError(err, socket, onClientError)
  })

  let tls: TlsReloader | null = null
  if (settings.tls) {
    tls = createTlsReloader(server as unknown as TlsServer, settings.tls, listener.material as TlsMaterial, {
      logger: state.logger,
      warnsOfCrls: options.warnsOfCrls,
      onFilesChanged: options.onTlsFilesChanged,
      alsoWatched: () => x509Issuers(state.runtime.config).flatMap((issuer) => (issuer.ca === undefined ? [] : [issuer.ca])),
      // A reload swaps its runtime in before it applies its TLS files: these are the reload's.
      issuerCas: () => state.runtime.certificateIssuers.flatMap((issuer) => issuer.cas),
    })
    secureHandshakes(server, state.logger)
  }
  const sessions = listener.http2 ? createSessionTracker(() => state.runtime.config.server) : null
  if (sessions) {
    server.on('session', (session: Http2Session) => sessions.add(session))
    // A session nghttp2 ended for breaking its limits (a reset flood, invalid frames): debug only,
    // as any client can cause it; counted, so that a flood is seen.
    server.on('sessionError', (err: NodeJS.ErrnoException, session: Http2Session) => {
      state.logger.debug({ peer: session.socket?.remoteAddress, reason: err.message }, 'HTTP/2 session ended')
      state.metrics.countHttp2SessionEnded(sessionEndReason(err))
    })
  }

  return {
    server,
    secure: settings.tls !== undefined,
    certificate: () => tls?.certificate() ?? null,
    crlExpiries: () => tls?.crlExpiries() ?? [],
    reconfigure(next, tlsMaterial, ticketKeys) {
      applyTimeouts(server, next)
      if (tls && next.tls && tlsMaterial) tls.apply(next.tls, tlsMaterial, ticketKeys)
    },
    close() {
      tls?.stop()
      server.close()
    },
    closeIdleConnections() {
      listener.closeIdleConnections()
      sessions?.closeIdle()
    },
    closeAllConnections() {
      // node:http2's server has no closeAllConnections; node:http's works on the HTTP/1.1
      // connections it tracks for it (allowHTTP1), and on node:https's.
      HttpServer.prototype.closeAllConnections.call(server as unknown as Server)
      sessions?.destroyAll()
    },
  }
}

/** Marks a request whose Upgrade was not taken (takesUpgrade): set on those alone, read as absent on any other. */
const IGNORED_UPGRADE = Symbol('ignoredUpgrade')

/**
 * node:http's choice of an Upgrade (a request it parsed with Upgrade and Connection: upgrade; CONNECT
 * is taken before it asks, and stays its own event, refused there): only WebSocket. Any other (h2c:
 * `curl --http2 http://…`, Java's HttpClient on every http:// URL) is served as the HTTP/1.1 request
 * it also is, as RFC 9110 §7.8 allows and nginx does: handed over as a switch, it was refused 400 on
 * every route, its body never read. Node's `shouldUpgradeCallback`, asked only of a request that
 * asks to switch, where a request class whose `upgrade` was an accessor cost every request a call.
 */
function takesUpgrade(req: IncomingMessage): boolean {
  if (req.headers.upgrade?.toLowerCase() === 'websocket') return true
  ;(req as IncomingMessage & { [IGNORED_UPGRADE]?: true })[IGNORED_UPGRADE] = true
  return false
}

/**
 * A request whose Upgrade was not taken. node:http's parser still reads what follows its head (its
 * body's end) as the other protocol: a request pipelined behind it was dropped unanswered, and the
 * next one's answer read as its. Its connection closes after the answer.
 */
function upgradeIgnored(req: IncomingMessage): boolean {
  return (req as IncomingMessage & { [IGNORED_UPGRADE]?: true })[IGNORED_UPGRADE] === true
}

/** The options every HTTP/1.1 connection is read with, on any listener. */
function http1Options(settings: ServerConfig): ServerOptions {
  return {
    maxHeaderSize: settings.max_header_bytes,
    insecureHTTPParser: false,
    // Checked in the pipeline instead, so the refusal is a problem+json like every other.
    requireHostHeader: false,
    joinDuplicateHeaders: false,
    // Node checks request and header timeouts on this interval (30 s by default): keep it tight.
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, settings.headers_timeout / 4, settings.request_timeout / 4)),
  }
}

/** node:http, node:https, or node:http2 with HTTP/1.1 alongside. */
function createListener(settings: ServerConfig, ticketKeys: Buffer | undefined): { server: Server; http2: boolean; material: TlsMaterial | null; closeIdleConnections(): void } {
  const listener = createNodeListener(settings, ticketKeys)
  // Node also caps an HTTP/1.1 head at 1,000 header lines, refused as a header overflow (431 "exceed
  // max_header_bytes") at ~8 KB whatever max_header_bytes said. The size is the limit (nginx's):
  // Node counts a line's name and value, at least 1 byte, so this count never binds first. Not a
  // createServer option: a property its parser reads per connection (node:http2's HTTP/1.1 too).
  listener.server.maxHeadersCount = settings.max_header_bytes
  // Set on the server, not passed as an option: node:http2 sets its own over the option (allowHTTP1).
  ;(listener.server as Server & { shouldUpgradeCallback: (req: IncomingMessage) => boolean }).shouldUpgradeCallback = takesUpgrade
  return listener
}

function createNodeListener(settings: ServerConfig, ticketKeys: Buffer | undefined): { server: Server; http2: boolean; material: TlsMaterial | null; closeIdleConnections(): void } {
  if (!settings.tls) {
    const server = createServer(http1Options(settings))
    return { server, http2: false, material: null, closeIdleConnections: () => server.closeIdleConnections() }
  }
  const material = loadTls(settings.tls)
  const tlsOptions = {
    ...secureContextOptions(settings.tls, material, ticketKeys),
    ...clientAuthOptions(settings.tls),
    // A slow handshake holds a connection as a slow request head does.
    handshakeTimeout: settings.headers_timeout,
  }
  if (!settings.http2) {
    const server = createHttpsServer({ ...http1Options(settings), ...tlsOptions, ALPNProtocols: ['http/1.1'] }) as unknown as Server
    return { server, http2: false, material, closeIdleConnections: () => server.closeIdleConnections() }
  }
  const server = createSecureServer({ ...http1Options(settings), ...tlsOptions, ...http2Options(settings) } as Parameters<typeof createSecureServer>[0])
  // node:http2 closes idle HTTP/1.1 connections too (allowHTTP1), though its types do not say so.
  const idle = server as unknown as { closeIdleConnections(): void }
  return { server: server as unknown as Server, http2: true, material, closeIdleConnections: () => idle.closeIdleConnections() }
}

/** `bouncer check` read these files already; one replaced in between fails the start here. */
function loadTls(tls: TlsConfig) {
  const read = readTlsMaterial(tls)
  if (!read.ok) throw new Error(`server.tls cannot be loaded: ${read.errors.map((e) => e.message).join('; ')}`)
  return read.material
}

/**
 * Handshakes that fail (a client that does not trust the certificate, a scanner, with
 * client_auth: require a missing or bad client certificate) close the connection; they are logged
 * at debug level only, as anyone can cause them. A TLS connection is never renegotiated: it would
 * let a client swap certificates mid-connection, and is a known CPU sink (CVE-2011-1473).
 */
function secureHandshakes(server: Server, logger: Logger): void {
  // node:http2's server passes handshake errors to 'clientError', which would answer them in HTTP.
  server.removeAllListeners('tlsClientError')
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    logger.debug({ peer: socket.remoteAddress, reason: err.code ?? err.message }, 'TLS handshake failed')
    socket.destroy()
  })
  server.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation())
}

/**
 * A label for why a session ended: nghttp2's own words for its errors ("Protocol error", "Flow
 * control error", "Flooded"), a bounded set; any other error by its code (a socket's ECONNRESET).
 */
function sessionEndReason(err: NodeJS.ErrnoException): string {
  return err.code === 'ERR_HTTP2_ERROR' ? err.message : (err.code ?? 'error')
}

/** A renegotiation asked for on an HTTP/1.1 connection: the connection is closed, as node:http2 ends an h2 session (logged there). */
function refuseRenegotiation(socket: TLSSocket, logger: Logger): void {
  logger.debug({ peer: socket.remoteAddress }, 'TLS renegotiation refused: connection closed')
  socket.destroy()
}

/** Node checks its timeouts every second at most (connectionsCheckingInterval): its 408 comes after the pipeline's. */
const REQUEST_TIMEOUT_BACKSTOP_MS = 1_000

/** Timeouts and the connection bound: what a reload may change on a running listener. */
function applyTimeouts(server: Server, settings: ServerConfig): void {
  // The pipeline answers a request's own 408 at request_timeout from its head's end; Node counts from
  // the request's first byte, so its check comes headers_timeout and a second later at the
  // earliest: the backstop for requests the pipeline has not started (pipelined, waiting).
  server.requestTimeout = settings.request_timeout + Math.min(settings.headers_timeout, settings.request_timeout) + REQUEST_TIMEOUT_BACKSTOP_MS
  server.headersTimeout = Math.min(settings.headers_timeout, settings.request_timeout)
  server.keepAliveTimeout = settings.keep_alive_timeout
  // Node closes a connection over the bound as soon as it is accepted, before reading a byte: a
  // flood costs no parser, no timer and no file descriptor beyond the bound.
  server.maxConnections = settings.max_connections
  // The TLS handshake's bound (README: headers_timeout) was set once, when the listener was made.
  setHandshakeTimeout(server, settings.headers_timeout)
}

/**
 * node:tls reads a listener's handshake timeout at each new connection, from a symbol of its own
 * that no option or setter reaches after the listener is made: found by its description (a plain
 * HTTP listener has none). crt2-handshake-timeout-reload.test.ts fails should Node rename it.
 */
function setHandshakeTimeout(server: Server, ms: number): void {
  const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === 'handshake-timeout')
  if (key !== undefined) (server as unknown as Record<symbol, unknown>)[key] = ms
}

/**
 * keep_alive_timeout, for a request already waiting in the kernel. Node closes an idle HTTP/1.1
 * connection from a timer, and after a stall (a long GC, a host that gives the process no CPU) the
 * loop runs its expired timers before it reads the sockets: a request the client sent well within
 * the timeout, still unread, was destroyed with its connection, and the kernel answered it with a
 * reset (the client's ECONNRESET, no record: bench/README.md "Soak", 74 in 352,572 requests). The
 * close waits for the next turn of the loop, whose poll reads what came: a connection that read
 * nothing since is closed as before; one whose request began has had Node's own timeouts re-armed
 * (headers_timeout for a head still coming). Only idle connections: one with a response under way
 * is send_timeout's (its listener on the response), and Node does not emit this for upgraded ones.
 */
function closeIdleAfterReading(server: Server): void {
  server.on('timeout', (socket: Socket | Http2Session) => {
    // Node's default for what is not an HTTP/1.1 connection (node:http2 emits its sessions' here).
    if (!('bytesRead' in socket)) return void socket.destroy()
    if ((socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage) return
    const read = socket.bytesRead
    setImmediate(() => {
      if (!socket.destroyed && socket.bytesRead === read) socket.destroy()
    })
  })
}

const REFUSAL_REPORT_INTERVAL_MS = 10_000

/** Connections closed at max_connections: logged at most every 10 s, so a flood does not flood the log too. */
/**
 * The first refusal is logged at once; those that follow within the interval are logged together
 * when it ends (a flood shorter than the interval was logged as 1: a probe). Each is counted.
 */
function reportRefusedConnections(server: Server, logger: Logger, counted: () => void): void {
  let refused = 0
  let lastReport = -Infinity
  let pending: NodeJS.Timeout | null = null
  const report = () => {
    pending = null
    lastReport = performance.now()
    if (refused === 0) return
    logger.warn({ refused, max_connections: server.maxConnections }, 'connection limit reached: new connections are closed unanswered')
    refused = 0
  }
  server.on('drop', () => {
    refused++
    counted()
    if (pending !== null) return
    const wait = lastReport + REFUSAL_REPORT_INTERVAL_MS - performance.now()
    if (wait <= 0) report()
    else pending = setTimeout(report, wait).unref()
  })
}

/** Descriptors besides client connections and upstream pools: listeners, admin, audit, logs, JWKS fetches, Redis. */
const SPARE_FILE_DESCRIPTORS = 64

/**
 * Every client connection and every upstream connection is a file descriptor. A max_connections the
 * process cannot open ends in EMFILE, where upstream connects and audit writes fail for clients
 * already admitted; under the limit, a flood meets max_connections first. server.workers each
 * admit max_connections and hold their own pools, in one process: its limit is for all of them.
 */
function warnIfFileLimitTooLow(config: Config, logger: Logger): void {
  const limit = openFileLimit()
  if (limit === null) return
  const workers = workerCount(config.server)
  const pools = config.upstreams.reduce((sum, upstream) => sum + upstream.max_connections, 0) + config.datasources.reduce((sum, source) => sum + (source.type === 'postgres' ? source.max_connections : 0), 0)
  const needed = workers * (config.server.max_connections + pools) + SPARE_FILE_DESCRIPTORS
  if (needed <= limit) return
  logger.warn(
    { open_file_limit: limit, workers, max_connections: config.server.max_connections, upstream_pools: pools, spare: SPARE_FILE_DESCRIPTORS },
    `${workers > 1 ? `${workers} workers × ` : ''}(server.max_connections + upstream and datasource pools) + ${SPARE_FILE_DESCRIPTORS} spare need ${needed} file descriptors but the open-file limit is ${limit}: raise it (ulimit -n, LimitNOFILE) or lower max_connections`,
  )
}

/** The process's open-file limit (Node raises the soft limit to the hard one at start), where the OS says (Linux). */
function openFileLimit(): number | null {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return match ? Number(match[1]) : null
  } catch {
    return null
  }
}

/**
 * Requests Node's parser refused before our handler ran: answer in SPEC's format and close. The
 * admin listeners answer theirs so too (`recorded` a no-op: no audit record for them).
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, recorded: (info: ClientErrorInfo) => void): void {
  const inProgress = pendingResponse(socket)
  // A request already in the pipeline whose body broke off (the client's FIN before its
  // Content-Length: the parser's error at the end of input) is recorded there, under its own id: a
  // raw 400 here made a second answer and a second record (a probe). A malformed body (a bad chunk
  // size) and the timeouts are still answered here.
  // The request being read is the in-progress response's own only while that request is
  // incomplete: with pipelining, _httpMessage is the first outstanding response (a review).
  const reading = inProgress?.req !== undefined && !inProgress.req.complete
  if (err.code === 'ECONNRESET' || !socket.writable || (reading && (inProgress.headersSent || err.code === 'HPE_INVALID_EOF_STATE'))) {
    socket.destroy()
    return
  }
  // Refused already, its answer waiting (a sync commit, or requests ahead of it): the parser stays
  // in error and says so again for every later chunk and for the peer's FIN. Each made a record, a
  // count and an answer of its own (a review: one malformed request, two records).
  if (refusing.has(socket)) return
  if (reading && err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    // Node's backstop for a request the pipeline holds, whose own 408 was held up (a sync audit
    // commit): its record says 408 (pipeline.ts). The connection goes at once: a raw answer would
    // only half-close it, and the body would go on reaching the pipeline and the upstream.
    markCut(inProgress, 'request_timeout')
    socket.destroy()
    return
  }
  const error = parserRefusal(err)
  refusing.add(socket)
  const answer = (): void => {
    // Refused behind earlier requests still being answered (pipelining): after their answers, as
    // written at once it was read as the first one's, whose own answer then went nowhere (a review).
    const pending = reading ? null : pendingResponse(socket)
    if (pending) {
      pending.once('close', answer)
      return
    }
    if (!socket.writable) return // gone meanwhile: nothing answered, nothing to record
    answerRawAfterRecord(socket, error, (socket as Socket).remoteAddress ?? '', recorded)
  }
  answer()
}

/** Connections whose parser's refusal is answered or on its way: one refusal each. */
const refusing = new WeakSet<Duplex>()

/**
 * A refusal before the pipeline: its record, then its raw answer. Under audit.durability: sync the
 * answer waits for the commit, as every answer of the pipeline does (it was written first, and its
 * record queued: a 431 or a parser's 400 answered with no record committed, an adversarial probe).
 */
function answerRawAfterRecord(socket: Duplex, error: GatewayError, peer: string, recorded: (info: ClientErrorInfo) => Promise<void> | void): void {
  const requestId = crypto.randomUUID()
  const committed = recorded({ code: error.code, status: error.status, detail: error.detail, requestId, peer })
  if (committed instanceof Promise) {
    // A record lost on its way (the audit worker ended) still gets its refusal: it serves nothing.
    const answer = () => {
      if (socket.writable) writeRawProblem(socket, error, requestId)
    }
    void committed.then(answer, answer)
  } else {
    writeRawProblem(socket, error, requestId)
  }
}

/**
 * node:http hands an upgraded or CONNECT socket over with no 'error' listener of its own: a client's
 * TCP reset on it (while its 400 lingered, or its handshake waited its turn) was an uncaught
 * ECONNRESET, and the gateway ended (the front-door probe).
 */
function destroyOnError(socket: Duplex): void {
  socket.on('error', () => socket.destroy())
}

/**
 * `then`, once the connection has sent the answers of the requests pipelined ahead (the 'close' of
 * the response it is sending, again until none is left); never when the client leaves first, as
 * pipelined requests not started are dropped with their connection.
 */
function afterAnswersAhead(socket: Duplex, then: () => void): void {
  const ahead = pendingResponse(socket)
  if (ahead === null) return then()
  ahead.once('close', () => {
    if (!socket.destroyed) afterAnswersAhead(socket, then)
  })
}

/** The response a connection is sending or will send next (Node's own field: pipelined ones queue behind it). */
function pendingResponse(socket: Duplex): ServerResponse | null {
  return (socket as { _httpMessage?: ServerResponse | null })._httpMessage ?? null
}


/** The problem on the raw socket (errors/respond.ts), and the connection closed once the peer has read it. */
function writeRawProblem(socket: Duplex, error: GatewayError, requestId: string): void {
  sendRawProblem(socket, error, requestId)
  // end() only half-closes: a peer that never closes its side kept the connection, and its
  // max_connections slot, forever (measured: 50 of 50 still open 8 s after their 408).
  closeAfterLinger(socket)
}
