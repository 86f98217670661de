// A tool call as the audit log and the approvals see it: its facts (tool, argument digest), the rule
// that holds it for approval, and the record of a call the pipeline did not carry. No MCP SDK here:
// the admin API decides approvals without loading the protocol (mcp-loader.ts).
import type { McpApprovalConfig, McpConfig } from '../../config/index.ts'
import type { RecordCode } from '../../errors/index.ts'
import type { Caller, Decision, RequestFacts, ToolCallFacts } from '../../request/index.ts'
import { argumentsDigest, redactArguments } from './arguments.ts'

/** A tool call's facts for the audit record (arguments only with mcp.log_arguments). */
export function toolCallFacts(mcp: McpConfig, tool: string, args: Record<string, unknown>): ToolCallFacts {
  return {
    tool,
    argsSha256: argumentsDigest(args),
    args: mcp.log_arguments ? JSON.stringify(redactArguments(args)) : null,
  }
}

export function approvalRuleFor(mcp: Pick<McpConfig, 'approvals'>, tool: string): McpApprovalConfig | undefined {
  return mcp.approvals.find((rule) => rule.tools.some((glob) => glob.matches(tool)))
}

export interface Outcome {
  route: string
  status: number
  decision: Decision
  code: RecordCode | null
  statement: string | null
  note: string | null
  upstream?: string
  /** The limit that refused the call (a held call charged to its route's limits). */
  limit?: string | null
}

/** The audit record of a tool call the pipeline did not carry (refused, pending, or an MCP server's). */
export function auditFacts(caller: Caller, call: ToolCallFacts, path: string, started: number, outcome: Outcome): RequestFacts {
  return {
    startedAt: Date.now() - (performance.now() - started),
    startMono: started,
    id: crypto.randomUUID(),
    method: 'POST',
    path,
    query: '',
    headers: null,
    clientIp: caller.clientIp,
    forwardedFor: caller.clientIp,
    viaTrustedProxy: false,
    trace: call.trace ?? null,
    route: { id: outcome.route },
    params: {},
    rest: [],
    identity: caller.identity,
    credential: caller.credential,
    roles: caller.roles,
    statement: outcome.statement,
    decision: outcome.decision,
    code: outcome.code,
    error: null,
    limit: outcome.limit ?? null,
    upstream: outcome.upstream ?? null,
    upstreamStatus: null,
    upstreamMs: null,
    attempts: 0,
    status: outcome.status,
    bytesIn: 0,
    bytesOut: 0,
    masked: null,
    tool: call.tool,
    argsSha256: call.argsSha256,
    args: call.args,
    note: outcome.note,
  }
}
