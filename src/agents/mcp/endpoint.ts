// The MCP endpoint (mcp.path) and its protected-resource metadata, as built-in routes' backends.
// Streamable HTTP is the SDK's (`createMcpHandler`): 2026-07-28 clients are served per request
// (`server/discover`, the per-request envelope), 2025-era clients (2025-06-18, 2025-11-25) by the
// SDK's stateless legacy serving. Our part is the resource server in front of it (who calls, from
// which origin) and the per-caller server instance behind it (protocol.ts).
import { Readable } from 'node:stream'
import { createMcpHandler, type McpHttpHandler } from '@modelcontextprotocol/server'
import type { AccessControl, RoutePolicy } from '../../access/index.ts'
import type { Config, DatasetConfig, McpConfig, RoutePattern } from '../../config/index.ts'
import { GatewayError } from '../../errors/index.ts'
import { corsPolicy, drainedOrClosed, hasBody, PUBLIC_DOCUMENT_CORS, type CorsPolicy } from '../../http/index.ts'
import { rawHeader, type IssuerKeys, type OwnTokens } from '../../identity/index.ts'
import { compileRouteLimits, enforceLimits, type AuthFailureGuard, type Limiter, type RouteLimits } from '../../limits/index.ts'
import { bodyTooLarge, documentBackend, nothingServed, readWholeBody, type Backend, type Caller, type HoldBody, type InternalDispatch, type OpenTunnels, type RecordAudit, type RequestContext, type Served } from '../../request/index.ts'
import { traceparentOf, type Logger, type Tracing } from '../../telemetry/index.ts'
import type { ApprovalStore } from './approvals.ts'
import { createCatalog, routeToolEntry, type Catalog, type ToolEntry } from './catalog.ts'
import { buildServer, type LimitRefusal, type ProtocolDeps } from './protocol.ts'
import type { EndedSessions } from './ended-sessions.ts'
import { createLegacySessions, type LegacySessions, type McpServing } from './sessions.ts'
import type { SessionSeal } from './session-seal.ts'
import { createResourceServer, type ResourceServer } from './resource-server.ts'
import { routeToolSource } from './route-tools.ts'
import type { McpServerRegistry, UpstreamMcpServer } from './servers.ts'

/** Any origin may read the metadata: browser-based MCP clients discover the authorization server there. */
const METADATA_HEADERS = { 'content-type': 'application/json', 'cache-control': 'max-age=300', 'access-control-allow-origin': '*' }

/** What the gateway tells the MCP endpoint about a route a tool names. */
export interface ToolRoute {
  readonly id: string
  readonly methods: readonly string[]
  readonly pattern: RoutePattern
  readonly public: boolean
  readonly policy: RoutePolicy | undefined
  readonly limits: RouteLimits | null
  /** The route's dataset, whose parameters its tool takes. */
  readonly dataset: DatasetConfig | null
}

export interface McpCompileDeps {
  issuerKeys: ReadonlyMap<string, IssuerKeys>
  /** Their registry's count of keys found withdrawn, which empties the verified-token cache (IssuerRegistry.keyRemovalCount). */
  keyRemovalCount: () => number
  /** The gateway's own tokens (token exchange), trusted here too when they name this resource. */
  own?: OwnTokens | null
  access: AccessControl
  routes: ReadonlyMap<string, ToolRoute>
  /** The runtime's limits, for a call held for approval (it never reaches the pipeline). */
  limiter: Limiter
  /** auth_failures: agents whose tokens keep failing are held back here as on every route. */
  authFailures: AuthFailureGuard | null
  dispatch: InternalDispatch
  audit: RecordAudit
  servers: McpServerRegistry
  approvals: (path: string) => ApprovalStore
  /** The 2025-era sessions at an mcp.path, kept across reloads (registry.ts). */
  sessions: (path: string, create: (seal: SessionSeal, ended: EndedSessions) => LegacySessions) => LegacySessions
  logger: Logger
  /** Spans, when telemetry.otlp_endpoint is set (a call to an aggregated server's tool has one). */
  tracing: Tracing | null
  holdBody: HoldBody
}

export interface McpBuiltInRoute {
  id: string
  path: string
  methods: string[]
  backend: Backend
  /** The endpoint's CORS, answered by the pipeline as a route's (preflights before any credential). */
  cors?: CorsPolicy | null
}

export interface CompiledMcp {
  readonly config: McpConfig
  readonly routes: McpBuiltInRoute[]
  readonly catalog: Catalog
  readonly resourceServer: ResourceServer
  readonly approvals: ApprovalStore | null
  /** The upstream MCP servers it aggregates (shared with other runtimes of the same settings). */
  readonly servers: readonly UpstreamMcpServer[]
  /** Queues an audit record (an approval decided). */
  readonly audit: RecordAudit
  /** Puts resolved secret values in the servers' headers (at compile and after each refresh); `own`: false for a server to leave as it is (shared with a runtime that serves). */
  applySecrets(resolve: (template: string) => string, own?: (server: UpstreamMcpServer) => boolean): void
  /**
   * Takes this path's 2025-era sessions from the registry and serves them from this runtime: called
   * when the runtime is swapped in, so a request of this runtime finds them even after a later
   * reload set the path's aside, and an idle session hears this runtime's tool changes.
   */
  takeSessions(): void
  /** Stops following the servers' tool lists: the runtime is retired (or was never swapped in). */
  detach(): void
}

const EVERY_METHOD = ['*', 'TRACE', 'TRACK', 'CONNECT']

/** Counts compiles: a later one is a newer config, which the sessions move onto (LegacySessions.serveFrom). */
let compiles = 0

export function compileMcp(config: Config, mcp: McpConfig, deps: McpCompileDeps): CompiledMcp {
  const resourceServer = createResourceServer(config, mcp, deps)
  const routeTools = new Map<string, ToolEntry>()
  for (const tool of mcp.tools) {
    const route = deps.routes.get(tool.route)
    if (!route) throw new Error(`mcp.tools names route "${tool.route}", which bouncer check should have refused`)
    const name = tool.name ?? tool.route
    routeTools.set(name, routeToolEntry(name, routeToolSource(route.id, route.methods, route.pattern, tool, route.dataset), route))
  }
  const servers: UpstreamMcpServer[] = mcp.servers.map((server) => deps.servers.acquire(server, config.server.max_body_bytes))
  const serverLimits = new Map(mcp.servers.map((server) => [server.name, compileRouteLimits(server.limits, config.limits)]))
  /** A call charged to `limits` as a request of the route `routeId` would be: the refusal (and the limit that made it), or null. */
  const charge = async (caller: Caller, routeId: string, limits: RouteLimits | null): Promise<LimitRefusal | null> => {
    if (limits === null) return null
    const { identity, roles, clientIp } = caller
    const verdict = await enforceLimits(deps.limiter, { identity, roles, clientIp, route: { id: routeId }, headers: null }, limits)
    return verdict.error === null ? null : { error: verdict.error, limit: verdict.limit }
  }
  const catalog = createCatalog(routeTools, servers, deps.access, deps.logger)
  const approvals = mcp.approvals.length > 0 ? deps.approvals(mcp.approvals_store.path) : null
  const protocol: ProtocolDeps = {
    mcp,
    catalog,
    dispatch: deps.dispatch,
    audit: deps.audit,
    approvals,
    chargeRoute: (caller, routeId) => charge(caller, routeId, deps.routes.get(routeId)?.limits ?? null),
    // A server's tools have no route: their calls are counted as `mcp:<server>`'s (a `route` key's value).
    chargeServer: (caller, server) => charge(caller, `mcp:${server}`, serverLimits.get(server) ?? null),
    logger: deps.logger,
    tracing: deps.tracing,
    approveHint: (id) => `\`bouncer approvals approve ${id}\`, or POST /api/approvals/${id}/approve on the admin API`,
  }
  const handler = createMcpHandler(({ authInfo }) => buildServer((authInfo?.extra as { caller: Caller }).caller, () => protocol), {
    legacy: 'stateless',
    maxRequestBodySize: config.server.max_body_bytes,
    onerror: (err) => deps.logger.debug({ reason: err.message }, 'MCP request refused'),
  })
  // Taken when this runtime is swapped in (takeSessions) or first serves: a config compiled and then refused takes none.
  let sessions: LegacySessions | null = null
  const serving: McpServing = { order: ++compiles, deps: protocol, maxBodyBytes: config.server.max_body_bytes }
  // Servers outlive this runtime (a reload with the same settings shares them): detach() lets go.
  // Heard from when the runtime first serves, not from its compile: a compile that failed after
  // this step (a client certificate file unreadable) had no runtime to detach, and left a listener
  // holding the dead compile on each shared server, one more at each such reload (a helper's review).
  let unsubscribes: Array<() => void> | null = null
  let detached = false
  const hearToolChanges = () => {
    if (unsubscribes !== null || detached) return
    unsubscribes = servers.map((server) => server.onToolsChanged(() => {
      handler.notify.toolsChanged()
      if (sessions?.servesFrom(protocol)) sessions.toolsChanged()
    }))
  }
  const sessionsOf = () => {
    hearToolChanges()
    return (sessions ??= deps.sessions(mcp.path, createLegacySessions))
  }
  return {
    config: mcp,
    catalog,
    resourceServer,
    approvals,
    servers,
    audit: deps.audit,
    routes: [
      { id: 'builtin/mcp-metadata', path: resourceServer.metadataPath, methods: EVERY_METHOD, backend: documentBackend(resourceServer.metadataPath, METADATA_HEADERS, () => resourceServer.metadata()), cors: PUBLIC_DOCUMENT_CORS },
      { id: 'builtin/mcp', path: mcp.path, methods: EVERY_METHOD, backend: mcpBackend(mcp, resourceServer, handler, serving, sessionsOf, deps.holdBody), cors: browserCors(mcp) },
    ],
    takeSessions() {
      // Serving from this runtime from now on, not at its first MCP request: a session that only
      // holds its notification stream open still hears this runtime's servers change their tools
      // once the replaced runtime, whose listeners reached it, is retired.
      sessionsOf().serveFrom(serving)
    },
    detach() {
      detached = true
      for (const unsubscribe of unsubscribes?.splice(0) ?? []) unsubscribe()
    },
    applySecrets(resolve, own = () => true) {
      mcp.servers.forEach((config, i) => {
        const server = servers[i] as UpstreamMcpServer
        if (!own(server)) return
        server.headers = Object.fromEntries(Object.entries(config.headers).map(([name, value]) => [name, resolve(value)]))
      })
    },
  }
}


/**
 * What a browser-based MCP client in mcp.allowed_origins needs: its preflight answered (it carries
 * no token; it got 401) and every answer readable, a 401's challenge and the session's id included.
 * Without allowed origins only the resource's own origin calls, which needs no CORS.
 */
function browserCors(mcp: McpConfig): CorsPolicy | null {
  if (mcp.allowed_origins.length === 0) return null
  return corsPolicy({
    origins: [new URL(mcp.resource).origin, ...mcp.allowed_origins],
    methods: ['GET', 'POST', 'DELETE'],
    // Mcp-Method and Mcp-Name: a 2026-07-28 client derives them from each message it sends (SEP-2243).
    headers: ['authorization', 'content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'mcp-method', 'mcp-name', 'last-event-id'],
    exposeHeaders: ['mcp-session-id', 'mcp-protocol-version', 'www-authenticate'],
    credentials: false,
    maxAgeSeconds: 600,
    originsSetting: 'mcp.allowed_origins',
  })
}

function mcpBackend(mcp: McpConfig, resourceServer: ResourceServer, handler: McpHttpHandler, serving: McpServing, sessionsOf: () => LegacySessions, holdBody: McpCompileDeps['holdBody']): Backend {
  const { maxBodyBytes } = serving
  return {
    upstream: null,
    authenticatesCallers: true,
    // A notification stream opened on another runtime's endpoint, decided again by this one after a reload.
    refusalOf(caller, ctx) {
      try {
        resourceServer.checkOrigin(rawHeader(ctx.req.rawHeaders, 'origin'))
      } catch (err) {
        if (err instanceof GatewayError) return `its origin is no longer allowed (${err.detail.replace(/\.$/, '')})`
        throw err
      }
      return resourceServer.refusalOf(caller)
    },
    async serve(ctx, exchange) {
      resourceServer.checkOrigin(rawHeader(ctx.req.rawHeaders, 'origin'))
      const caller = await resourceServer.authenticate(ctx)
      const abort = new AbortController()
      ctx.res.once('close', () => abort.abort())
      const read = nothingServed()
      let body: Buffer | null
      try {
        // Held whole (parsed, and a copy for the SDK's Request), each up to max_body_bytes: counted
        // with the forms' and functions' bodies (the pipeline counted a JSON one it read already).
        // A `text/plain` POST was read and held outside any bound, as many at once as connections.
        if (ctx.method === 'POST' && !ctx.bodyHeld && hasBody(ctx.headers)) await holdBody(ctx, maxBodyBytes)
        body = ctx.method === 'POST' ? await readBody(ctx, maxBodyBytes, read) : null
      } catch (err) {
        // A body refused (413, 408) is answered with what had come of it in the record's bytes_in.
        if (!(err instanceof GatewayError)) throw err
        read.error = err
        read.caller = caller
        return read
      }
      const text = body === null ? null : body.toString('utf8')
      const parsedBody = text === null ? undefined : parseJson(text)
      const request = webRequest(ctx, mcp, abort.signal, text)
      const refusedBatch = batchRefusal(request, parsedBody)
      if (refusedBatch) return writeWebResponse(ctx, refusedBatch, body?.length ?? 0, exchange.beforeEnd, caller, null)
      // The client's token stays here: the SDK and every server behind it see only the caller.
      const authInfo = { token: '', clientId: caller.identity.clientId ?? caller.identity.sub, scopes: [], expiresAt: caller.identity.expiresAt, extra: { caller } }
      const sessions = sessionsOf()
      sessions.serveFrom(serving)
      const inSession = sessions.handle(request, parsedBody, caller, authInfo)
      const response = inSession ? await inSession : await handler.fetch(request, { authInfo, ...(parsedBody === undefined ? {} : { parsedBody }) })
      // The record of the MCP request names whom the endpoint authenticated (it is a public built-in route to the pipeline).
      const held = ctx.method === 'GET' || listens(parsedBody) ? exchange.lifecycle.openTunnels : null
      return writeWebResponse(ctx, response, body?.length ?? 0, exchange.beforeEnd, caller, held)
    },
  }
}

/** What the records' notes call a stream the gateway ended (gateway/tunnels.ts). */
const NOTIFICATION_STREAM = 'the MCP notification stream'

/** A 2026-07-28 `subscriptions/listen`: its answer is a notification stream, as a 2025-era session's GET is. */
function listens(body: unknown): boolean {
  return body !== null && typeof body === 'object' && !Array.isArray(body) && (body as { method?: unknown }).method === 'subscriptions/listen'
}

/** The revision that removed JSON-RPC batching from MCP (2025-03-26 had it). */
const BATCHES_REMOVED_IN = '2025-06-18'
const PROTOCOL_VERSION = /^\d{4}-\d{2}-\d{2}$/

/**
 * A JSON-RPC batch from a client of 2025-06-18 or later (its MCP-Protocol-Version, or the version a
 * batched initialize asks for): 400, Invalid Request (-32600). The SDK serves batches to every
 * 2025-era client, sessions and stateless requests alike, so a client of a revision without them
 * had several calls served from one request (found by a probe). A batch without a version is a
 * 2025-03-26 client's (the version MCP says to assume), which may send them; the 2026-07-28
 * revision's requests are refused by the SDK.
 */
function batchRefusal(request: Request, body: unknown): Response | null {
  if (!Array.isArray(body)) return null
  const version = request.headers.get('mcp-protocol-version') ?? initializeVersionOf(body)
  if (version === undefined || !PROTOCOL_VERSION.test(version) || version < BATCHES_REMOVED_IN) return null
  const message = `Invalid Request: MCP ${version} has no JSON-RPC batches (MCP removed them in ${BATCHES_REMOVED_IN}): send one message per request.`
  return new Response(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message } }), { status: 400, headers: { 'content-type': 'application/json' } })
}

function initializeVersionOf(batch: readonly unknown[]): string | undefined {
  for (const message of batch) {
    const { method, params } = (message ?? {}) as { method?: unknown; params?: { protocolVersion?: unknown } }
    if (method === 'initialize' && typeof params?.protocolVersion === 'string') return params.protocolVersion
  }
  return undefined
}

function readBody(ctx: Readonly<RequestContext>, maxBytes: number, counted: { bytesIn: number }): Promise<Buffer> {
  return readWholeBody(ctx.req, { maxBytes, deadline: ctx.bodyDeadline, counted, tooLarge: () => bodyTooLarge(maxBytes) })
}

/** undefined for a body that is not JSON: the SDK answers it with its parse error. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

/**
 * The MCP request as the SDK's web Request. Its trace headers are this request's own (the gateway's
 * hop, as sent upstream), not the agent's: a route tool's request continues them, so it is a child
 * of the MCP request in the same trace. The agent's were passed on instead: without one, the call's
 * route request began a trace of its own (the MCP request's record and spans led nowhere near the
 * upstream's), and with one it was a sibling of the MCP request (an adversarial probe).
 */
function webRequest(ctx: Readonly<RequestContext>, mcp: McpConfig, signal: AbortSignal, body: string | null): Request {
  const headers = new Headers()
  const raw = ctx.req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase()
    if (name === 'authorization' || name === 'cookie' || name === 'traceparent' || name === 'tracestate' || name.startsWith(':')) continue
    headers.append(name, raw[i + 1] as string)
  }
  if (ctx.trace !== null) {
    headers.set('traceparent', traceparentOf(ctx.trace))
    if (ctx.trace.tracestate !== null) headers.set('tracestate', ctx.trace.tracestate)
  }
  const method = ctx.method
  const streamed = body === null && method !== 'GET' && method !== 'HEAD' && method !== 'DELETE'
  return new Request(new URL(`${mcp.path}${ctx.query === '' ? '' : `?${ctx.query}`}`, mcp.resource), {
    method,
    headers,
    signal,
    ...(body !== null ? { body } : streamed ? { body: Readable.toWeb(ctx.req) as ReadableStream, duplex: 'half' } : {}),
  } as RequestInit)
}

/**
 * `bytesIn`: the request body read for the SDK (a body streamed to it is not counted). `held`: the
 * open tunnels' registry, for a notification stream (a GET, a `subscriptions/listen`): it outlives
 * its request, the only one authenticated, so it joins the registry, which ends it when the token
 * expires (its `exp` plus the issuer's clock_tolerance, as verification reads it), a reload refuses
 * its caller, or the drain begins (the client opens another, elsewhere or with a fresh token).
 */
async function writeWebResponse(ctx: Readonly<RequestContext>, response: Response, bytesIn: number, beforeEnd: ((served: Served) => Promise<void>) | null, caller: Caller, held: OpenTunnels | null): Promise<Served> {
  const served = nothingServed()
  served.caller = caller
  served.status = response.status
  served.bytesIn = bytesIn
  const headers: Record<string, string> = { 'x-request-id': ctx.id }
  response.headers.forEach((value, name) => {
    headers[name] = value
  })
  const res = ctx.res
  if (!response.body) {
    if (beforeEnd) await beforeEnd(served)
    res.writeHead(response.status, headers)
    res.end()
    return served
  }
  res.writeHead(response.status, headers)
  // A notification stream may say nothing for minutes: its client waits for the head, not the first event.
  const eventStream = headers['content-type']?.startsWith('text/event-stream') === true
  if (eventStream) res.flushHeaders()
  const reader = response.body.getReader()
  // A client that goes away: the stream is cancelled, so the read waiting on it (a notification
  // stream may say nothing for hours) ends, the request stops counting as in flight, and the SDK
  // forgets the stream (a session holds one, and refuses a second while it thinks the first is open).
  const cancel = () => void reader.cancel().catch(() => {})
  res.once('close', cancel)
  if (res.destroyed) cancel() // it left before the answer began (while its token was checked)
  let ending = false
  const leave = held !== null && eventStream && response.ok
    ? held.add({
      ctx,
      caller,
      what: NOTIFICATION_STREAM,
      close(_code, note) {
        if (ending) return
        ending = true
        served.note = note
        cancel()
      },
    })
    : null
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      served.bytesOut += value.byteLength
      if (!res.write(value) && !(await drainedOrClosed(res))) break
    }
  } catch {
    // the client went away, or the handler closed the stream: end what was sent
  } finally {
    leave?.()
    res.off('close', cancel)
    reader.releaseLock()
  }
  if (beforeEnd) await beforeEnd(served)
  res.end()
  return served
}
