// The admin API's answers the console reads (console/src/), as the server builds them (api.ts,
// console-api.ts, replay.ts; the reload's in instance/): one description, importing only types from
// other shapes files and files with no imports, so the browser's build can take its types too. The
// OpenAPI document (console-openapi.ts, openapi.ts) describes the same answers for other clients,
// as JSON Schema (test/integration/openapi.test.ts checks real answers against it).
import type { Approval } from '../agents/mcp/approval-shapes.ts'
import type { AuditCounts, DenialGroup } from '../audit/aggregate-shapes.ts'
import type { VerifyResult } from '../audit/chain-shapes.ts'
import type { AuditRecord } from '../audit/fields.ts'
import type { ExplainRequest, Explanation, Verdict } from '../gateway/explanation-shapes.ts'

/** `admin` may do everything; `read` may read everything and simulate, but not change anything. */
export type AdminAccess = 'read' | 'admin'

/** How a caller proved it: which token, or a console sign-in. */
export type AdminVia = 'token' | 'read_token' | 'sign_in'

/** Who the credential is, and what the console offers it. */
export interface ConsoleCaller {
  access: AdminAccess
  via: AdminVia
  /** Where a person signs in to the console (admin.roles with sign_in); null when only tokens are taken. */
  sign_in: string | null
  /** Where a signed-in person signs out (POST, with this listener's Origin). */
  sign_out: string | null
  /** Who signed in (issuer/subject); null for a token. */
  principal: string | null
  /** The role of admin.roles or admin.read_roles that gave the access; null for a token. */
  role: string | null
  may: { reload: boolean; verify: boolean; approve: boolean }
}

/** GET /api/session: the caller, or nobody (no credential was sent) and where to sign in. */
export type ConsoleSession = ConsoleCaller | (Omit<ConsoleCaller, 'access' | 'via'> & { access: null; via: null })

/** POST /api/reload (and SIGHUP, and a worker's reload): the new config serves, or the old one still does. */
export type ReloadResult =
  | { ok: true; generation: number; warnings: string[] }
  | { ok: false; errors: string[] }

/** GET /api/secrets: names and versions, never a value. */
export interface Secrets {
  store: 'embedded' | 'env' | 'file' | null
  secrets: Array<{ name: string; versions: Array<{ version: number; created_at: string | null; label: 'current' | 'previous' | null }> }>
}

/** A route × role cell of the catalog: the methods the role may call, those denied outright, and whether some statements have conditions. */
export interface MatrixCell { allow: string[]; deny: string[]; conditional: boolean }

/** GET /api/catalog: the running config as the console shows it, with the last hour's refusals and unknown issuers. */
export interface Catalog {
  routes: Array<{
    id: string; methods: string[]; path: string; public: boolean; limits: string[]
    target: { kind: 'upstream' | 'function' | 'dataset' | 'none'; name: string | null }
  }>
  roles: string[]
  /** route id → role → cell (a role with no statement for the route has none). */
  matrix: Record<string, Record<string, MatrixCell>>
  issuers: Array<{
    name: string; type: 'jwt' | 'x509'; issuer: string | null; jwks_uri: string | null
    /** loading, ready or unavailable (its key set); introspection or none for an issuer without one. */
    state: 'loading' | 'ready' | 'unavailable' | 'introspection' | 'none'
    /** The public keys held now: their ids and algorithms, never more. */
    keys: ReadonlyArray<{ kid: string | null; kty: string; alg: string | null }>
    last_refresh: string | null; last_error: string | null
    /**
     * With server.workers, each worker's own (each fetches its key sets): the fields above are then
     * the worst worker's (instance/workers/catalog-merge.ts).
     */
    workers?: Array<{ worker: string; state: Catalog['issuers'][number]['state']; keys: number; last_refresh: string | null; last_error: string | null }>
  }>
  /** Tokens of issuers no config names, seen in the last hour; null when the audit log cannot be read (audit_error). */
  drift: AuditCounts['unknown_issuers'] | null
  /** Why the audit log's figures (drift, each limit's refusals) are missing: it cannot be read (its server, its file); null when they are there. */
  audit_error: string | null
  /** The pending approvals (GET /api/approvals?status=pending); null where the gateway has none. */
  approvals: Approval[] | null
  /** Why the approvals could not be read (their store failed: its path and why); null when they could, or there are none. */
  approvals_error: string | null
  limits: Array<{
    name: string; key: string; rate: string | null; burst: number | null; quota: string | null; routes: string[]
    /** From the audit log: null when it cannot be read (audit_error). */
    refused_1h: number | null; last_refused: string | null
  }>
}

/** What a record says was decided: what happened, and it stands whatever an explanation says now. */
export interface RecordedDecision {
  decision: AuditRecord['decision']
  status: number
  code: string | null
  statement: string | null
  detail: string | null
  /** The roles the gateway assumed; null when the record could not be read again (a denials group whose newest record retention took). */
  roles: string[] | null
}

/** Why an explanation under the running config differs from the record. */
export type Disagreement = 'claims_not_recorded' | 'actor_not_recorded' | 'config_changed'

/**
 * A recorded request explained again: under which config, with whose roles, whether the verdict is
 * the recorded one, and what the record leaves out. The explanation never stands alone beside a
 * decision it contradicts: `disagrees` then says why.
 */
export interface ExplainedUnder {
  /** The config running now (its reload generation and digest): a record does not say which config decided it. */
  config: 'running'
  generation: number
  sha256: string
  /**
   * Whose roles decided: the record's (those the gateway assumed), the trust rules' (read again
   * from issuer, subject and client), or null where no role was asked for (no identity, no route, a public route).
   */
  roles_from: 'record' | 'trust_rules' | null
  /** The verdict is the recorded one (an allow also agrees with a refusal after the decision: a limit, the upstream). */
  agrees: boolean
  /** Why not, in a sentence; null when it agrees. */
  disagrees: string | null
  because: Disagreement[]
  /** What the explanation cannot see for this request (claims the record does not keep), whether or not it agrees. */
  caveats: string[]
}

/** GET /api/denials: the recorded decision (the headline), a group as audit/aggregate.ts finds it, its explanation under the running config, and the request to simulate. */
export type ExplainedDenial = { recorded: Omit<RecordedDecision, 'decision'>; headline: string } & DenialGroup & {
  explanation: Verdict
  explained_under: ExplainedUnder
  simulate: Pick<ExplainRequest, 'method' | 'path' | 'claims' | 'credential' | 'tool'> & { ip: string }
}

/** GET /api/audit/page: records newest first, and whether there is another page. */
export interface AuditPage { records: AuditRecord[]; offset: number; limit: number; more: boolean }

/**
 * GET /api/audit/trace: what was decided (first), the record, and the decision explained under the
 * running config from the identity and roles the record keeps, with whether and why it disagrees.
 */
export interface Trace {
  recorded: RecordedDecision
  record: AuditRecord
  explanation: Explanation
  explained_under: ExplainedUnder
  claims: Record<string, unknown> | null
  trace_url: string | null
}

/** POST /api/audit/verify: what `bouncer audit verify` finds and how long it took (ms); `empty` when there is no log yet. */
export type Verification = (VerifyResult & { ms: number }) | { ok: true; checked: 0; chains: 0; empty: true; ms: 0 }

/** A recorded request whose decision the draft changes (POST /api/replay), standing for all alike. */
export interface ReplayChange {
  method: string
  path: string
  principal: string | null
  issuer: string | null
  source_ip: string
  /** How many recorded requests this one stands for, and the newest of them. */
  requests: number
  last: Pick<AuditRecord, 'id' | 'time' | 'status' | 'decision'>
  before: Verdict
  after: Verdict
}

/** POST /api/replay: the decisions a draft config changes (200), or the draft's errors (422). */
export type ReplayResult =
  | {
    ok: true; scanned: number; distinct: number; truncated: boolean; note: string
    /** The first REPLAY_MAX_CHANGES (admin/replay.ts), refusals first, then the most requests. */
    changes: ReplayChange[]
    /** How many changes there are in all, and whether `changes` lists fewer. */
    changes_total: number; changes_truncated: boolean
  }
  | { ok: false; errors: string[] }
