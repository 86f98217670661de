// An MCP tool call backed by a route is the same request through the same pipeline (SPEC "Agents:
// MCP and token exchange"): src/agents builds it, the gateway hands down a function that runs it
// (layers point down). The caller was authenticated at the MCP endpoint already, so the inner
// request carries the caller itself, never the client's token: it is attached to the in-process
// connection the request arrives on, which no client can open (src/gateway/internal-dispatch.ts).
import type { IncomingHttpHeaders } from 'node:http'
import type { TraceContext } from '../telemetry/index.ts'
import type { RequestFacts } from './context.ts'
import type { CredentialKind, Identity } from './identity.ts'

/** Who calls, as the MCP endpoint established it. */
export interface Caller {
  readonly identity: Identity
  readonly credential: CredentialKind | null
  readonly roles: readonly string[]
  readonly clientIp: string
  readonly userAgent: string | null
}

/** What the audit record says of a tool call. */
export interface ToolCallFacts {
  readonly tool: string
  /** SHA-256 of the arguments' canonical JSON. */
  readonly argsSha256: string
  /** The arguments (secrets redacted), only with mcp.log_arguments: true. */
  readonly args: string | null
  /** The MCP request's trace (the agent's `params._meta` one when valid, else its HTTP request's), for the records of calls the pipeline does not carry. */
  readonly trace?: TraceContext | null
}

export interface InternalRequest {
  readonly method: string
  /** Path and query, as a client would send them. */
  readonly target: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer | null
  readonly caller: Caller
  readonly call: ToolCallFacts
  /**
   * The tool's route: the request must match it and no other. A path parameter's value may spell
   * another route's literal (`/customers/:id` with id `export` is `/customers/export`), whose
   * approval rule or `mcp:<tool>` deny the call would otherwise pass by.
   */
  readonly routeId: string
  /** Fires when the agent is gone (its call cancelled, its connection closed): the route's request is cut. */
  readonly signal?: AbortSignal
}

export interface InternalResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  /**
   * Whether the route may have run the request: false when the gateway refused it (its policy,
   * limits or checks) or found no connection to its upstream before anything was sent.
   */
  readonly mayHaveRun: boolean
}

/** Runs a request through the gateway's pipeline in-process. */
export type InternalDispatch = (request: InternalRequest) => Promise<InternalResponse>

/** Queues an audit record for something that is not a request of its own (a tool call served by the MCP endpoint). */
export type RecordAudit = (facts: RequestFacts) => void

/**
 * The in-process connections and the one request each carries (its caller and call). A WeakMap, not
 * a property of the connection: an HTTP/2 session's socket is a proxy that throws on any property
 * read once the session is gone, and the audit's last look (after the answer) read one (CI: 51
 * unhandled rejections, the records of those requests lost).
 */
const internalCalls = new WeakMap<object, InternalRequest>()

/** Marks an in-process connection (internal-dispatch.ts) as carrying `request`. */
export function markInternal(connection: object, request: InternalRequest): void {
  internalCalls.set(connection, request)
}

/** The internal request this connection carries, or undefined for every client connection. */
export function internalRequestOf(connection: object): InternalRequest | undefined {
  return internalCalls.get(connection)
}
