// Sessions for 2025-era clients (MCP 2025-06-18 / 2025-11-25 Streamable HTTP): an `initialize`
// opens one (Mcp-Session-Id), served by its own SDK server and transport, so the client can hold
// a GET stream for notifications (tools/list_changed) and several streams at once. Every request
// of a session is authenticated again, and a session belongs to the identity that opened it: a
// request with another identity's token gets 404, as an unknown session does (spec: the client
// then initializes again). Sessions live in this gateway's memory: idle ones end after
// SESSION_IDLE_MS, a reload starts afresh, and several instances need sticky sessions (or
// clients that re-initialize on 404).
import { WebStandardStreamableHTTPServerTransport, type AuthInfo, type Server } from '@modelcontextprotocol/server'
import { GatewayError } from '../../errors/index.ts'
import type { Caller } from '../../request/index.ts'

const SESSION_IDLE_MS = 30 * 60_000
const MAX_SESSIONS = 10_000

interface Session {
  transport: WebStandardStreamableHTTPServerTransport
  server: Server
  issuer: string
  subject: string
  caller: { current: Caller }
  lastUsed: number
}

export interface LegacySessions {
  /** The answer when the request belongs to sessions (an initialize, or an Mcp-Session-Id); null otherwise. */
  handle(request: Request, body: unknown, caller: Caller, authInfo: AuthInfo): Promise<Response> | null
  /** notifications/tools/list_changed to every open session (on its GET stream, when it holds one). */
  toolsChanged(): void
  close(): Promise<void>
}

/** A Caller whose fields read the session's latest request (roles can change between requests). */
function liveCaller(ref: { current: Caller }): Caller {
  return {
    get identity() { return ref.current.identity },
    get credential() { return ref.current.credential },
    get roles() { return ref.current.roles },
    get clientIp() { return ref.current.clientIp },
    get userAgent() { return ref.current.userAgent },
  }
}

function isInitialize(body: unknown): boolean {
  return body !== null && typeof body === 'object' && !Array.isArray(body) && (body as { method?: unknown }).method === 'initialize'
}

const notFound = () => new Response(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }), { status: 404, headers: { 'content-type': 'application/json' } })

export function createLegacySessions(build: (caller: Caller) => Promise<Server>, maxBodyBytes: number): LegacySessions {
  const sessions = new Map<string, Session>()
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [id, session] of sessions) if (now - session.lastUsed > SESSION_IDLE_MS) void end(id, session)
  }, 60_000)
  sweep.unref()

  async function end(id: string, session: Session): Promise<void> {
    sessions.delete(id)
    await session.transport.close().catch(() => {})
  }

  async function open(request: Request, body: unknown, caller: Caller, authInfo: AuthInfo): Promise<Response> {
    if (sessions.size >= MAX_SESSIONS) throw new GatewayError('upstream_saturated', { detail: 'Too many MCP sessions are open; try again later.' })
    const ref = { current: caller }
    const server = await build(liveCaller(ref))
    const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      maxRequestBodySize: maxBodyBytes,
      onsessioninitialized: (id) => void sessions.set(id, { transport, server, issuer: caller.identity.iss, subject: caller.identity.sub, caller: ref, lastUsed: Date.now() }),
      onsessionclosed: (id) => void sessions.delete(id),
    })
    await server.connect(transport)
    return transport.handleRequest(request, { parsedBody: body, authInfo })
  }

  return {
    handle(request, body, caller, authInfo) {
      const id = request.headers.get('mcp-session-id')
      if (id === null) return request.method === 'POST' && isInitialize(body) ? open(request, body, caller, authInfo) : null
      const session = sessions.get(id)
      if (!session || session.issuer !== caller.identity.iss || session.subject !== caller.identity.sub) return Promise.resolve(notFound())
      session.caller.current = caller
      session.lastUsed = Date.now()
      return session.transport.handleRequest(request, { parsedBody: body, authInfo })
    },
    toolsChanged() {
      for (const session of sessions.values()) void session.server.notification({ method: 'notifications/tools/list_changed' }).catch(() => {})
    },
    async close() {
      clearInterval(sweep)
      await Promise.all([...sessions].map(([id, session]) => end(id, session)))
    },
  }
}
