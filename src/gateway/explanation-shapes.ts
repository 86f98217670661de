// POST /api/explain's request and answer (and `bouncer explain --json`'s), as explain.ts takes and
// builds them and the console reads them (console/src/explanation.tsx, the trace, the denials, the
// replay): one description, importing only errors/codes.ts (itself without imports), so the
// browser's build can take its types too.
import type { ErrorCode, RecordCode } from '../errors/codes.ts'

export interface ExplainRequest {
  method: string
  path: string
  /** Claims as the token would carry them, or a token whose claims are used (signature unchecked). */
  claims?: Record<string, unknown>
  token?: string
  /**
   * `client_cert`: the claims are a client certificate's identity, as the audit record keeps it (iss
   * the subject DN of the CA its chain ends at, sub its URI SAN or CN). Nothing in claims tells
   * that apart from a bearer token's, so it is said; without it, the claims' form decides.
   */
  credential?: 'client_cert'
  ip?: string
  now?: number
  /**
   * The roles the gateway assumed for the request (a recorded request's: the console's trace and
   * denials), held instead of those of trust rules, as an exchanged token's are. Where they differ
   * from the trust rules', a role's rules begin with a line saying so. Not taken by POST /api/explain.
   */
  roles?: readonly string[]
  /**
   * The gateway verified this identity (a recorded request's): its claim checks passed then, and are
   * not run on claims that keep only part of the token. Every other refusal (the route's accept, an
   * issuer no longer trusted) still stands. Not taken by POST /api/explain.
   */
  verified?: true
  /**
   * An MCP tool call (`bouncer explain --tool`, POST /api/explain's `tool`): how `tools/call` would
   * decide it (explainTool); method and path are then `call` and `mcp:<tool>`.
   */
  tool?: string
  /**
   * A POST's urlencoded form body (`title=x&_method=DELETE`): its `_method` fields are read as the
   * gateway reads a form POST's, and the POST decided as the methods they name too.
   */
  form?: string
  /**
   * A POST's JSON body (`{"title":"x","_method":"DELETE"}`): its top-level `_method` is read as the
   * gateway reads a JSON POST's, and the POST decided as the method it names too.
   */
  json?: string
}

export interface Explanation {
  request: { method: string; path: string; ip: string }
  route: { id: string; path: string; methods: string[]; upstream: string; public: boolean; limits: string[] } | null
  identity: {
    source: 'claims' | 'token'
    signature_checked: false
    issuer: string | null
    iss: string | null
    sub: string | null
    client_id: string | null
    problems: Array<{ code: ErrorCode; detail: string }>
    /**
     * A certificate-bound token's (cnf.x5t#S256, RFC 8705): the SHA-256 of the client certificate
     * (base64url) the gateway requires the request's connection to present, which explain does not see.
     */
    certificate_bound?: string
    /**
     * The agent acting for `sub` (an `act` claim), with the roles its side of the decision holds:
     * for a token the gateway issued, those recorded at the exchange (`act.roles`).
     */
    actor?: { sub: string; iss: string; issuer: string; roles: string[]; roles_from: 'token_exchange' | 'trust_rules' }
  } | null
  roles: Array<{
    role: string
    held: boolean
    rules: Array<{ rule: string; matched: boolean; why: string | null }>
  }>
  statements: Array<{
    sid: string
    policy: string
    effect: 'allow' | 'deny'
    roles: string[]
    matched: boolean
    why: string | null
    /** A tool call's: the route it was read for (`mcp:<tool>` with action call, or a route tool's route with its method). */
    route?: string
    /** On behalf of a user (an `act` claim): a statement of the agent's roles, matched against the agent's claims. */
    agent?: true
  }>
  decision: Verdict
  /** A tool call's explanation (ExplainRequest.tool). */
  tool?: ToolExplanation
}

/** What a tool call's explanation adds: which tool, what it would do, what decided, and any approval. */
export interface ToolExplanation {
  name: string
  /** `route`: a route tool (the route's request); `server`: an aggregated MCP server's (SERVER__TOOL); null: no tool of that name. */
  kind: 'route' | 'server' | null
  /** A route tool's HTTP request: its route, and the method and path it sends (the path's parameters from the arguments). */
  route: { id: string; method: string; path: string; upstream: string } | null
  /** A server tool: the server, and the tool's own name there. */
  server: { name: string; tool: string } | null
  /** What decided: `mcp:<tool>` (action call), or the route tool's route where the route refused; null when nothing was decided. */
  decided_on: string | null
  /** On behalf of a user: whose roles refused, the user's (`subject`) or the agent's (`actor`); null otherwise. */
  denied_by: 'subject' | 'actor' | null
  /** The mcp.approvals rule that would hold the call for approvers (the first whose tools match), or null. */
  approval: { tools: string[]; approvers: string[]; ttl_seconds: number } | null
  /** The tools this caller may call, as tools/list would list them: given when the tool is unknown or refused. */
  available: string[] | null
}

/** A decision in short: what the denials and the replay show of an explanation. */
export interface Verdict { effect: 'allow' | 'deny'; status: number; code: RecordCode | null; statement: string | null; reason: string }
