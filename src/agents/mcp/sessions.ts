// Sessions for 2025-era clients (MCP 2025-06-18 / 2025-11-25 Streamable HTTP): an `initialize`
// opens one (Mcp-Session-Id), served by its own SDK server and transport, so the client can hold
// a GET stream for notifications (tools/list_changed) and several streams at once. Every request
// of a session is authenticated again, and a session belongs to the identity that opened it: a
// request with another identity's token gets 404, as an unknown session does (spec: the client
// then initializes again). Sessions live in this gateway's memory, one set per mcp.path for the
// life of the process (registry.ts): a reload keeps them, and each session's server answers from
// the newest runtime that has served a request (serveFrom), its clients told the tools changed.
// Idle ones end after SESSION_IDLE_MS; several instances need sticky sessions (or clients that
// re-initialize on 404).
//
// Several workers (server.workers) share the port, and a client's connections land on any of them:
// the SDK's client sends `notifications/initialized` on a second connection while the first still
// streams initialize's answer, so with two workers most sessions met 404 at once (found by a
// probe). A session's id is sealed (an HMAC over it, the endpoint's path and its owner, with a key
// every worker holds: the process's key store), so a worker that has not seen the session opens it
// again for the same owner, answering from the same config. So a session's id holds until its
// client's DELETE (in the process's table of ended sessions, which every worker reads, a
// replacement too: ended-sessions.ts; and told to the workers serving it, which end it there), a
// restart (a new key), or a reload that moves the endpoint: a worker that let a session go (idle,
// or its caller's oldest beyond the share) opens it again at its next request, since another
// worker may be serving it.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto'
import { BroadcastChannel } from 'node:worker_threads'
import { WebStandardStreamableHTTPServerTransport, type AuthInfo, type Server } from '@modelcontextprotocol/server'
import { GatewayError } from '../../errors/index.ts'
import { actorOf, subjectIssuer, type Caller } from '../../request/index.ts'
import { buildServer, type ProtocolDeps } from './protocol.ts'
import type { EndedSessions } from './ended-sessions.ts'
import type { SessionSeal } from './session-seal.ts'

const SESSION_IDLE_MS = 30 * 60_000

/** uuid.mac: a v4 UUID, and 16 bytes of HMAC in base64url (22 characters, the last of 4 possible ones). */
const SEALED_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.[A-Za-z0-9_-]{21}[AQgw]$/

/** What one worker tells the others about a session: its DELETE, or a call's cancellation to pass on. */
type SessionNews = { type: 'deleted'; id: string } | { type: 'cancelled'; id: string; version: string; body: unknown }

/** The protocol version a request names in MCP-Protocol-Version, else 2025-06-18: what a session opened again speaks. */
const versionOf = (request: Request) => request.headers.get('mcp-protocol-version') ?? '2025-06-18'

/**
 * A session belongs to one caller: the subject at the provider that vouched for it (not the
 * gateway, for an exchanged token) and the agent acting for it. Another agent acting for the same
 * user, or the same `sub` at another provider, is someone else (404).
 */
function ownerOf(caller: Caller): string {
  return JSON.stringify([subjectIssuer(caller.identity), caller.identity.sub, actorOf(caller.identity)])
}
const MAX_SESSIONS = 10_000
/**
 * Sessions one caller holds at most, those being opened included: its initialize beyond them lets
 * its least recently used one go (its sealed id opens it again, letting the next oldest go), or is
 * refused (503) while all of them are still being opened. Without it one caller whose
 * client initializes on every run and never sends DELETE filled the table, and every other
 * caller's initialize was refused for the 30 minutes idle sessions live.
 */
const MAX_SESSIONS_PER_CALLER = 100

interface Session {
  transport: WebStandardStreamableHTTPServerTransport
  server: Server
  /** Whose it is (callerOf): the subject at the provider that vouched for it, and the agent acting for it. */
  owner: string
  caller: { current: Caller }
  /** performance.now() of its last request: on the wall clock, one stepped forward 30 minutes ended every session at the next sweep. */
  lastUsed: number
}

/** What one runtime's MCP endpoint answers from. */
export interface McpServing {
  /** This compile's place among all: a later one is a newer config. */
  order: number
  deps: ProtocolDeps
  maxBodyBytes: number
}

export interface LegacySessions {
  /**
   * The runtime to answer from, given by each runtime before it hands a request over: `order`
   * says which was compiled later, so a request still finishing on a replaced runtime changes
   * nothing. Moving to a newer one tells every open session its tools changed.
   */
  serveFrom(runtime: McpServing): void
  /** Whether `deps` is what the sessions answer from (a replaced runtime's events are not theirs). */
  servesFrom(deps: ProtocolDeps): boolean
  /** The answer when the request belongs to sessions (an initialize, or an Mcp-Session-Id); null otherwise. */
  handle(request: Request, body: unknown, caller: Caller, authInfo: AuthInfo): Promise<Response> | null
  /** notifications/tools/list_changed to every open session (on its GET stream, when it holds one). */
  toolsChanged(): void
  /**
   * Winds down without cutting a call: no new session, the notification (GET) streams ended and
   * refused from now on, while requests already sent are answered on their own streams. A drain
   * waits for those; the GET streams never end by themselves, so they go at once.
   */
  quiesce(): void
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

/**
 * A session keeps its client's `initialize` params (clientInfo, capabilities) for as long as it
 * lives: 20 sessions opened with 2 MB of them each held 40 MB, and one caller's 100 sessions of
 * max_body_bytes could hold a gigabyte (found by an adversarial probe). A client's own are a few
 * hundred bytes.
 */
export const MAX_INITIALIZE_PARAMS_BYTES = 65_536

function refuseLargeInitialize(body: unknown): void {
  const params = (body as { params?: unknown }).params
  const size = params === undefined ? 0 : Buffer.byteLength(JSON.stringify(params))
  if (size > MAX_INITIALIZE_PARAMS_BYTES) {
    throw new GatewayError('payload_too_large', { detail: `An MCP initialize request's params are at most ${MAX_INITIALIZE_PARAMS_BYTES} bytes (these are ${size}): a session keeps them for as long as it lives.` })
  }
}

/** Whether the body is one JSON-RPC message (not a batch) of this method. */
function isMethod(body: unknown, method: string): boolean {
  return body !== null && typeof body === 'object' && !Array.isArray(body) && (body as { method?: unknown }).method === method
}

// Streamable HTTP: a server that offers no GET stream answers 405, and the client stops asking.
const noNotificationStream = () => new Response(null, { status: 405, headers: { allow: 'POST, DELETE' } })

const notFound = () => new Response(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }), { status: 404, headers: { 'content-type': 'application/json' } })

/** `ended`: the ids DELETEd in this process, on any worker (ended-sessions.ts). */
export function createLegacySessions(seal: SessionSeal, ended: EndedSessions): LegacySessions {
  const sessions = new Map<string, Session>()
  const macOf = (uuid: string, owner: string) => createHmac('sha256', seal.key).update(`${seal.path}\n${uuid}\n${owner}`).digest().subarray(0, 16)
  const sealedId = (owner: string) => {
    const uuid = randomUUID()
    return `${uuid}.${macOf(uuid, owner).toString('base64url')}`
  }
  /**
   * Whether this id was made by this gateway's endpoint for this owner: exactly the form sealedId
   * writes (base64url decoding would take other spellings of the same bytes, and a DELETEd id
   * is remembered as one string).
   */
  const sealedFor = (id: string, owner: string) => {
    if (!SEALED_ID.test(id)) return false
    const uuid = id.slice(0, 36)
    return timingSafeEqual(Buffer.from(id.slice(37)), Buffer.from(macOf(uuid, owner).toString('base64url')))
  }
  // What a client says to one worker that another may be serving: its DELETE (ending the session
  // there, its notification stream too), and its call's cancellation (the call runs where it
  // began). The channel reaches the process's other threads.
  const channel = new BroadcastChannel(`bouncer:mcp-sessions:${createHmac('sha256', seal.key).update(seal.path).digest('base64url')}`)
  channel.unref()
  let channelOpen = true
  const tellOthers = (news: SessionNews) => {
    if (channelOpen) channel.postMessage(news)
  }
  channel.onmessage = (event) => {
    const news = (event as { data: SessionNews }).data
    const session = sessions.get(news.id)
    if (news.type === 'deleted') {
      if (session) void end(news.id, session)
    } else if (session) {
      const request = new Request('http://gateway.internal/', { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': news.id, 'mcp-protocol-version': news.version }, body: JSON.stringify(news.body) })
      void session.transport.handleRequest(request, { parsedBody: news.body }).then((answer) => answer.text(), () => {})
    }
  }
  /** Opening again a session another worker opened (or this one before): one at a time per id. */
  const reopening = new Map<string, Promise<Session | null>>()
  let serving: McpServing | null = null
  // Quiesced or closed (shutdown, or a reload that dropped this path): a runtime still finishing a
  // request opens nothing here, and no notification stream.
  let closed = false
  const servingNow = () => {
    if (serving === null) throw new Error('MCP sessions asked before any runtime served them')
    return serving
  }
  const current = () => servingNow().deps
  const sweep = setInterval(() => {
    const now = performance.now()
    for (const [id, session] of sessions) if (now - session.lastUsed > SESSION_IDLE_MS) void end(id, session)
  }, 60_000)
  sweep.unref()

  async function end(id: string, session: Session): Promise<void> {
    sessions.delete(id)
    await session.transport.close().catch(() => {})
  }

  /**
   * Opens under way (from their check until their session joins the table, or none comes of it):
   * by owner, and in all. Both caps count them: the check came before the open's awaits (a
   * transparent server's capabilities wait for its connection, up to its timeout) and the session
   * joined the table only after them, so concurrent initializes all passed it (found by review: a
   * caller's 100 at once, while the server connected, let one of its 100 open ones go: 199 held).
   */
  const opening = new Map<string, number>()
  let openingTotal = 0

  /** A place in the caps for an open, taken with its check; the function gives it back (once). */
  function reserve(owner: string): () => void {
    opening.set(owner, (opening.get(owner) ?? 0) + 1)
    openingTotal++
    let held = true
    return () => {
      if (!held) return
      held = false
      openingTotal--
      const left = (opening.get(owner) ?? 1) - 1
      if (left === 0) opening.delete(owner)
      else opening.set(owner, left)
    }
  }

  /** Ends the caller's least recently used session when it holds its share already (its opens under way count). */
  function makeRoomFor(owner: string): void {
    let held = opening.get(owner) ?? 0
    let oldest: [string, Session] | null = null
    for (const entry of sessions) {
      if (entry[1].owner !== owner) continue
      held++
      if (oldest === null || entry[1].lastUsed < oldest[1].lastUsed) oldest = entry
    }
    if (held < MAX_SESSIONS_PER_CALLER) return
    // Its whole share is still being opened: none is there to let go.
    if (oldest === null) throw new GatewayError('upstream_saturated', { detail: `This caller has ${MAX_SESSIONS_PER_CALLER} MCP sessions being opened already; try again when they are.`, headers: { 'retry-after': '1' } })
    void end(...oldest)
  }

  /**
   * A session opened by an initialize: the client's (`id` null: a new sealed id), or one made up
   * for a session opened again (`id`: the one it had elsewhere). Its place in the caps is taken as
   * its check passes, before any await, and given back if no session came of it.
   */
  async function openSession(caller: Caller, id: string | null, request: Request, body: unknown, authInfo: AuthInfo): Promise<Response> {
    const owner = ownerOf(caller)
    makeRoomFor(owner)
    if (sessions.size + openingTotal >= MAX_SESSIONS) throw new GatewayError('upstream_saturated', { detail: 'Too many MCP sessions are open; try again later.' })
    const release = reserve(owner)
    try {
      const ref = { current: caller }
      const server = await buildServer(liveCaller(ref), current)
      const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => id ?? sealedId(owner),
        maxRequestBodySize: servingNow().maxBodyBytes,
        // Its place passes to the session in one step: the count never dips between.
        onsessioninitialized: (opened) => {
          release()
          sessions.set(opened, { transport, server, owner, caller: ref, lastUsed: performance.now() })
        },
        // The client's DELETE: ended here, and on every other worker that opened it.
        onsessionclosed: (closed) => {
          sessions.delete(closed)
          ended.add(closed)
          tellOthers({ type: 'deleted', id: closed })
        },
      })
      await server.connect(transport)
      return await transport.handleRequest(request, { parsedBody: body, authInfo })
    } finally {
      release()
    }
  }

  async function open(request: Request, body: unknown, caller: Caller, authInfo: AuthInfo): Promise<Response> {
    refuseLargeInitialize(body)
    return openSession(caller, null, request, body, authInfo)
  }

  /**
   * A session sealed for this caller that this worker has not seen: opened here with an
   * `initialize` of the version the client speaks. The gateway reads nothing else of the client's
   * own initialize params (its capabilities, its name), which only the worker that took them has.
   */
  function reopen(id: string, request: Request, caller: Caller, authInfo: AuthInfo): Promise<Session | null> {
    let pending = reopening.get(id)
    if (pending === undefined) {
      pending = (async () => {
        const initialize = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: versionOf(request), capabilities: {}, clientInfo: { name: 'session opened again by another worker', version: '0' } } }
        const answer = await openSession(caller, id, new Request(request.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(initialize) }), initialize, authInfo)
        await answer.text()
        const opened = sessions.get(id) ?? null
        // DELETEd on another worker while this one opened it.
        if (opened !== null && ended.has(id)) {
          await end(id, opened)
          return null
        }
        return opened
      })().finally(() => reopening.delete(id))
      reopening.set(id, pending)
    }
    return pending
  }

  function serve(id: string, session: Session, request: Request, body: unknown, caller: Caller, authInfo: AuthInfo): Promise<Response> {
    if (closed && request.method === 'GET') return Promise.resolve(noNotificationStream())
    if (isMethod(body, 'notifications/cancelled')) tellOthers({ type: 'cancelled', id, version: versionOf(request), body })
    session.caller.current = caller
    session.lastUsed = performance.now()
    // A GET stream outlives its request: every POST is authenticated again, the stream is not. The
    // endpoint hands it to the open tunnels' registry, which ends it when the token that opened it
    // expires, a reload refuses its caller, or the drain begins (endpoint.ts writeWebResponse).
    return session.transport.handleRequest(request, { parsedBody: body, authInfo })
  }

  function toolsChanged(): void {
    for (const session of sessions.values()) void session.server.notification({ method: 'notifications/tools/list_changed' }).catch(() => {})
  }

  return {
    serveFrom(runtime) {
      if (serving !== null && serving.order >= runtime.order) return
      const moved = serving !== null
      serving = runtime
      if (moved) toolsChanged()
    },
    servesFrom: (deps) => serving?.deps === deps,
    handle(request, body, caller, authInfo) {
      const id = request.headers.get('mcp-session-id')
      if (id === null) return !closed && request.method === 'POST' && isMethod(body, 'initialize') ? open(request, body, caller, authInfo) : null
      const session = sessions.get(id)
      if (session) {
        if (session.owner !== ownerOf(caller)) return Promise.resolve(notFound())
        // DELETEd on another worker, whose news has not come yet: ended here now.
        if (ended.has(id)) {
          void end(id, session)
          return Promise.resolve(notFound())
        }
        return serve(id, session, request, body, caller, authInfo)
      }
      // Sealed first: the table of ended sessions is asked about ids the gateway made only.
      if (closed || !sealedFor(id, ownerOf(caller)) || ended.has(id)) return Promise.resolve(notFound())
      return reopen(id, request, caller, authInfo).then((opened) => (opened ? serve(id, opened, request, body, caller, authInfo) : notFound()))
    },
    toolsChanged,
    quiesce() {
      closed = true
      for (const session of sessions.values()) session.transport.closeStandaloneSSEStream()
    },
    async close() {
      closed = true
      clearInterval(sweep)
      channelOpen = false
      channel.close()
      await Promise.all([...sessions].map(([id, session]) => end(id, session)))
    },
  }
}
