// The `mcp` section (SPEC "Agents: MCP and token exchange"): the MCP endpoint, the tools it offers
// (routes, and upstream MCP servers' tools), and which tool calls wait for a person's approval.
import { z } from 'zod'
import type { Glob } from './values.ts'

/** MCP tool names (2025-11-25 "Tool names"): 1–128 of letters, digits, _ - . */
export const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/
const toolName = z.string().regex(TOOL_NAME, 'a tool name is 1-128 letters, digits and _ - .')
/**
 * A server's name prefixes its tools (SERVER__TOOL): no "__" inside, nor "_" at its end, or the split
 * would be ambiguous. `tickets_`'s tools (`tickets___close`) bore `tickets__`, so `mcp:tickets__*`
 * allowed, denied or held them with server `tickets`'s (a probe).
 */
const serverName = z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]|_(?=[A-Za-z0-9-]))*$/, 'a server name is letters, digits, - and single _ not at its end (it prefixes its tools as SERVER__TOOL)')

const queryParam = z.strictObject({
  type: z.enum(['string', 'integer', 'number', 'boolean']).default('string'),
  description: z.string().optional(),
  required: z.boolean().default(false),
})

/** Built from schema.ts's value types (durations, globs, URLs…), handed in so both read the same. */
export function mcpSchema<D extends z.ZodType<number>, T extends z.ZodType<number>, G extends z.ZodType<Glob>, U extends z.ZodType<string>, H extends z.ZodType<string>, V extends z.ZodType<string>, M extends z.ZodType<string>, O extends z.ZodType<string>>(parts: {
  duration: D
  /** A duration run as a timer: more than 0 and at most 24d (Node runs a longer timer at once). */
  timer: T
  glob: G
  httpUrl: U
  headerName: H
  headerValue: V
  method: M
  origin: O
}) {
  const tool = z.strictObject({
    /** The id of a route (an HTTP upstream, a function or a dataset). */
    route: z.string().min(1),
    name: toolName.optional(),
    description: z.string().optional(),
    /** The method the tool sends; default: the route's first method, GET for "*". */
    method: parts.method.optional(),
    /** Query parameters the tool takes (path parameters come from the route's path). */
    query: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a query parameter name is letters, digits and _'), queryParam).default({}),
  })
  const server = z.strictObject({
    name: serverName,
    url: parts.httpUrl,
    /** Sent to this server only (its credentials); never the client's token. */
    headers: z.record(parts.headerName, parts.headerValue).default({} as never),
    /** false: tools keep their own names (one server only: the gateway is then transparent). */
    prefix: z.boolean().default(true),
    /** How long the server may be silent in a call: each progress report it sends restarts it. */
    timeout: parts.timer.prefault('60s' as never),
    /** How long a tool call may run in all, however often it reports progress (it is then cancelled). */
    max_call_time: parts.timer.prefault('10m' as never),
    /** Limits (by name, from `limits`) every call of this server's tools is charged, as a route's requests are. */
    limits: z.array(z.string()).default([]),
  })
  const approval = z.strictObject({
    tools: z.array(parts.glob).min(1),
    approvers: z.array(z.string().min(1)).min(1),
    ttl: parts.duration.prefault('15m' as never),
  })
  return z.strictObject({
    path: z.string().regex(/^\/[A-Za-z0-9._~/-]*$/, 'a path such as /mcp').default('/mcp'),
    /** RFC 8707 / RFC 9728: the resource tokens must name as audience. */
    resource: parts.httpUrl,
    /** Scopes a token must carry for any MCP request (403 insufficient_scope otherwise). */
    scopes: z.array(z.string().min(1)).default([]),
    /** Authorization servers announced in the protected-resource metadata (default: every jwt issuer). */
    authorization_servers: z.array(parts.httpUrl).optional(),
    /** Origins browsers may call from (DNS rebinding, MCP "Security Warning"); requests without Origin pass. */
    allowed_origins: z.array(parts.origin).default([]),
    tools: z.array(tool).default([]),
    servers: z.array(server).default([]),
    approvals: z.array(approval).default([]),
    approvals_store: z.strictObject({ type: z.literal('sqlite'), path: z.string().min(1).default('./data/approvals.db') }).prefault({ type: 'sqlite' }),
    /** Put the arguments of each tool call (secrets redacted) in its audit record. */
    log_arguments: z.boolean().default(false),
  })
}
