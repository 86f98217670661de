// The admin listener: /healthz and /readyz for orchestrators, /metrics for Prometheus, and the
// admin API under /api/ (bearer auth). It shares the error taxonomy and problem+json answers.
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { warmAuditReads, type ChangeSigner } from '../audit/index.ts'
import { asGatewayError, GatewayError, sendProblem, truncateClientValue } from '../errors/index.ts'
import { answerClientError } from '../gateway/index.ts'
import { drainedOrClosed, hasCookie, inspectHeaders, nodeHttp } from '../http/index.ts'
import type { CredentialInput, SignIn } from '../identity/index.ts'
import type { AuthFailureGuard } from '../limits/index.ts'
import { scrub, type Logger } from '../telemetry/index.ts'
import { unmapIpv4, type AuditConfig, type ServerConfig } from '../config/index.ts'
import type { AdminAuth, AdminCaller, ConsoleSignIn } from './auth.ts'
import { recordAdminChange, type AdminChange } from './change-audit.ts'
import { loadConsoleAssets, type ConsoleAssets } from './console-assets.ts'

const { createServer } = nodeHttp // not imported: http/node-http.ts says why

export interface AdminRequest {
  method: string
  path: string
  query: URLSearchParams
  /** The `{name}` segments of the route's path, as the request gave them. */
  params: Record<string, string>
  /** Parsed JSON body for POST/PUT (undefined when empty). */
  body: unknown
  authorization: string | undefined
  /** Who is asking, and what they may do; null only on an `anyone` route asked with no credential. */
  caller: AdminCaller | null
  /** Where a person signs in to and out of the console, when this config offers it. */
  signInPaths: SignIn['paths'] | null
  /** The caller's address, for the audit records a call writes (adminClientOf). */
  clientIp: string
}

/**
 * Who called the admin API from where, told by server.workers' primary to the worker that answers:
 * a worker's admin listener is a Unix socket only the primary reaches, so the header is believed
 * there, and on a TCP listener (which has the peer's address) never.
 */
export const ADMIN_CLIENT_HEADER = 'x-bouncer-admin-client'

/** The admin caller's address: the socket's peer, or on a worker's Unix socket what the primary says. */
export function adminClientOf(req: IncomingMessage): string {
  const peer = req.socket.remoteAddress
  if (peer !== undefined) return unmapIpv4(peer)
  const told = req.headers[ADMIN_CLIENT_HEADER]
  return typeof told === 'string' && told !== '' ? told : '-'
}

export interface AdminReply {
  status?: number
  body?: unknown
  /** A file to save instead of a JSON body (an export): its lines, streamed. */
  download?: { type: string; filename: string; headers?: Record<string, string>; lines: AsyncIterable<string> | Iterable<string> }
  /** A credential changed (a revocation): recorded in the audit log before the answer (change-audit.ts). */
  change?: AdminChange
}

export interface AdminRoute {
  method: 'GET' | 'POST' | 'DELETE'
  /**
   * `admin`: changes something (reload, verify, revoke), refused to read-only callers; `read`;
   * `anyone`: answers without a credential too (but refuses a wrong one). By default `read` for a
   * GET and `admin` for the rest: an endpoint that changes something cannot be left open to the
   * read-only credential by forgetting to say so (a POST that only reads says `read`).
   */
  access?: 'read' | 'admin' | 'anyone'
  /** Path under /api/, e.g. `routes`; a `{name}` segment takes any one segment (`keys/{id}`). */
  path: string
  handle(request: AdminRequest): AdminReply | Promise<AdminReply>
}

export interface Readiness {
  ready: boolean
  checks: Record<string, string>
}

/** On a 401 from /api/, where a browser signs in to the console (the console shows the button). */
export const SIGN_IN_HINT_HEADER = 'x-bouncer-sign-in'

export interface AdminServerOptions {
  logger: Logger
  /** Read per request: a reload can change the admin credential. */
  auth: () => AdminAuth
  /** Read per request, as auth: null when the config has no admin.roles or no sign_in. */
  consoleSignIn?: () => ConsoleSignIn | null
  /** Read per request, as auth: the config's auth_failures, which counts wrong admin tokens too (null without it). */
  authFailures?: () => AuthFailureGuard | null
  routes: readonly AdminRoute[]
  readiness: () => Readiness
  metrics?: () => Promise<{ contentType: string; body: string }>
  /** Where the admin API's credential changes are recorded (the audit config the gateway started with). */
  auditConfig?: () => AuditConfig
  /** The gateway's checkpoint key, which anchors the admin API's change chain (null: not anchored). */
  changeSigner?: () => ChangeSigner | null
  /** The server section the gateway started with: its client timeouts hold on this listener too (adminListenerOptions). */
  server: ServerConfig
  /**
   * A worker's listener (server.workers), a Unix socket only its primary reaches: the primary bounds
   * the connections, and forwards as many as it admits.
   */
  behindPrimary?: boolean
}

const MAX_ADMIN_BODY = 1_048_576

/** The endpoints outside /api/, for orchestrators and Prometheus: no auth, GET (and HEAD) only. */
export const ADMIN_PROBES = ['/healthz', '/readyz', '/metrics'] as const
const PROBES: ReadonlySet<string> = new Set(ADMIN_PROBES)

/**
 * An admin request's path as a log line or an answer may show it: as sent it may hold a whole API
 * key (the id of DELETE /api/keys/{id}, whose secret SPEC keeps out of problem details) or a token
 * in its query, and any length. Its secrets scrubbed, and bounded.
 */
export function shownAdminPath(url: string | undefined): string {
  return truncateClientValue(scrub(url ?? ''))
}

/**
 * The most connections the admin listener holds at once: scrapers, probes, the console's tabs and the
 * CLI need a handful; one over it is closed as soon as it is accepted, before a byte is read.
 */
export const ADMIN_MAX_CONNECTIONS = 256

/**
 * How the admin listener reads its clients: as the gateway's listener does, by server.headers_timeout,
 * request_timeout and keep_alive_timeout (Node's defaults let a request head trickle for 60 s, checked
 * every 30 s, and a body for 5 minutes), and at most ADMIN_MAX_CONNECTIONS at once. Its port may face the
 * gateway's network: idle and slowloris connections there were unbounded, each a file descriptor of the
 * process that holds every client and upstream connection (the admin probe). Read at start, as admin.listen is.
 */
export function adminListenerOptions(settings: ServerConfig): ServerOptions {
  const headersTimeout = Math.min(settings.headers_timeout, settings.request_timeout)
  return {
    maxHeaderSize: 16_384,
    headersTimeout,
    requestTimeout: settings.request_timeout,
    keepAliveTimeout: settings.keep_alive_timeout,
    // Node checks the two timeouts on this interval (30 s by default), as the gateway's listener does.
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, headersTimeout / 4)),
  }
}

export function createAdminServer(options: AdminServerOptions): Server {
  const table = routeTable(options.routes)
  const consoleAssets = loadConsoleAssets()
  const server = createServer(adminListenerOptions(options.server), (req, res) => {
    const requestId = randomUUID()
    serve(options, table, consoleAssets, req, res).catch((err: unknown) => {
      const error = asGatewayError(err)
      if (error.code === 'internal_error') options.logger.error({ err: error.cause, path: shownAdminPath(req.url) }, 'admin request failed')
      sendProblem(res, error, requestId, req.method === 'HEAD')
    })
  })
  // What Node's parser refuses (headers over 16 KiB, a malformed request line) was answered with
  // Node's bare 431 or 400, no problem body (an adversarial probe): answered as the gateway answers it.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, () => {}))
  if (!options.behindPrimary) server.maxConnections = ADMIN_MAX_CONNECTIONS
  return server
}

interface RouteTable {
  /**
   * The route for a method and path, with its parameters (HEAD: the GET route's); else the methods
   * that path is served by, for a 405's Allow (none: 404).
   */
  find(method: string, path: string): { route: AdminRoute; params: Record<string, string> } | { route: null; allowed: string[] }
}

function routeTable(routes: readonly AdminRoute[]): RouteTable {
  const segmentsOf = (path: string) => path.split('/')
  const patterns = routes.map((route) => ({ route, segments: segmentsOf(route.path) }))
  const paramName = (segment: string) => (segment.startsWith('{') && segment.endsWith('}') ? segment.slice(1, -1) : null)
  function matches(segments: readonly string[], path: readonly string[]): Record<string, string> | null {
    if (segments.length !== path.length) return null
    const params: Record<string, string> = {}
    for (let i = 0; i < segments.length; i++) {
      const name = paramName(segments[i] as string)
      const value = name === null || path[i] === '' ? null : decoded(path[i] as string)
      if (name !== null && value !== null) params[name] = value
      else if (segments[i] !== path[i]) return null
    }
    return params
  }
  return {
    find(method, path) {
      const parts = segmentsOf(path)
      const allowed = new Set<string>()
      for (const { route, segments } of patterns) {
        const params = matches(segments, parts)
        if (params === null) continue
        if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { route, params }
        allowed.add(route.method)
        if (route.method === 'GET') allowed.add('HEAD')
      }
      return { route: null, allowed: [...allowed].sort() }
    },
  }
}

async function serve(options: AdminServerOptions, table: RouteTable, consoleAssets: ConsoleAssets, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now()
  const url = new URL(req.url ?? '/', 'http://admin')
  const method = req.method ?? 'GET'
  if (PROBES.has(url.pathname) && method !== 'GET' && method !== 'HEAD') {
    throw new GatewayError('method_not_allowed', { detail: `${url.pathname} answers GET and HEAD.`, headers: { allow: 'GET, HEAD' } })
  }
  if (url.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' })
  if (url.pathname === '/readyz') {
    const readiness = options.readiness()
    return sendJson(res, readiness.ready ? 200 : 503, { status: readiness.ready ? 'ready' : 'not ready', checks: readiness.checks })
  }
  if (url.pathname === '/metrics' && options.metrics) {
    const { contentType, body } = await options.metrics()
    res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) })
    res.end(body)
    return
  }
  const consoleSignIn = options.consoleSignIn?.() ?? null
  if (consoleSignIn) {
    const answer = await signInEndpoint(consoleSignIn.signIn, url.pathname, () => credentialInput(req, url))
    if (answer) {
      res.writeHead(answer.status, answer.headers)
      res.end(method === 'HEAD' ? undefined : answer.body)
      return
    }
  }
  if (url.pathname.startsWith('/api/')) {
    // Read as the gateway reads a request's headers: two Authorization headers (Node keeps the first,
    // a proxy in front may read the other), two Hosts, both Content-Length and chunked are 400 (the admin probe).
    inspectHeaders(req.rawHeaders)
    const path = url.pathname.slice('/api/'.length).replace(/\/+$/, '')
    // How an answer names the path: DELETE /api/keys/{id} takes a whole key, whose secret a problem's detail must not hold (SPEC).
    const named = shownAdminPath(`/api/${path}`)
    const found = table.find(method, path)
    const presented = req.headers.authorization !== undefined || (consoleSignIn !== null && hasCookie(req.rawHeaders, consoleSignIn.signIn.cookieName))
    // Who changed what: every call but a read is logged with its caller and outcome (an adversarial
    // probe found key and session revocations and reloads left no record of who made them).
    // The audit record of a credential change is written by recordAdminChange (below).
    let caller: AdminCaller | null = null
    const logCall = (status: number, recordedPath?: string) => {
      if (method === 'GET' || method === 'HEAD') return
      options.logger.info({ via: caller?.via ?? null, principal: caller?.principal ?? null, method, path: shownAdminPath(recordedPath ?? url.pathname), status }, 'admin API call')
    }
    try {
      caller = found.route?.access === 'anyone' && !presented ? null : await callerOf(options.auth(), consoleSignIn, req, url, options.authFailures?.() ?? null)
      if (found.route === null) {
        // RFC 9110 §15.5.6: a 405 says which methods the resource has (an adversarial probe found none said).
        if (found.allowed.length === 0) throw new GatewayError('route_not_found', { detail: `No admin endpoint ${method} ${named}.` })
        throw new GatewayError('method_not_allowed', { detail: `No admin endpoint ${method} ${named}: it answers ${found.allowed.join(', ')}.`, headers: { allow: found.allowed.join(', ') } })
      }
      if ((found.route.access ?? (found.route.method === 'GET' ? 'read' : 'admin')) === 'admin' && caller?.access !== 'admin') {
        throw new GatewayError('policy_denied', { detail: `${method} ${named} changes the gateway: it needs admin access, and this credential reads only.` })
      }
      const repeated = repeatedParameter(url.searchParams)
      if (repeated !== null) throw new GatewayError('bad_request', { detail: `The query names ${JSON.stringify(truncateClientValue(repeated, 64))} more than once: each parameter takes one value.` })
      const body = method === 'POST' ? await readJson(req) : undefined
      const signInPaths = consoleSignIn?.signIn.paths ?? null
      const clientIp = adminClientOf(req)
      const reply = await found.route.handle({ method, path, query: url.searchParams, params: found.params, body, authorization: req.headers.authorization, caller, signInPaths, clientIp })
      if (reply.change && options.auditConfig) {
        const context = { caller, method, sourceIp: clientIp, userAgent: req.headers['user-agent'], started }
        await recordAdminChange(options.auditConfig(), options.logger, reply.change, context, options.changeSigner?.() ?? null)
      }
      logCall(reply.download ? 200 : (reply.status ?? 200), reply.change?.path)
      if (reply.download) return sendDownload(res, reply.download, method === 'HEAD')
      return sendJson(res, reply.status ?? 200, reply.body, method === 'HEAD')
    } catch (err) {
      logCall(asGatewayError(err).status)
      throw err
    }
  }
  // The console: its page and files, GET and HEAD only (its data comes from /api/).
  if ((method === 'GET' || method === 'HEAD') && consoleAssets.serve(url.pathname, req, res)) {
    // The page's questions follow within moments: have the audit reads' thread ready for them.
    if (url.pathname === '/') warmAuditReads()
    return
  }
  // The console's page answered POST with 404 "Nothing at /" (an adversarial probe): it is there, for GET and HEAD.
  if (consoleAssets.has(url.pathname)) throw new GatewayError('method_not_allowed', { detail: `${url.pathname} is the console's: it answers GET and HEAD.`, headers: { allow: 'GET, HEAD' } })
  throw new GatewayError('route_not_found', { detail: `Nothing at ${shownAdminPath(url.pathname)} on the admin listener.` })
}

/**
 * Who is asking: a bearer token (admin.token, admin.read_token), else the console's session cookie
 * (its CSRF check: a POST needs this listener's Origin). Without either, a 401 that says where a
 * browser signs in, when it can.
 */
async function callerOf(auth: AdminAuth, consoleSignIn: ConsoleSignIn | null, req: IncomingMessage, url: URL, authFailures: AuthFailureGuard | null): Promise<AdminCaller> {
  const authorization = req.headers.authorization
  if (consoleSignIn === null || authorization !== undefined) return tokenCaller(auth, authorization, authFailures, req)
  const { signIn } = consoleSignIn
  if (hasCookie(req.rawHeaders, signIn.cookieName)) {
    try {
      // A cookie that names no session is a guess, counted as a wrong admin token is (sign-in.ts).
      const input = credentialInput(req, url)
      const { identity } = await (authFailures === null ? signIn.verifier.authenticate(input) : authFailures.guarded(adminClientOf(req), () => signIn.verifier.authenticate(input)))
      return consoleSignIn.callerOf(identity)
    } catch (err) {
      throw withSignInHint(err, signIn)
    }
  }
  throw withSignInHint(new GatewayError('session_required', { detail: `Sign in at ${signIn.paths.signIn}, or send an admin token as a bearer header.` }), signIn)
}

/**
 * The caller an admin token makes. With auth_failures, a wrong token takes one from its address's
 * budget, and an address held back is refused (429) before its token is compared: the admin token
 * is one more credential to guess, and the admin listener may face the same network as the gateway.
 */
function tokenCaller(auth: AdminAuth, authorization: string | undefined, authFailures: AuthFailureGuard | null, req: IncomingMessage): AdminCaller | Promise<AdminCaller> {
  if (authFailures === null || authorization === undefined) return auth.check(authorization)
  return authFailures.guarded(adminClientOf(req), async () => auth.check(authorization))
}

function withSignInHint(err: unknown, signIn: SignIn): unknown {
  if (!(err instanceof GatewayError) || err.status !== 401) return err
  return new GatewayError(err.code, { detail: err.detail, cause: err, headers: { ...err.headers, [SIGN_IN_HINT_HEADER]: signIn.paths.signIn } })
}

/** The console's sign-in endpoints on this listener; null for any other path (its headers not even read). */
function signInEndpoint(signIn: SignIn, path: string, input: () => CredentialInput) {
  if (path === signIn.paths.signIn) return signIn.start(input())
  if (path === signIn.paths.callback) return signIn.callback(input())
  if (path === signIn.paths.signOut) return signIn.signOut(input())
  return null
}

/** The admin listener speaks plain HTTP and trusts no proxy: admin.base_url says otherwise where it has to. */
function credentialInput(req: IncomingMessage, url: URL): CredentialInput {
  return {
    headers: inspectHeaders(req.rawHeaders),
    rawHeaders: req.rawHeaders,
    query: url.search.slice(1),
    socket: req.socket,
    method: req.method ?? 'GET',
    target: req.url ?? '/',
    secure: false,
    viaTrustedProxy: false,
  }
}

/**
 * A query parameter given twice, or null. GET /api/audit and /api/audit/page read the last
 * (`since=1h&since=30d`: 30 days), /api/overview and /api/denials the first (1 hour): the same URL
 * meant two ranges (an adversarial probe). No endpoint takes a list that way; the console never repeats one.
 */
function repeatedParameter(query: URLSearchParams): string | null {
  const seen = new Set<string>()
  for (const name of query.keys()) {
    if (seen.has(name)) return name
    seen.add(name)
  }
  return null
}

/** A path segment's text; null when its escapes are not UTF-8 (no route takes it). */
function decoded(segment: string): string | null {
  try {
    return decodeURIComponent(segment)
  } catch {
    return null
  }
}

/**
 * Writes a download line by line, waiting for the client when its socket is full. A client that goes
 * meanwhile ends it: waiting for 'drain' alone waited for ever then, holding the download's lines
 * (an export's page of records, and the reading of the next) for the life of the process. Lines
 * that fail to come once the status is sent (the log gone mid-export) cut the answer short (sendProblem).
 */
export async function sendDownload(res: ServerResponse, download: NonNullable<AdminReply['download']>, headOnly = false): Promise<void> {
  res.writeHead(200, {
    'content-type': download.type,
    'content-disposition': `attachment; filename="${download.filename}"`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...download.headers,
  })
  if (headOnly) return void res.end()
  for await (const line of download.lines) {
    if (!res.write(line) && !(await drainedOrClosed(res))) return
  }
  res.end()
}

function sendJson(res: ServerResponse, status: number, body: unknown, headOnly = false): void {
  const text = JSON.stringify(body)
  // Audit pages carry what clients sent (paths, user agents, claims): never to be sniffed as HTML.
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
  res.end(headOnly ? undefined : text)
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_ADMIN_BODY) throw new GatewayError('payload_too_large', { detail: 'Admin request bodies are limited to 1 MiB.' })
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return undefined
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new GatewayError('bad_request', { detail: 'The request body is not valid JSON.' })
  }
}
