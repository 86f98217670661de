// One MCP server instance per HTTP request (the SDK's per-request factory), built for its caller:
// `tools/list` and `tools/call` answer from the caller's decision (catalog.ts). A call is audited
// with `tool` and `args_sha256`: a route tool by the pipeline (its request is the record), the rest
// here. Calls matching mcp.approvals wait for an approver (approvals.ts).
import { ProtocolError, ProtocolErrorCode, Server, type CallToolResult, type ServerCapabilities, type ServerContext } from '@modelcontextprotocol/server'
import type { McpConfig } from '../../config/index.ts'
import { GatewayError, problemBody } from '../../errors/index.ts'
import { parseTarget } from '../../http/index.ts'
import { actorOf, CLIENT_CLOSED_REQUEST, subjectIssuer, type Caller, type InternalDispatch, type InternalRequest, type InternalResponse, type RecordAudit, type ToolCallFacts } from '../../request/index.ts'
import { endMcpSpan, startMcpClientSpan, traceparentOf, type Logger, type Tracing } from '../../telemetry/index.ts'
import { MAX_PENDING_PER_CALLER, type Approval, type ApprovalStore } from './approvals.ts'
import { startCallTrace, type CallTrace } from './call-trace.ts'
import type { Catalog, ToolEntry } from './catalog.ts'
import { answerTooLarge, CallNotSent, CallTimedOut, traceCarrier, type UpstreamMcpServer } from './servers.ts'
import { routeAnswerContent, routeRequestOf, type RouteRequest } from './route-tools.ts'
import { argumentsDigest, MAX_ARGUMENT_DEPTH, nestsDeeperThan } from './arguments.ts'
import { approvalRuleFor, auditFacts, toolCallFacts, type Outcome } from './tool-calls.ts'
import { argumentsRefusedBy } from './tool-schema.ts'

export const SERVER_INFO = { name: 'bouncer', version: '1' }

export interface ProtocolDeps {
  mcp: McpConfig
  catalog: Catalog
  dispatch: InternalDispatch
  audit: RecordAudit
  approvals: ApprovalStore | null
  /** Charges a route's limits for a call that will not reach the route (one held for approval): the refusal, or null. */
  chargeRoute: (caller: Caller, routeId: string) => Promise<LimitRefusal | null>
  /** Charges an aggregated server's limits (mcp.servers[].limits) for a call of one of its tools: the refusal, or null. */
  chargeServer: (caller: Caller, server: string) => Promise<LimitRefusal | null>
  logger: Logger
  /** Spans, when telemetry.otlp_endpoint is set: a call to an aggregated server's tool has one, its trace context sent to the server. */
  tracing: Tracing | null
  /** Where approvers decide, for the pending answer. */
  approveHint: (id: string) => string
}

/** The pipeline's refusal of a route request's target (bad_path), or null when it takes it. */
function pathRefusal(target: string): GatewayError | null {
  try {
    parseTarget(target, undefined)
    return null
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'bad_path') return err
    throw err
  }
}

/** A limit's refusal of a tool call: the answer (429, or 503 limits_unavailable), and the limit for the record. */
export interface LimitRefusal {
  error: GatewayError
  limit: string | null
}

/** The one upstream server of the transparent mode (mcp.servers: one, with prefix: false). */
export function transparentServer(deps: Pick<ProtocolDeps, 'catalog'>): UpstreamMcpServer | undefined {
  return deps.catalog.transparent
}

/**
 * `current` gives the deps of the runtime serving now, read at each request: a 2025-era session's
 * server outlives a reload (sessions.ts) and then answers from the new config's tools.
 */
export async function buildServer(caller: Caller, current: () => ProtocolDeps): Promise<Server> {
  const transparent = transparentServer(current())
  // Transparent: the upstream's own capabilities (what it can answer), tools always listChanged.
  const upstream: ServerCapabilities = transparent ? await transparent.client().then((c) => c.getServerCapabilities() ?? {}, () => ({})) : {}
  const server = new Server(SERVER_INFO, {
    capabilities: {
      ...(transparent ? { resources: upstream.resources, prompts: upstream.prompts, completions: upstream.completions, logging: upstream.logging } : {}),
      tools: { listChanged: true },
    },
  })
  server.setRequestHandler('tools/list', async (request) => {
    // Every tool is in one page (no nextCursor), so a cursor is one the gateway never issued: it was
    // ignored and the whole list answered as the "next page", each tool twice to a client appending
    // pages (a probe). MCP's pagination refuses an invalid cursor with -32602.
    if (request.params?.cursor !== undefined) {
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid cursor: the gateway lists every tool in one page and issues no cursor; list again without one.')
    }
    return { tools: (await current().catalog.listFor(caller)).map((entry) => entry.definition) } as never
  })
  server.setRequestHandler('tools/call', async (request, ctx) => {
    const params = request.params
    const args = (params.arguments ?? {}) as Record<string, unknown>
    const deps = current()
    const call = startCallTrace(ctx, deps.tracing, 'tools/call', params.name)
    let errorType: string | null = null
    try {
      const result = await callTool(caller, params.name, args, ctx, deps, call)
      if (result.isError) errorType = 'tool_error'
      return result as never
    } catch (err) {
      errorType = err instanceof ProtocolError ? String(err.code) : 'internal_error'
      throw err
    } finally {
      call.end(errorType)
    }
  })
  if (transparent) passThrough(server, caller, current, upstream)
  return server
}

async function callTool(caller: Caller, name: string, args: Record<string, unknown>, ctx: ServerContext, deps: ProtocolDeps, callTrace: CallTrace): Promise<CallToolResult> {
  const { catalog, mcp } = deps
  const started = performance.now()
  const trace = callTrace.trace
  if (nestsDeeperThan(args, MAX_ARGUMENT_DEPTH)) {
    // Refused before anything walks them recursively (the redaction, a route's request): the
    // digest walks without recursion, so the record has it; the arguments are never logged.
    const detail = `The arguments of tool ${name} nest deeper than ${MAX_ARGUMENT_DEPTH} levels.`
    deps.audit(auditFacts(caller, { tool: name, argsSha256: argumentsDigest(args), args: null, trace }, mcp.path, started, {
      route: `mcp:${name}`, status: 400, decision: 'deny', code: 'bad_request', statement: null, note: detail,
    }))
    throw new ProtocolError(ProtocolErrorCode.InvalidParams, detail)
  }
  const facts = { ...toolCallFacts(mcp, name, args), trace }
  // Transparent: a name the server does not list is still its to answer (as it would directly).
  const entry = await catalog.callable(name)
  const verdict = entry ? catalog.toolAccess(caller, entry) : null
  if (!entry || !verdict?.allowed) {
    // Unknown and not allowed read the same to the caller: the list never showed either.
    deps.audit(auditFacts(caller, facts, mcp.path, started, {
      route: `mcp:${name}`, status: 403, decision: 'deny', code: entry ? 'policy_denied' : 'route_not_found',
      statement: verdict?.decision.statement?.sid ?? null,
      note: entry ? `No statement allows call on ${verdict?.decidedOn ?? `mcp:${name}`}.` : `No tool "${name}".`,
    }))
    throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${name}`)
  }
  if (entry.target.kind === 'route' || entry.target.listed !== false) callTrace.named(name)
  // Arguments the tool cannot take are refused before any approval is filed or taken, or an approved
  // call that then failed on them had used its approval up (a probe): a route tool's request is made
  // first, and a gated server tool's arguments are checked against the schema its server listed.
  const rule = deps.approvals ? approvalRuleFor(mcp, name) : undefined
  const request = entry.target.kind === 'route' ? routeRequestOf(entry.target.source, args) : null
  const refusal = typeof request === 'string' ? request : rule && entry.target.kind === 'server' ? await argumentsRefusedBy(entry.definition.inputSchema, args) : null
  if (refusal !== null) {
    const detail = `Invalid arguments for tool ${entry.name}: ${refusal}`
    deps.audit(auditFacts(caller, facts, mcp.path, started, { route: `mcp:${name}`, status: 400, decision: 'deny', code: 'bad_request', statement: null, note: detail }))
    throw new ProtocolError(ProtocolErrorCode.InvalidParams, detail)
  }
  // A path the pipeline refuses (`..` or `.` as a segment, an encoded slash) was filed for approval
  // first: an approver was asked to approve a call bound to fail (a probe). Refused as the pipeline
  // would, before anything is filed or taken.
  const badPath = rule && typeof request === 'object' && request !== null ? pathRefusal(request.target) : null
  if (badPath !== null) {
    deps.audit(auditFacts(caller, facts, mcp.path, started, { route: `mcp:${name}`, status: badPath.status, decision: 'deny', code: badPath.code, statement: null, note: badPath.detail ?? null }))
    return { content: [{ type: 'text', text: problemBody(badPath, crypto.randomUUID()) }], isError: true }
  }
  let taken: Approval | null = null
  if (rule && deps.approvals) {
    const call = { tool: name, issuer: subjectIssuer(caller.identity), subject: caller.identity.sub, actor: actorOf(caller.identity), argsSha256: facts.argsSha256, approvers: rule.approvers }
    // Taken only if decided by a role the rule names now; else why an approved one does not count.
    const took = await deps.approvals.take(call)
    taken = took.approval
    const untrusted = took.untrusted === null ? '' : `${took.untrusted} `
    if (!taken) {
      // Held, not run: the route's limits are charged here, or a looping agent files pending
      // approvals without end (the pipeline charges a call that runs).
      const charged = entry.target.kind === 'route' ? await deps.chargeRoute(caller, entry.target.source.routeId) : await deps.chargeServer(caller, entry.target.server.config.name)
      const approval = charged ? null : await deps.approvals.request({ ...call, ttlMs: rule.ttl })
      if (approval === null) {
        const refused = charged?.error ?? new GatewayError('quota_exceeded', {
          detail: `${caller.identity.sub} has ${MAX_PENDING_PER_CALLER} tool calls waiting for approval already: a new one is filed once approvers decide some, or they expire.`,
        })
        deps.audit(auditFacts(caller, facts, mcp.path, started, {
          route: `mcp:${name}`, status: refused.status, decision: 'deny', code: refused.code, statement: verdict.decision.statement?.sid ?? null, note: refused.detail ?? null, limit: charged?.limit ?? null,
        }))
        return { content: [{ type: 'text', text: problemBody(refused, crypto.randomUUID()) }], isError: true }
      }
      deps.audit(auditFacts(caller, facts, mcp.path, started, {
        route: `mcp:${name}`, status: 202, decision: 'deny', code: 'approval_pending', statement: verdict.decision.statement?.sid ?? null,
        note: `${untrusted}Approval ${approval.id} pending (approvers: ${rule.approvers.join(', ')}; expires ${approval.expires_at}).`,
      }))
      const pending = { status: 'pending_approval', approval_id: approval.id, expires_at: approval.expires_at }
      const content: CallToolResult['content'] = [{ type: 'text', text: `${JSON.stringify(pending)}\n${untrusted}This call needs approval by ${rule.approvers.join(' or ')}: ${deps.approveHint(approval.id)}. Call the tool again with the same arguments once it is approved.` }]
      // A tool with an outputSchema: clients check a result's structuredContent against it, and
      // refuse one without it, so the SDK threw at the agent, which never saw the approval (a
      // probe). Only an error result is exempt: the same text says the call is pending.
      if ('outputSchema' in entry.definition && entry.definition.outputSchema !== undefined) return { content, isError: true }
      return { content, structuredContent: pending }
    }
  }
  const outcome = typeof request === 'object' && request !== null ? await callRoute(caller, entry, request, facts, ctx, deps) : await callServer(caller, entry, args, facts, ctx, deps, started, verdict.decision.statement?.sid ?? null)
  if (taken === null || outcome.mayHaveRun || !deps.approvals) {
    if ('refused' in outcome) throw outcome.refused
    return outcome.result
  }
  // An approval authorises a call that runs: one refused on its way (the route's limits, its
  // upstream or server unreachable, the server's JSON-RPC refusal) left it spent, and the approver
  // had to approve again (probes).
  const usable = await deps.approvals.giveBack(taken.id)
  const said = usable
    ? `Approval ${taken.id} was not used, as the call did not run: call again with the same arguments before ${taken.expires_at}.`
    : `Approval ${taken.id} expired while the call was refused: it did not run, and needs a new approval.`
  // The server's refusal reaches the agent as it answered it (a JSON-RPC error), told the same.
  if ('refused' in outcome) throw new ProtocolError(outcome.refused.code, `${outcome.refused.message} ${said}`, outcome.refused.data)
  return { ...outcome.result, content: [...outcome.result.content, { type: 'text', text: said }] }
}

/**
 * A tool's result, or the server's JSON-RPC error (passed on to the agent as it came), and whether
 * its call may have run (false: refused or unsent, so an approval it took is given back).
 */
type CallOutcome = ({ result: CallToolResult } | { refused: ProtocolError }) & { mayHaveRun: boolean }

/**
 * JSON-RPC errors that say the request was refused before its method ran: unparsed, malformed, an
 * unknown method or tool, or params it would not take. Any other (-32603, a server's own code) may
 * come from a tool that had begun.
 */
const REFUSED_UNRUN: ReadonlySet<number> = new Set([ProtocolErrorCode.ParseError, ProtocolErrorCode.InvalidRequest, ProtocolErrorCode.MethodNotFound, ProtocolErrorCode.InvalidParams])

/** The route's request through the pipeline: the pipeline audits it (with the tool's facts). */
async function callRoute(caller: Caller, entry: ToolEntry, request: RouteRequest, facts: ToolCallFacts, ctx: ServerContext, deps: ProtocolDeps): Promise<CallOutcome> {
  if (entry.target.kind !== 'route') throw new Error('not a route tool')
  const headers: Record<string, string> = { accept: 'application/json' }
  if (request.contentType) headers['content-type'] = request.contentType
  if (caller.userAgent) headers['user-agent'] = caller.userAgent
  // The MCP request's trace goes on into the route's request (call-trace.ts: the gateway's own span
  // or hop), so the route's record and its upstream are found from the agent's.
  if (facts.trace) {
    headers.traceparent = traceparentOf(facts.trace)
    if (facts.trace.tracestate !== null) headers.tracestate = facts.trace.tracestate
  }
  const signal = agentGone(ctx)
  // The dispatch cuts the route's request when it fires (gateway/internal-dispatch.ts).
  const internal: InternalRequest = { method: request.method, target: request.target, headers, body: request.body, caller, call: facts, routeId: entry.target.source.routeId, signal }
  let response: InternalResponse
  try {
    response = await deps.dispatch(internal)
  } catch (err) {
    if (!signal.aborted) throw err
    // Nobody to answer; the route's record says the agent left (the pipeline's 499 when no answer had begun).
    return { result: { content: [{ type: 'text', text: 'The call was given up before its route answered: the agent cancelled it, closed its connection, or its session ended.' }], isError: true }, mayHaveRun: true }
  }
  const type = String(response.headers['content-type'] ?? '')
  const content = routeAnswerContent(response.body, type, new URL(request.target, deps.mcp.resource).href)
  const result: CallToolResult = { content: [content], isError: response.status >= 400 }
  if (response.status < 400 && content.type === 'text' && /json/i.test(type)) {
    try {
      const parsed: unknown = JSON.parse(content.text)
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) result.structuredContent = parsed as Record<string, unknown>
    } catch {
      // not JSON after all: the text stands
    }
  }
  return { result, mayHaveRun: response.mayHaveRun }
}

/**
 * Fires when the agent is gone: the MCP request cancelled (notifications/cancelled, its session or
 * server closed) or its HTTP request closed. A 2025-era session's server outlives the HTTP request
 * that carried the call, so the request's own signal (the endpoint's) counts too.
 */
function agentGone(ctx: ServerContext): AbortSignal {
  const request = ctx.http?.req?.signal
  return request === undefined ? ctx.mcpReq.signal : AbortSignal.any([ctx.mcpReq.signal, request])
}

/**
 * An aggregated server's tool: its progress streamed back to the caller, the call audited here,
 * naming the statement that allowed it (it was null: a route tool's record, written by the pipeline,
 * named its statement; a server tool's did not).
 */
async function callServer(caller: Caller, entry: ToolEntry, args: Record<string, unknown>, facts: ToolCallFacts, ctx: ServerContext, deps: ProtocolDeps, started: number, statement: string | null): Promise<CallOutcome> {
  if (entry.target.kind !== 'server') throw new Error('not a server tool')
  const { server, upstreamName } = entry.target
  const progressToken = ctx.mcpReq._meta?.progressToken
  const onprogress = progressToken === undefined ? undefined : (progress: { progress: number; total?: number; message?: string }) => {
    void ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, ...progress } })
  }
  // The server's limits, charged as a route's are before its upstream is asked: a refused call does not run.
  const charged = await deps.chargeServer(caller, server.config.name)
  if (charged) {
    const { error, limit } = charged
    deps.audit(auditFacts(caller, facts, deps.mcp.path, started, { route: `mcp:${entry.name}`, statement, status: error.status, decision: 'deny', code: error.code, note: error.detail ?? null, limit }))
    return { result: { content: [{ type: 'text', text: problemBody(error, crypto.randomUUID()) }], isError: true }, mayHaveRun: false }
  }
  const base = { route: `mcp:${entry.name}`, statement, upstream: `mcp:${server.config.name}` }
  // The call's client span, a child of the MCP request's: the server is sent its trace context. With
  // tracing off, the MCP request's own (as a route's upstream is sent one): the trace id the audit
  // record holds, for the server's logs to be matched with it.
  const parent = facts.trace ?? null
  const traced = deps.tracing && parent ? startMcpClientSpan(deps.tracing, parent, {
    method: 'tools/call', server: server.config.name, url: server.config.url, tool: { upstreamName, name: entry.name, listed: entry.target.listed !== false },
  }) : null
  let errorType: string | null = null
  try {
    const result = await server.callTool(upstreamName, args, { signal: ctx.mcpReq.signal, onprogress, trace: traced?.trace ?? parent })
    if (result.isError) errorType = 'tool_error'
    deps.audit(auditFacts(caller, facts, deps.mcp.path, started, { ...base, status: 200, decision: 'allow', code: null, note: result.isError ? 'The tool answered with an error.' : null }))
    return { result, mayHaveRun: true }
  } catch (err) {
    const message = (err as Error).message
    if (!(err instanceof CallTimedOut) && ctx.mcpReq.signal.aborted) {
      // The agent cancelled the call or went away (or its session ended): not the server's failure, and nobody to answer.
      errorType = 'cancelled'
      const note = `The call was given up before MCP server ${server.config.name} answered: the agent cancelled it, closed its connection, or its session ended.`
      deps.audit(auditFacts(caller, facts, deps.mcp.path, started, { ...base, status: CLIENT_CLOSED_REQUEST, decision: 'allow', code: null, note }))
      return { result: { content: [{ type: 'text', text: note }], isError: true }, mayHaveRun: true }
    }
    const failure = err instanceof CallTimedOut ? { status: 504, code: 'upstream_timeout' as const }
      : answerTooLarge(err) ? { status: 413, code: 'payload_too_large' as const }
        : err instanceof CallNotSent ? { status: 502, code: 'upstream_unavailable' as const } : { status: 502, code: 'upstream_error' as const }
    // The conventions' error.type: the JSON-RPC error's code when the server answered one.
    errorType = err instanceof ProtocolError && failure.status !== 413 ? String(err.code) : failure.code
    deps.audit(auditFacts(caller, facts, deps.mcp.path, started, { ...base, ...failure, decision: 'error', note: `MCP server ${server.config.name}: ${message}` }))
    if (err instanceof ProtocolError && failure.status !== 413) return { refused: err, mayHaveRun: !REFUSED_UNRUN.has(err.code) }
    return { result: { content: [{ type: 'text', text: `The MCP server ${server.config.name} failed: ${message}` }], isError: true }, mayHaveRun: !(err instanceof CallNotSent) }
  } finally {
    if (traced) endMcpSpan(traced.span, errorType)
  }
}

/** A passed-through request's trace context (tracing on): merged into its params' `_meta`, and its POST's headers. */
interface Traced {
  params<P extends { _meta?: object } | undefined>(params: P): P
  options: { headers: Record<string, string> } | undefined
}

/**
 * The transparent mode (one server, prefix: false): resources, prompts, completions and logging
 * pass through too, for callers allowed `call` on `mcp:resources`, `mcp:prompts`, `mcp:completions`
 * and `mcp:logging` (the server's log level is every caller's concern: not anyone's to set).
 */
function passThrough(server: Server, caller: Caller, current: () => ProtocolDeps, offered: ServerCapabilities): void {
  // Read at each request: a session outlives a reload that may move or drop the server (sessions.ts).
  const upstream = () => {
    const now = transparentServer(current())
    if (!now) throw new ProtocolError(ProtocolErrorCode.InvalidRequest, 'The gateway no longer passes this through to an MCP server (its config was reloaded): initialize again.')
    return now
  }
  const verdictOn = (what: string, from: UpstreamMcpServer) =>
    current().catalog.toolAccess(caller, { name: what, definition: { name: what, inputSchema: { type: 'object' } }, target: { kind: 'server', server: from, upstreamName: what } })
  type Upstream = Awaited<ReturnType<UpstreamMcpServer['client']>>
  /**
   * The upstream's answer to a request `method` the caller may make (`call` on mcp:<what>). With
   * tracing on, under a client span of the MCP request's, whose trace context `ask` sends (`traced`):
   * as a tool call's, or the server's spans were orphans (the agent's own `_meta` went on as it came).
   * The MCP request's trace is the agent's `_meta` one when valid (call-trace.ts), as a tool call's.
   */
  const gated = async <T>(what: string, method: string, ctx: ServerContext, params: object | undefined, ask: (c: Upstream, traced: Traced) => Promise<T>): Promise<T> => {
    const deps = current()
    const { tracing } = deps
    const started = performance.now()
    const call = startCallTrace(ctx, tracing, method)
    let span: ReturnType<typeof startMcpClientSpan> | null = null
    let errorType: string | null = null
    try {
      const from = upstream()
      const verdict = verdictOn(what, from)
      // Audited as a tool call is, as `mcp:<what>` (the route its policy names, which the console's
      // replay decides again): these were not audited, and a refusal left only the MCP request's
      // record, allow 200, for a search of denials to miss (a probe).
      // Params nested too deep for the redaction (mcp.log_arguments walks them recursively) are not logged.
      const given = { ...params } as Record<string, unknown>
      const deep = nestsDeeperThan(given, MAX_ARGUMENT_DEPTH)
      const facts = { ...(deep ? { tool: what, argsSha256: argumentsDigest(given), args: null } : toolCallFacts(deps.mcp, what, given)), trace: call.trace }
      const audit = (outcome: Pick<Outcome, 'status' | 'decision' | 'code' | 'note'>) => deps.audit(auditFacts(caller, facts, deps.mcp.path, started, {
        route: `mcp:${what}`, statement: verdict.decision.statement?.sid ?? null, ...(verdict.allowed ? { upstream: `mcp:${from.config.name}` } : {}), ...outcome,
      }))
      if (!verdict.allowed) {
        audit({ status: 403, decision: 'deny', code: 'policy_denied', note: `${method}: no statement allows call on mcp:${what}.` })
        throw new ProtocolError(ProtocolErrorCode.InvalidRequest, `Not allowed: mcp:${what}`)
      }
      const parent = call.trace
      span = tracing && parent ? startMcpClientSpan(tracing, parent, { method, server: from.config.name, url: from.config.url }) : null
      // With tracing off, the MCP request's own trace context, as a tool call's.
      const sent = span?.trace ?? parent
      const carried = sent ? traceCarrier(sent) : {}
      const traced: Traced = {
        // The agent's own trace context never goes on as it came (an invalid one included): the gateway is a hop.
        params: <P extends { _meta?: object } | undefined>(params: P) => ({ ...params, _meta: { ...withoutTraceContext(params?._meta), ...carried } }),
        options: sent ? { headers: carried } : undefined,
      }
      try {
        const answer = await ask(await from.client(), traced)
        audit({ status: 200, decision: 'allow', code: null, note: method })
        return answer
      } catch (err) {
        // Its answers come redacted (servers.ts); an error the SDK made of an HTTP answer does not.
        const cleaned = from.withoutCredentials(err)
        audit({ status: 502, decision: 'error', code: 'upstream_error', note: `${method}: MCP server ${from.config.name}: ${(cleaned as Error).message}` })
        throw cleaned
      }
    } catch (err) {
      errorType = err instanceof ProtocolError ? String(err.code) : 'upstream_error'
      throw err
    } finally {
      if (span) endMcpSpan(span.span, errorType)
      call.end(errorType)
    }
  }
  // Only what the server offers (the gateway's server declares the same): the SDK refuses a handler
  // for a capability its server lacks, and that threw out of every initialize (500 internal_error)
  // for a server without prompts, or any server down at the time (found by review).
  if (offered.resources) {
    server.setRequestHandler('resources/list', (request, ctx) => gated('resources', 'resources/list', ctx, request.params, (c, t) => c.listResources(t.params(request.params), t.options)) as never)
    server.setRequestHandler('resources/templates/list', (request, ctx) => gated('resources', 'resources/templates/list', ctx, request.params, (c, t) => c.listResourceTemplates(t.params(request.params), t.options)) as never)
    server.setRequestHandler('resources/read', (request, ctx) => gated('resources', 'resources/read', ctx, request.params, (c, t) => c.readResource(t.params(request.params), t.options)) as never)
    server.setRequestHandler('resources/subscribe', (request, ctx) => gated('resources', 'resources/subscribe', ctx, request.params, (c, t) => c.subscribeResource(t.params(request.params), t.options)) as never)
    server.setRequestHandler('resources/unsubscribe', (request, ctx) => gated('resources', 'resources/unsubscribe', ctx, request.params, (c, t) => c.unsubscribeResource(t.params(request.params), t.options)) as never)
  }
  if (offered.prompts) {
    server.setRequestHandler('prompts/list', (request, ctx) => gated('prompts', 'prompts/list', ctx, request.params, (c, t) => c.listPrompts(t.params(request.params), t.options)) as never)
    server.setRequestHandler('prompts/get', (request, ctx) => gated('prompts', 'prompts/get', ctx, request.params, (c, t) => c.getPrompt(t.params(request.params), t.options)) as never)
  }
  if (offered.completions) server.setRequestHandler('completion/complete', (request, ctx) => gated('completions', 'completion/complete', ctx, request.params, (c, t) => c.complete(t.params(request.params), t.options)) as never)
  if (offered.logging) {
    // setLoggingLevel takes the level alone: the trace context goes in the POST's headers only.
    server.setRequestHandler('logging/setLevel', (request, ctx) => gated('logging', 'logging/setLevel', ctx, request.params, async (c, t) => {
      await c.setLoggingLevel(request.params.level, t.options)
      return {}
    }) as never)
  }
}

/** An agent's `_meta` without the W3C keys (SEP-414) the gateway sets itself. */
function withoutTraceContext(meta: object | undefined): object {
  if (meta === undefined) return {}
  const { traceparent: _traceparent, tracestate: _tracestate, ...rest } = meta as Record<string, unknown>
  return rest
}
