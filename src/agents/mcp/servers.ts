// Upstream MCP servers (mcp.servers), aggregated: one long-lived SDK client per server, connected
// on first use and again after a failure. Their tools are cached and refreshed when the server
// says `notifications/tools/list_changed`; the gateway then tells its own clients the same. The
// server's credentials are the configured headers (secrets resolved by the gateway), never the
// token of the agent calling through the gateway.
import type { CallToolResult, Client, JSONRPCMessage, Tool, Transport } from '@modelcontextprotocol/client'
import { createSharedResources, openByName } from '../../collections/index.ts'
import { TOOL_NAME, type McpServerConfig } from '../../config/index.ts'
import { scrub, traceparentOf, urlForLogs, type Logger, type TraceContext } from '../../telemetry/index.ts'
import { credentialValues as credentialValuesOf, isConnectFailureCode } from '../../upstream/index.ts'
import { SEPARATOR } from './catalog.ts'
import { boundedSchemaValidator } from './tool-schema.ts'

export interface CallOptions {
  signal?: AbortSignal
  onprogress?: (progress: { progress: number; total?: number; message?: string }) => void
  /** The call's own trace context, sent to the server: its client span's, or with tracing off the MCP request's own. */
  trace?: TraceContext | null
}

export interface UpstreamMcpServer {
  readonly config: McpServerConfig
  /** The server's tools, as it lists them (cached until it says they changed). */
  tools(): Promise<Tool[]>
  callTool(name: string, args: Record<string, unknown>, options?: CallOptions): Promise<CallToolResult>
  /** The connected client, for passing other requests through (the transparent mode). */
  client(): Promise<Client>
  /** Called when the server's tool list changed (after the cache has been refreshed). */
  onToolsChanged(listener: () => void): () => void
  /** The configured headers with their secrets resolved (set by the gateway, again after a refresh). */
  headers: Record<string, string>
  /** The credential values of headers since replaced (a secret's rotation), newest first: still redacted. */
  readonly rotatedOut: readonly string[]
  /**
   * The error of a request to the server, its message and data without the credentials sent to it.
   * What the server says is redacted as it arrives (connect); an error the SDK makes itself (an
   * HTTP error answer, whose body may echo them) never passed there.
   */
  withoutCredentials(err: unknown): unknown
  close(): Promise<void>
}

const CLIENT_INFO = { name: 'bouncer', version: '1' }
/** How many rotated-out credential values are still redacted (a few rotations' worth). */
const MAX_REPLACED = 16

/**
 * `maxAnswerBytes`: server.max_body_bytes, the most one answer of the server may be (a tool's result
 * included). `previous`: the server of the same name this one replaces (a reload changed its other
 * settings) when its header templates are the same: the headers it sent and those rotated out are
 * carried over (handOverRotatedOut in upstream/pools.ts does the same for upstreams).
 */
export function upstreamMcpServer(config: McpServerConfig, logger: Logger, maxAnswerBytes: number, previous?: UpstreamMcpServer): UpstreamMcpServer {
  let connecting: Promise<Client> | null = null
  let cached: Promise<Tool[]> | null = null
  // Why the last listing failed, until one succeeds: meanwhile callers are answered at once and one
  // retry runs in the background. Each tools/list (and every call to another server's tool) waited
  // out this server's whole timeout again when it accepted connections and never answered.
  let unavailable: Error | null = null
  let retrying: Promise<void> | null = null
  /** The refresh a tools/list_changed started (refreshTools), and whether another was said meanwhile. */
  let refreshing: Promise<void> | null = null
  let refreshAgain = false
  const listeners = new Set<() => void>()
  let closed = false
  let headers = previous ? { ...previous.headers } : { ...config.headers }
  /** The headers whose configured value holds a secret (lower case). */
  const fromSecret = new Set(Object.entries(config.headers).filter(([, value]) => value.includes('${secret:')).map(([name]) => name.toLowerCase()))
  // The credential values of headers since replaced (a secret's rotation), newest first: an answer
  // to a request sent before, or a notification stream opened before, may still echo one. A reload
  // that made the server anew began this empty, and an echo of the value rotated out just before it
  // reached the agent (fx5): the server it replaces hands it over.
  let replaced: string[] = previous ? [...previous.rotatedOut] : []

  const server: UpstreamMcpServer = {
    config,
    get headers() {
      return headers
    },
    set headers(next) {
      const now = credentialValues(next)
      replaced = [...credentialValues(headers), ...replaced].filter((value, i, all) => !now.includes(value) && all.indexOf(value) === i).slice(0, MAX_REPLACED)
      headers = next
    },
    get rotatedOut() {
      return replaced
    },
    client: () => (connecting ??= connect()),
    async tools() {
      if (cached === null && unavailable !== null) {
        retryInBackground()
        throw unavailable
      }
      cached ??= listAll().then((tools) => {
        unavailable = null
        return tools
      }, (err: unknown) => {
        cached = null
        unavailable = server.withoutCredentials(err) as Error
        throw unavailable
      })
      return cached
    },
    async callTool(name, args, options = {}) {
      let client: Client
      try {
        client = await server.client()
      } catch (err) {
        const cleaned = server.withoutCredentials(err) as Error
        throw new CallNotSent(cleaned.message, { cause: cleaned })
      }
      // Each progress report restarts `timeout`; max_call_time bounds the whole call. The SDK's own
      // maxTotalTimeout is checked only when a report arrives, so a timer cancels the call instead.
      const overrun = new AbortController()
      const timer = setTimeout(() => overrun.abort(new CallTimedOut(`the call ran longer than the server's max_call_time (${config.max_call_time / 1000} s) and was cancelled`)), config.max_call_time)
      const signal = options.signal ? AbortSignal.any([options.signal, overrun.signal]) : overrun.signal
      // The call's trace context, in its `_meta` (MCP's place for it, SEP-414) and in the headers of
      // the POST that carries it (the connection is shared: these are this call's alone).
      const carried = options.trace ? traceCarrier(options.trace) : undefined
      try {
        const params = carried ? { name, arguments: args, _meta: carried } : { name, arguments: args }
        return (await client.callTool(params, { timeout: config.timeout, signal, onprogress: options.onprogress, resetTimeoutOnProgress: true, headers: carried })) as CallToolResult
      } catch (err) {
        if (overrun.signal.aborted) throw overrun.signal.reason
        // The SDK's SdkErrorCode.RequestTimeout (the SDK is loaded lazily: its string here).
        if (!options.signal?.aborted && (err as { code?: unknown }).code === 'REQUEST_TIMEOUT') {
          throw new CallTimedOut(`the server sent nothing for its timeout (${config.timeout / 1000} s): the call was cancelled`)
        }
        if (isConnectionFailure(err)) dropConnection()
        const cleaned = server.withoutCredentials(err)
        if (noConnection(err)) throw new CallNotSent((cleaned as Error).message, { cause: cleaned })
        throw cleaned
      } finally {
        clearTimeout(timer)
      }
    },
    withoutCredentials(err) {
      // A server that echoed the header it was sent in its error ("refused Bearer …") showed the
      // gateway's credential to the agent, its model and the audit record; in the error's `data`
      // too, which the SDK hands on to the agent as it came (found by review).
      if (!(err instanceof Error)) return err
      const message = redact(err.message)
      if (message !== err.message) {
        // A DOMException's message has only a getter (an abort's, a timeout's): written to, it threw
        // a TypeError in place of the error. Such an error is told again, redacted, without its cause.
        if (err instanceof DOMException) return Object.assign(new Error(message), { name: err.name })
        err.message = message
      }
      const withData = err as Error & { data?: unknown }
      if (withData.data !== undefined) withData.data = redactLeaves(withData.data, 0)
      return err
    },
    onToolsChanged(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async close() {
      closed = true
      const current = connecting
      connecting = null
      if (current) await current.then((c) => c.close(), () => {})
    },
  }

  /** The credential headers' values sent to this server (upstream/credentials.ts: `X-Signature: ${secret:…}` too, which a review found echoed to the agent). */
  function credentialValues(of: Record<string, string>): string[] {
    return credentialValuesOf(Object.entries(of), fromSecret)
  }

  function redact(text: string): string {
    let redacted = scrub(text)
    for (const secret of secretsSent()) redacted = redacted.replaceAll(secret, '[redacted]')
    return redacted
  }

  /** A message of the server without the credential values sent to it. */
  function messageWithoutCredentials(message: JSONRPCMessage): JSONRPCMessage {
    const secrets = secretsSent()
    return secrets.length === 0 ? message : jsonWithout(message, secrets)
  }

  /** The credential values sent to this server: those of now, and those rotated out. */
  function secretsSent(): string[] {
    return replaced.length === 0 ? credentialValues(headers) : [...credentialValues(headers), ...replaced]
  }

  /** Every string in a JSON value redacted (a bounded depth: deeper is dropped). */
  function redactLeaves(value: unknown, depth: number): unknown {
    if (typeof value === 'string') return redact(value)
    if (typeof value !== 'object' || value === null) return value
    if (depth >= 16) return '[redacted]'
    if (Array.isArray(value)) return value.map((item) => redactLeaves(item, depth + 1))
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [redact(key), redactLeaves(item, depth + 1)]))
  }

  async function connect(): Promise<Client> {
    // Closed when no config uses it any more: a request that outlived its config's shutdown_timeout
    // does not open a connection nothing would close.
    if (closed) throw new Error(`the MCP server "${config.name}" is no longer in the gateway's config`)
    // Loaded at the first connection: a gateway without mcp.servers never loads the SDK (~25 MB, ~0.3 s).
    const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client')
    // The tool's outputSchema is the server's, its patterns included: checked under a time limit.
    const client = new Client(CLIENT_INFO, { capabilities: {}, jsonSchemaValidator: await boundedSchemaValidator() })
    client.setNotificationHandler('notifications/tools/list_changed', refreshTools)
    client.onclose = () => {
      if (!closed) dropConnection()
    }
    // A request whose answer was cut off is answered here: the SDK gives up on a broken SSE stream
    // without failing its request, which then waited out the server's timeout.
    const answerCut = (id: string | number, error: AnswerTooLarge) => {
      transport.onmessage?.({ jsonrpc: '2.0', id, error: { code: -32603, message: error.message, data: { reason: ANSWER_TOO_LARGE } } })
    }
    // The headers of now at each request: the connection kept those it was opened with, and after a
    // secret's rotation went on sending the old value until it was closed (found by mcp-redact).
    const requestInit = { get headers() { return headers } }
    const transport = new StreamableHTTPClientTransport(new URL(config.url), { requestInit, fetch: boundedFetch(maxAnswerBytes, answerCut) })
    // Redacted once, here, before the SDK reads it: every path a server's words take to the agent,
    // its model, the audit log or the logs (results, errors, progress, the tool list, pass-through
    // answers...) had been redacted one by one as reviews found it, and each new one forgot.
    cleanIncoming(transport, messageWithoutCredentials)
    try {
      await client.connect(transport, { timeout: config.timeout })
    } catch (err) {
      connecting = null
      // Not the query: a server's key may be given there (`?api_key=…`), and this is logged at each try.
      logger.warn({ server: config.name, url: urlForLogs(config.url), reason: (server.withoutCredentials(err) as Error).message }, 'MCP server unavailable')
      throw err
    }
    return client
  }

  /**
   * Lists the tools again after the server said they changed, then tells the listeners. One refresh
   * at a time: a burst of list_changed (a server looping) asked for the whole list once per
   * notification, all at once, and told every agent session as often (a probe: 200 in a burst were
   * 200 lists and 200 notifications per session). One said during a refresh makes one more after it,
   * as the list being read may predate that change.
   */
  function refreshTools(): void {
    if (refreshing) {
      refreshAgain = true
      return
    }
    cached = null
    refreshing = server.tools().then(() => { for (const listener of listeners) listener() }, () => {}).finally(() => {
      refreshing = null
      if (refreshAgain) {
        refreshAgain = false
        refreshTools()
      }
    })
  }

  function dropConnection(): void {
    const current = connecting
    connecting = null
    cached = null
    if (current) void current.then((c) => c.close(), () => {})
  }

  /** Lists again, without keeping anyone waiting; its tools are announced (listeners) when it answers. */
  function retryInBackground(): void {
    retrying ??= listAll().then((tools) => {
      unavailable = null
      cached = Promise.resolve(tools)
      for (const listener of listeners) listener()
    }, (err: unknown) => {
      unavailable = server.withoutCredentials(err) as Error
    }).finally(() => {
      retrying = null
    })
  }

  /**
   * Every page of the server's tools (the SDK walks them, up to 64), the whole list within the
   * server's `timeout`: each page was bounded by it, the list not at all, so a server that named a
   * next page a little under its timeout held every agent's tools/list (they wait for the listing)
   * for 64 of them: an hour at the default 60 s (found by review). A real server lists in milliseconds.
   */
  async function listAll(): Promise<Tool[]> {
    const client = await server.client()
    const whole = AbortSignal.timeout(config.timeout)
    try {
      const { tools } = await client.listTools(undefined, { timeout: config.timeout, signal: whole })
      return tools.filter(wellNamed)
    } catch (err) {
      if (whole.aborted) throw new Error(`its tool list took longer than its timeout (${config.timeout / 1000} s) to read: the gateway reads no more of it`, { cause: err })
      throw err
    }
  }

  /**
   * Whether a tool's name is one MCP allows (1-128 letters, digits, _ - .), as agents would see it
   * (SERVER__TOOL with the prefix). A server could offer any string: names with spaces, control
   * characters or 10 KB reached every agent's tool list as they came (found by a probe). Such a tool
   * is skipped, not renamed — a name the server never gave would be one more for agents, policies
   * and approvals to match — and the operator is told which (logged at each listing).
   */
  function wellNamed(tool: Tool): boolean {
    const name = String(tool.name)
    if (TOOL_NAME.test(name) && TOOL_NAME.test(config.prefix ? `${config.name}${SEPARATOR}${name}` : name)) return true
    logger.warn({ server: config.name, tool: JSON.stringify(name.slice(0, 80)), length: name.length },
      'MCP server tool skipped: its name is not 1-128 letters, digits and _ - . (with the server\'s prefix), as MCP tool names are')
    return false
  }

  return server
}

/**
 * W3C trace context as MCP carries it (2026-07-28 "OpenTelemetry trace context", SEP-414: the
 * unprefixed `_meta` keys `traceparent` and `tracestate`), the same names as the HTTP headers.
 */
export function traceCarrier(trace: TraceContext): Record<string, string> {
  return trace.tracestate ? { traceparent: traceparentOf(trace), tracestate: trace.tracestate } : { traceparent: traceparentOf(trace) }
}

/** A tool call the gateway cancelled: silent for the server's `timeout`, or running past its `max_call_time`. */
export class CallTimedOut extends Error {
  override name = 'CallTimedOut'
}

/** A tool call that never reached its server: no connection to it could be made (a taken approval is given back). */
export class CallNotSent extends Error {
  override name = 'CallNotSent'
}

/** Whether `err`, or an error it was caused by (fetch's TypeError wraps the socket's), is a connection that could not be made. */
function noConnection(err: unknown): boolean {
  let current: unknown = err
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (isConnectFailureCode(String((current as { code?: unknown }).code))) return true
    current = current.cause
  }
  return false
}

/** An answer of the server cut off past server.max_body_bytes. */
export class AnswerTooLarge extends Error {
  override name = 'AnswerTooLarge'
}

/** `data.reason` of the error answer a request whose answer was cut off gets. */
const ANSWER_TOO_LARGE = 'answer_too_large'

/** Whether a request failed because the server's answer was cut off (the error itself, or the answer standing for it). */
export function answerTooLarge(err: unknown): boolean {
  return err instanceof AnswerTooLarge || (err as { data?: { reason?: unknown } } | null)?.data?.reason === ANSWER_TOO_LARGE
}

/** The JSON-RPC id of the one request a POST carries (a batch or a notification has none). */
function requestIdOf(body: unknown): string | number | undefined {
  if (typeof body !== 'string') return undefined
  try {
    const id = (JSON.parse(body) as { id?: unknown }).id
    return typeof id === 'string' || typeof id === 'number' ? id : undefined
  } catch {
    return undefined
  }
}

/**
 * fetch whose answers to POSTs (the server's answers to requests: a tool's result, a list) end past
 * `maxBytes`, as a route tool's answer does: a server answering 100 MB took the gateway from 270 MB
 * to 900 MB and the agent got all of it. The GET stream carries notifications for as long as it is
 * open: each of its events is bounded instead (eventsWithin).
 */
function boundedFetch(maxBytes: number, onCut: (id: string | number, error: AnswerTooLarge) => void): typeof fetch {
  return async function fetchBounded(input, init) {
    const response = await fetch(input, init)
    if (response.body === null) return response
    if (init?.method !== 'POST') {
      if (!/^text\/event-stream/i.test(response.headers.get('content-type') ?? '')) return response
      return new Response(response.body.pipeThrough(eventsWithin(maxBytes)), { status: response.status, statusText: response.statusText, headers: response.headers })
    }
    let bytes = 0
    const bounded = response.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytes += chunk.byteLength
        if (bytes <= maxBytes) return controller.enqueue(chunk)
        const error = new AnswerTooLarge(`its answer exceeds ${maxBytes} bytes (server.max_body_bytes), the most a tool's answer may be: it was cut off`)
        const id = requestIdOf(init.body)
        if (id !== undefined) onCut(id, error)
        controller.error(error)
      },
    }))
    return new Response(bounded, { status: response.status, statusText: response.statusText, headers: response.headers })
  }
}

/**
 * An SSE stream whose events (text up to a blank line) are each at most `maxBytes`, else it is cut.
 * The SDK holds an event until its end: one that never ended, on the notification stream the SDK
 * opens to every server, grew the gateway's memory by as much as the server sent (found by review).
 */
function eventsWithin(maxBytes: number): TransformStream<Uint8Array, Uint8Array> {
  let sinceEvent = 0 // bytes of the event under way, line endings left out
  let lineBytes = 0
  let afterCr = false
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      for (const byte of chunk) {
        if (byte === 0x0a && afterCr) {
          afterCr = false // the LF of a CRLF
          continue
        }
        afterCr = byte === 0x0d
        if (byte === 0x0a || byte === 0x0d) {
          if (lineBytes === 0) sinceEvent = 0 // a blank line ends an event
          lineBytes = 0
        } else {
          lineBytes++
          if (++sinceEvent > maxBytes) {
            return controller.error(new AnswerTooLarge(`an event of its notification stream exceeds ${maxBytes} bytes (server.max_body_bytes): the stream was cut`))
          }
        }
      }
      controller.enqueue(chunk)
    },
  })
}

/**
 * Every message `transport` receives passes `clean` before its handler sees it. The SDK sets the
 * transport's onmessage when it connects (and sets its own around a version probe first), so the
 * handler is wrapped as it is set; the transport calls whichever is set now.
 */
function cleanIncoming(transport: Transport, clean: (message: JSONRPCMessage) => JSONRPCMessage): void {
  type Handler = (message: JSONRPCMessage, extra?: unknown) => void
  let handler: Handler | undefined
  Object.defineProperty(transport, 'onmessage', {
    configurable: true,
    enumerable: true,
    get: () => handler,
    set(next: Handler | undefined) {
      handler = next && ((message, extra) => next(clean(message), extra))
    },
  })
}

/**
 * `value` without `secrets` in any of its strings, object keys included. Only those: a tool may
 * answer a JWT or a `Bearer …` of its own, which scrub() would take for one of the gateway's. Copied
 * only when one is there (a message is JSON from the wire), and walked without recursion and
 * without a depth cut: a structured answer may nest as deep as JSON does.
 */
function jsonWithout<T>(value: T, secrets: readonly string[]): T {
  const json = JSON.stringify(value)
  if (json === undefined || !secrets.some((secret) => json.includes(JSON.stringify(secret).slice(1, -1)))) return value
  const without = (text: string) => secrets.reduce((rest, secret) => rest.replaceAll(secret, '[redacted]'), text)
  const copy = JSON.parse(json) as T & object
  const pending: object[] = [copy]
  while (pending.length > 0) {
    const node = pending.pop() as Record<string, unknown>
    for (const key of Object.keys(node)) {
      const item = node[key]
      const cleanKey = Array.isArray(node) ? key : without(key)
      const cleanItem = typeof item === 'string' ? without(item) : item
      if (typeof item === 'object' && item !== null) pending.push(item)
      if (cleanKey === key && cleanItem === item) continue
      if (cleanKey !== key) delete node[key]
      // Defined, not assigned: a key "__proto__" (JSON.parse makes it an own one) would set the prototype.
      Object.defineProperty(node, cleanKey, { value: cleanItem, writable: true, enumerable: true, configurable: true })
    }
  }
  return copy
}

function isConnectionFailure(err: unknown): boolean {
  const text = String((err as Error)?.message ?? err)
  return /fetch failed|ECONNREFUSED|ECONNRESET|closed|session/i.test(text)
}

/**
 * Long-lived across reloads: a server whose settings did not change keeps its connection; one no
 * config (and no draining runtime) uses any more is disconnected (`retire`).
 */
export interface McpServerRegistry {
  acquire(config: McpServerConfig, maxAnswerBytes: number): UpstreamMcpServer
  /** Closes every server's connection but those in `keep`. */
  retire(keep: Iterable<UpstreamMcpServer>): Promise<void>
  closeAll(): Promise<void>
}

export function createMcpServerRegistry(logger: Logger): McpServerRegistry {
  // A reload that makes a server anew hands its rotated-out credentials over from the last one still open.
  const open = openByName<UpstreamMcpServer>()
  const shared = createSharedResources<{ config: McpServerConfig; maxAnswerBytes: number }, UpstreamMcpServer>({
    // Its limits are the gateway's, not the connection's: a reload that changes them keeps it.
    fingerprint: ({ config: { limits: _limits, ...connection }, maxAnswerBytes }) => JSON.stringify([connection, maxAnswerBytes]),
    create: ({ config, maxAnswerBytes }) => {
      const last = open.last(config.name)
      const sameHeaders = last !== undefined && JSON.stringify(last.config.headers) === JSON.stringify(config.headers)
      const server = upstreamMcpServer(config, logger, maxAnswerBytes, sameHeaders ? last : undefined)
      open.opened(config.name, server)
      return server
    },
    close: (server) => {
      open.closed(server.config.name, server)
      return server.close()
    },
  })
  return { ...shared, acquire: (config, maxAnswerBytes) => shared.acquire({ config, maxAnswerBytes }) }
}

