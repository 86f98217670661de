// Explains how the MCP endpoint would decide one tool call (`bouncer explain --tool`, POST
// /api/explain's `tool`, the console's recorded tool calls): which tool (a route tool and the
// request it would make, or an aggregated server's), the identity as the endpoint takes it (a bearer
// token for mcp.resource, with mcp.scopes), the roles, every statement naming `mcp:<tool>` (and a
// route tool's route), the verdict and whether an approvals rule holds the call. The verdict is the
// catalog's toolAccess, the one function tools/list and tools/call decide with, on the entry
// tools/call would find (catalog.callable): explain cannot disagree with them.
import { approvalRuleFor, exchangeIssuesFor, scopesLacking, type ToolEntry, type ToolVerdict } from '../agents/index.ts'
import { accessDenied } from '../access/index.ts'
import { EXCHANGE_ISSUER, type IssuerConfig } from '../config/index.ts'
import { GatewayError, type ErrorCode } from '../errors/index.ts'
import type { Caller, Identity } from '../request/index.ts'
import type { Runtime } from './compile.ts'
import { CREDENTIAL_NAMES, credentialOf, describeActor, describeRoles, describeStatements, identityOf, refuse, trustedIssuers, ttlText, type Problems } from './explain.ts'
import type { ExplainRequest, Explanation, ToolExplanation } from './explanation-shapes.ts'

/** What tools/call answers a tool it does not call, unknown or refused alike (protocol.ts): the record says which. */
const UNKNOWN_TO_THE_CALLER = (name: string) => `The agent is answered "Unknown tool: ${name}" (JSON-RPC -32602), as for any tool it may not call; tools/list does not show it.`

/** A tool call's explanation. Asynchronous: an aggregated server's tools are listed by the server. */
/** `granted`: filled with the roles the credential itself grants (as explainGranted's), for a recorded call's comparison. */
export async function explainTool(rt: Runtime, request: Omit<ExplainRequest, 'method' | 'path'> & { tool: string }, granted: Set<string> = new Set()): Promise<Explanation> {
  const name = request.tool
  const ip = request.ip ?? '127.0.0.1'
  const tool: ToolExplanation = { name, kind: null, route: null, server: null, decided_on: null, denied_by: null, approval: null, available: null }
  const out: Explanation = {
    request: { method: 'call', path: `mcp:${name}`, ip },
    route: null,
    identity: null,
    roles: [],
    statements: [],
    decision: { effect: 'deny', status: 0, code: null, statement: null, reason: '' },
    tool,
  }
  const mcp = rt.mcp
  if (!mcp) return refuse(out, new GatewayError('route_not_found', { detail: 'No MCP endpoint is configured (mcp): the gateway offers no tools.' }))
  const toolRoute = `mcp:${name}`
  const rule = mcp.approvals ? approvalRuleFor(mcp.config, name) : undefined
  if (rule) tool.approval = { tools: rule.tools.map((glob) => glob.text), approvers: [...rule.approvers], ttl_seconds: Math.round(rule.ttl / 1000) }
  const entry = await mcp.catalog.callable(name)
  out.route = { id: toolRoute, path: toolRoute, methods: ['call'], upstream: '(MCP tool)', public: false, limits: [] }
  if (entry) describeTarget(rt, entry, tool, out)

  // The endpoint's resource server: bearer tokens only, of the gateway's issuers, for this resource
  // (RFC 8707); its own exchanged tokens while the exchange issues them for it (resource-server.ts).
  const resource = mcp.config.resource
  const takesOwn = exchangeIssuesFor(rt.config, resource)
  const issuers: IssuerConfig[] = trustedIssuers(rt.config)
    .filter((issuer) => issuer.name !== EXCHANGE_ISSUER || takesOwn)
    .map((issuer) => ({ ...issuer, audiences: [resource], client_id_audience: false }))
  if (request.token === undefined && request.claims === undefined) {
    return refuse(out, new GatewayError('missing_token', { detail: `No claims or token were given: the MCP endpoint needs a bearer token for ${resource} (Authorization: Bearer …).` }))
  }
  const credential = credentialOf(rt.config, issuers, request as ExplainRequest, ['bearer'])
  const { identity: found, problems, described } = identityOf(issuers, request as ExplainRequest, credential, undefined, rt.config.server.max_token_bytes)
  out.identity = described
  if (credential.refusal) {
    const refusal = { code: credential.refusal.code, detail: `The MCP endpoint takes bearer tokens for ${resource} only; this is ${CREDENTIAL_NAMES[credential.kind]}.` }
    if (credential.kind === 'api_key') problems.splice(0, problems.length, refusal)
    else problems.unshift(refusal)
  }
  if (!found) {
    const problem = problems[0] as { code: ErrorCode; detail: string }
    return refuse(out, new GatewayError(problem.code, { detail: problem.detail }))
  }
  // A recorded call's identity passed them when the gateway verified it; the record keeps no scope.
  const lacking = request.verified ? null : scopesLacking(mcp.config, found.claims)
  if (lacking !== null) problems.push({ code: 'policy_denied', detail: lacking })

  // Roles given (a recorded call's) are held as an exchange's are, as explain holds them for a request.
  const identity: Identity = request.roles === undefined ? found : { ...found, grantedRoles: request.roles }
  const roles = rt.access.resolver.rolesFor(identity)
  const caller: Caller = { identity, credential: found.grantedRoles === undefined ? 'bearer' : 'exchanged', roles, clientIp: ip, userAgent: null }
  out.roles = describeRoles(rt, request, found, identity, roles, granted)
  const actor = identity.actor
  const actorRoles = actor ? rt.access.resolver.actorRolesFor(actor) : []
  if (actor && described) described.actor = describeActor(actor, actorRoles)
  const read = (policyRoute: string, policy: Parameters<typeof describeStatements>[1], method: string) => {
    const subject = describeStatements(roles, policy, method, ip, identity.claims).map((s) => ({ ...s, route: policyRoute }))
    const agent = actor ? describeStatements(actorRoles, policy, method, ip, actor.claims).map((s) => ({ ...s, route: policyRoute, agent: true as const })) : []
    return [...subject, ...agent]
  }
  out.statements = read(toolRoute, mcp.catalog.policyOf(toolRoute), 'call')
  if (entry?.target.kind === 'route' && !entry.target.route.public) out.statements.push(...read(entry.target.source.routeId, entry.target.route.policy, entry.target.source.method))

  if (!entry) {
    tool.available = (await mcp.catalog.listFor(caller)).map((e) => e.name)
    // 403, as tools/call records it: the agent is told the same as for a tool it may not call.
    out.decision = {
      effect: 'deny', status: 403, code: 'route_not_found', statement: null,
      reason: `403 route_not_found: No tool "${name}": no route tool has that name, and no MCP server of mcp.servers lists it. ${UNKNOWN_TO_THE_CALLER(name)} ${availableText(tool.available)}`,
    }
    return withProblems(out, problems, null)
  }
  const verdict = mcp.catalog.toolAccess(caller, entry)
  tool.decided_on = verdict.decidedOn
  tool.denied_by = verdict.deniedBy ?? null
  if (verdict.allowed) {
    const statement = verdict.decision.statement
    out.decision = {
      effect: 'allow',
      status: rule ? 202 : 200,
      code: rule ? 'approval_pending' : null, // as tools/call records a held call
      statement: statement?.sid ?? null,
      reason: `${actor ? 'Allowed for the user and for the agent acting for them (the agent\'s statement' : 'Allowed by statement'} "${statement?.sid}" of policy "${statement?.policy}"${actor ? ', ' : ' ('}call on ${toolRoute}); no deny statement matched.${routeSays(entry)}${rule ? ` Held for approval by ${rule.approvers.join(' or ')} (ttl ${ttlText(rule.ttl / 1000)}): the call answers pending_approval until an approver approves it; the same call, with the same arguments, then runs once.` : ''}`,
    }
    return withProblems(out, problems, verdict)
  }
  tool.available = (await mcp.catalog.listFor(caller)).map((e) => e.name)
  const method = verdict.decidedOn === toolRoute ? 'call' : (entry.target.kind === 'route' ? entry.target.source.method : 'call')
  const denied = accessDenied({ roles, decision: verdict.decision, ...(actor ? { actorRoles, deniedBy: verdict.deniedBy ?? null } : {}) }, identity, verdict.decidedOn, method)
  // tools/call records every refusal of a tool it found as 403 policy_denied (a caller with no role too).
  out.decision = { effect: 'deny', status: 403, code: 'policy_denied', statement: verdict.decision.statement?.sid ?? null, reason: `403 policy_denied: ${denied.detail}` }
  if (verdict.decision.reason === 'explicit_deny') out.decision.reason += ' An explicit deny wins over any allow.'
  if (verdict.decidedOn !== toolRoute) {
    out.decision.reason += ` The tool's own statement allows call on ${toolRoute}, but its route "${verdict.decidedOn}" refuses ${method}: an agent cannot do through MCP what its roles cannot do over HTTP.`
  }
  out.decision.reason += ` ${UNKNOWN_TO_THE_CALLER(name)} ${availableText(tool.available)}`
  return withProblems(out, problems, verdict)
}

/** Which tool a name is: a route tool's route and request, or the server that lists it. */
function describeTarget(rt: Runtime, entry: ToolEntry, tool: ToolExplanation, out: Explanation): void {
  const target = entry.target
  if (target.kind === 'route') {
    const routeConfig = rt.config.routes.find((r) => r.id === target.source.routeId)
    const upstream = routeConfig?.upstream ?? (routeConfig?.dataset ? `dataset ${routeConfig.dataset}` : routeConfig?.function ? `function ${routeConfig.function}` : '(built in)')
    tool.kind = 'route'
    tool.route = { id: target.source.routeId, method: target.source.method, path: target.source.pattern.text, upstream }
    if (out.route) out.route.upstream = `route ${target.source.routeId}: ${target.source.method} ${target.source.pattern.text} → ${upstream}`
    return
  }
  tool.kind = 'server'
  tool.server = { name: target.server.config.name, tool: target.upstreamName }
  if (out.route) out.route.upstream = `MCP server ${target.server.config.name} (its tool ${target.upstreamName})`
}

/** A route tool's call goes on through the pipeline, which decides its request again and applies the route's limits. */
function routeSays(entry: ToolEntry): string {
  if (entry.target.kind !== 'route') return ''
  const { source, route } = entry.target
  if (route.public) return ` Its route "${source.routeId}" is public: the call is sent as ${source.method} ${source.pattern.text} without a policy of the route's.`
  return ` Its route "${source.routeId}" allows ${source.method} too: the call is sent through the pipeline as ${source.method} ${source.pattern.text}, which decides it again and applies the route's limits.`
}

/** Refusals of the identity that a verdict was still reached past (an expired token, a scope lacking): the first stands. */
function withProblems(out: Explanation, problems: Problems, verdict: ToolVerdict | null): Explanation {
  const first = problems[0]
  if (!first) return out
  const { tool } = out
  refuse(out, new GatewayError(first.code, { detail: first.detail }))
  const would = verdict === null ? `it would be refused: no tool "${tool?.name}"` : verdict.allowed ? `the endpoint would allow it${tool?.approval ? `, held for approval by ${tool.approval.approvers.join(' or ')}` : ''}` : 'the policies would deny it'
  out.decision.reason += ` With a valid token, ${would}${verdict?.decision.statement ? ` (statement "${verdict.decision.statement.sid}")` : ''}.`
  return out
}

function availableText(names: readonly string[]): string {
  return names.length === 0 ? 'This caller may call no tool.' : `The tools this caller may call (as tools/list lists them): ${names.join(', ')}.`
}
