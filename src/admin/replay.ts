// Recorded requests decided again (issue 20): the decision trace and the Denials page explain one
// under the running config, and replay decides the recorded requests of the last hours under a
// draft config, listing every decision that would change — the safe way to ship a policy change.
//
// A record keeps the verified identity's issuer, subject and client and the roles the gateway
// assumed, not every claim of its token. So the trace and the denials explain a request with the
// recorded roles (what the gateway assumed, whatever claim its trust rules read), and say so where
// the verdict still differs from the recorded one (a condition on a claim the record does not keep,
// a config changed since) rather than showing a verdict that contradicts what happened (a probe
// found "allow" beside a recorded 403). Replay decides each request twice from the same
// reconstructed identity, with the roles of trust rules, once under the running config and once
// under the draft. Both are explain's (the gateway's own code), so every refusal it finds stands (a
// reviewer found a draft that narrowed a route's accept replayed as "no change" by a copy that
// kept only the policy verdict); a difference is then the draft's doing alone; a rule or condition
// on a claim the record does not keep decides the same way both times, so a change that hinges only
// on such a claim is not seen (the answer says so). Limits and upstream failures are not replayed:
// only route, credential, identity, roles and policy.
import { NoAuditLog, pagedRecords, readRecords, type AuditRecord, type AuditSource } from '../audit/index.ts'
import { formatDiagnostic, jwtIssuers, loadConfigText, type Diagnostic, type StandIn, type UnsetReference } from '../config/index.ts'
import type { ErrorCode } from '../errors/index.ts'
import { AUTH_FAILURES_LIMIT } from '../limits/index.ts'
import { compileRuntime, createRuntimeDeps, explainGranted, explainTool, loadModulesFor, overrideAskedIn, type ExplainRequest, type Explanation, type Runtime, type Verdict } from '../gateway/index.ts'
import { createLogger } from '../telemetry/index.ts'
import type { Disagreement, ExplainedUnder, ReplayChange, ReplayResult } from './console-shapes.ts'

/** At most this many records are read; the answer says when the range held more. */
export const REPLAY_MAX_RECORDS = 100_000

/**
 * At most this many changes are listed, those that matter most (refusals first, then the most
 * requests); the answer says how many there were. Each carries both verdicts and their reasons: a
 * draft that refused a busy route listed up to 100,000 of them, tens of MB of JSON built whole in the
 * gateway's memory and then the console's, where the first screen is what anyone reads (the admin probe).
 */
export const REPLAY_MAX_CHANGES = 1_000

/** What replay keeps of a record while it reads the others: what deciding it again and its change read, not its user agent, arguments or hashes. */
type Kept = Pick<AuditRecord, 'id' | 'time' | 'method' | 'path' | 'route' | 'issuer' | 'subject' | 'client_id' | 'source_ip' | 'decision' | 'status' | 'code' | 'statement' | 'detail' | 'actor' | 'credential' | 'limit' | 'instance'>

function keptOf(r: AuditRecord): Kept {
  return {
    id: r.id, time: r.time, method: r.method, path: r.path, route: r.route, issuer: r.issuer, subject: r.subject, client_id: r.client_id, source_ip: r.source_ip,
    decision: r.decision, status: r.status, code: r.code, statement: r.statement, detail: r.detail, actor: r.actor, credential: r.credential, limit: r.limit, instance: r.instance,
  }
}

/**
 * The longest a replay decides requests before the event loop gets a turn. Explain is synchronous
 * and runs on the gateway's thread: 5,000 distinct requests decided twice held every request to the
 * gateway 1.8 s, and the 100,000 a replay reads could hold them for half a minute (the admin probe).
 */
const REPLAY_SLICE_MS = 10

/** Resolves at once within a slice, else after a turn of the event loop (which starts the next slice). */
function slices(sliceMs: number): () => Promise<void> {
  let started = performance.now()
  return async () => {
    if (performance.now() - started < sliceMs) return
    await new Promise<void>((resolve) => setImmediate(resolve))
    started = performance.now()
  }
}

/** The claims a recorded request's verified identity stands for (the record keeps iss, sub and the client). */
export function recordedClaims(record: Pick<AuditRecord, 'issuer' | 'subject' | 'client_id'>): Record<string, unknown> | undefined {
  if (record.subject === null) return undefined
  const claims: Record<string, unknown> = { sub: record.subject }
  if (record.issuer !== null) claims.iss = record.issuer
  if (record.client_id !== null) Object.assign(claims, { client_id: record.client_id, azp: record.client_id })
  return claims
}

/**
 * What explain must be told of the recorded credential: a client certificate's claims (iss a CA's
 * DN) look like a bearer token's, and were explained as one from an issuer that does not exist.
 */
export function recordedCredential(record: Pick<AuditRecord, 'credential'>): Pick<ExplainRequest, 'credential'> {
  return record.credential === 'client_cert' ? { credential: 'client_cert' } : {}
}

/**
 * A POST refused for the method its `_method` named, given to explain as it came (in the query, the
 * form body or the JSON body): the record keeps the refusal's detail, not the query or the body, and
 * the bare POST was explained as allowed, "the config has likely changed", beside the 403 (found by
 * the access probe). `asQuery`: the simulator's request, which carries no body, names it in the query
 * (decided alike). Any other record: its path.
 */
export function recordedOverride(record: Pick<AuditRecord, 'method' | 'path' | 'detail'>, asQuery = false): Pick<ExplainRequest, 'path' | 'form' | 'json'> {
  const asked = record.method === 'POST' && record.detail !== null ? overrideAskedIn(record.detail) : null
  if (asked === null) return { path: record.path }
  const field = `_method=${encodeURIComponent(asked.method)}`
  // A method-override header (forward-auth) is decided as the query's `_method` is: explain takes no headers.
  if (asked.source === 'query' || asked.source === 'header' || asQuery) return { path: `${record.path}?${field}` }
  return asked.source === 'form' ? { path: record.path, form: field } : { path: record.path, json: JSON.stringify({ _method: asked.method }) }
}

/** The claims recordedClaims gives back: a condition on any other reads it as absent, whatever the token held. */
const KEPT_CLAIMS = new Set(['iss', 'sub', 'client_id', 'azp'])

const unrecordedClaims = (conditions: ReadonlyArray<{ name: string }> | null): string[] => (conditions ?? []).map((c) => c.name).filter((name) => !KEPT_CLAIMS.has(name))

/** What the trace and the denials know of a recorded request; `roles` null when the record could not be read again. */
export type RecordedRequest = Pick<AuditRecord, 'method' | 'path' | 'route' | 'issuer' | 'subject' | 'client_id' | 'source_ip' | 'decision' | 'status' | 'code' | 'statement' | 'detail' | 'actor' | 'credential' | 'limit'> & {
  roles: readonly string[] | null
  /** Which chain wrote it (the denials' groups do not say: none of them is a change). */
  instance?: string | null
}

/**
 * A change made through the admin API or from the command line (a revocation, a key made), in their
 * own chains, `admin:<host>` (admin/change-audit.ts) and `cli:<host>` (cli/change-audit.ts): no
 * request to the gateway, so nothing a config decides. The trace explained one as a request
 * ("would be 401 issuer_unknown … the config has likely changed") and replay listed it among the
 * requests a draft changes (found by the admin probe). The route is null on every such record, as
 * on no allowed request (a host named `admin` makes gateway instances `admin:<pid>`).
 */
export const changeMade = (r: Pick<AuditRecord, 'route' | 'decision'> & { instance?: string | null }): boolean =>
  r.route === null && r.decision === 'allow' && /^(admin|cli):/.test(r.instance ?? '')

/**
 * Refused at 401 with no verified identity for a reason other than no credential (token_expired,
 * issuer_unknown…): the record keeps no claims, so explaining it again would say "no token".
 */
const rejectedCredential = (r: RecordedRequest) => r.decision === 'deny' && r.status === 401 && r.subject === null && r.code !== null && r.code !== 'missing_token'

/**
 * Codes the gateway answers before any identity is established: the request's framing, size or
 * Origin (CORS), a forward-auth peer, the audit log, the identity provider's keys.
 */
const BEFORE_IDENTITY: ReadonlySet<string> = new Set(['bad_request', 'cors_origin_denied', 'payload_too_large', 'headers_too_large', 'request_timeout', 'untrusted_proxy', 'audit_unavailable', 'identity_provider_unavailable'])

/**
 * Refused before any identity, for what explain does not decide (an Origin, a size, a dependency):
 * a record without claims was explained as a request without a token, "401 missing_token … the config
 * has likely changed since" beside a 403 cors_origin_denied or a 413 (found by the access probe).
 */
const refusedBeforeIdentity = (r: RecordedRequest, explained: Verdict) => r.subject === null && r.code !== null && BEFORE_IDENTITY.has(r.code) && explained.code !== r.code

/** Refused before its credential was read: its address was held back by auth_failures (limits/auth-failures.ts). */
const heldBack = (r: RecordedRequest) => r.status === 429 && r.limit === AUTH_FAILURES_LIMIT && r.subject === null

/**
 * A tool call the MCP endpoint refused, held for approval, or an approval decided (route
 * `mcp:<tool>`; a route tool's call that ran has its route's own record). Its request is the
 * endpoint's POST, whose own route (builtin/mcp, the endpoint authenticating its callers itself)
 * the request's explain would read: the console said "would be allowed: route builtin/mcp is public
 * now" beside a tool the agent was refused. A tool call is explained by explainTool (the action call
 * on the tool's route, and for a route tool the route's for its method, as tools/call decides).
 */
const toolCall = (r: RecordedRequest) => r.route !== null && r.route.startsWith('mcp:')

/** An approver's decision on a pending call (agents/mcp/approval-decisions.ts): recorded on its admin API request, by the approver. */
const approvalDecision = (r: RecordedRequest) => r.path.startsWith('/api/approvals/')

/** Codes of the steps before the upstream (route, credential, access): an allow under the running config contradicts them. */
const BEFORE_UPSTREAM = new Set(['no_role', 'policy_denied', 'route_not_found', 'method_not_allowed', 'bad_path'])

/**
 * A recorded request explained under the running config: with the roles the gateway assumed (the
 * record's), its claim checks taken as passed (the gateway verified the identity), and a
 * disagreement with the record said, with why, instead of left for the reader to find.
 */
export async function explainRecorded(rt: Runtime, record: RecordedRequest, options: { tools: boolean } = { tools: true }): Promise<{ explanation: Explanation; under: ExplainedUnder }> {
  const claims = recordedClaims(record)
  // No role recorded is the gateway's answer only where it said so (no_role); else the step was not reached.
  const assumed = record.roles !== null && (record.roles.length > 0 || record.code === 'no_role') ? record.roles : undefined
  const request: ExplainRequest = {
    method: record.method, ...recordedOverride(record), claims, ip: record.source_ip, ...recordedCredential(record),
    ...(claims === undefined ? {} : { verified: true, ...(assumed === undefined ? {} : { roles: assumed }) }),
  }
  // A tool call is decided again as tools/call decides it, from the identity and roles the record keeps.
  const redecided = options.tools && toolCall(record) && !approvalDecision(record) && claims !== undefined
  const toolGranted = new Set<string>()
  const { explanation, granted } = redecided
    ? { explanation: await explainTool(rt, { ...request, tool: (record.route as string).slice('mcp:'.length) }, toolGranted), granted: toolGranted }
    : explainGranted(rt, request)
  const caveats: string[] = []
  const reasons: Array<[Disagreement, string]> = []
  let rolesFrom: ExplainedUnder['roles_from'] = null
  if (toolCall(record) && !redecided) {
    const route = record.route as string
    explanation.route = { id: route, path: record.path, methods: ['call'], upstream: '(MCP tool)', public: false, limits: [] }
    explanation.identity = null
    explanation.roles = []
    explanation.statements = []
    explanation.decision = {
      effect: record.decision === 'allow' ? 'allow' : 'deny', status: record.status, code: record.code as ErrorCode | null, statement: record.statement,
      reason: `Not decided again: ${approvalDecision(record) ? 'an approver\'s decision on a pending tool call is theirs, not a policy\'s' : 'the record keeps no identity to decide the tool call for'}; the record says${record.detail ? ` "${record.detail}"` : ` ${recordedOutcome(record)}`}.`,
    }
    caveats.push(`A tool call (route "${route}"): ${approvalDecision(record) ? 'an approver decided it' : 'the MCP endpoint decided it'}, and it is not explained again under the running config; the decision shown is the recorded one.`)
  } else if (changeMade(record)) {
    const made = record.method === 'CLI' ? 'a change made from the command line' : 'a change made through the admin API'
    explanation.route = null
    explanation.identity = null
    explanation.roles = []
    explanation.statements = []
    explanation.decision = {
      effect: 'allow', status: record.status, code: null, statement: null,
      reason: `Not decided again: ${made}, not a request to the gateway${record.detail ? ` (the record says "${record.detail}")` : ''}; no config decides it.`,
    }
  } else if (heldBack(record)) {
    explanation.decision = {
      effect: 'deny', status: record.status, code: record.code as ErrorCode, statement: null,
      reason: `The address ${record.source_ip ?? '(not recorded)'} was held back by auth_failures: too many of its credentials had failed verification, so this request's credential was not read and no policy was evaluated${record.detail ? ` (the record says "${record.detail}")` : ''}.`,
    }
  } else if (rejectedCredential(record)) {
    explanation.decision = {
      effect: 'deny', status: record.status, code: record.code as ErrorCode, statement: null,
      reason: `The credential was rejected before an identity existed${record.detail ? `: ${record.detail.replace(/\.?$/, '.')}` : '.'} No policy was evaluated; the record keeps no claims to explain it again.`,
    }
  } else if (refusedBeforeIdentity(record, explanation.decision)) {
    explanation.decision = {
      effect: 'deny', status: record.status, code: record.code as ErrorCode, statement: null,
      reason: `Refused before any identity was established (${record.code})${record.detail ? `: ${record.detail.replace(/\.?$/, '.')}` : '.'} No policy was evaluated; the record keeps nothing explain decides again.`,
    }
  } else if (claims !== undefined) {
    rolesFrom = noteDifferences(rt, request, explanation, granted, record, caveats, reasons)
  }
  if (record.actor !== null) {
    caveats.push(`On behalf of agent "${record.actor}": the record keeps neither the agent's roles nor its claims, so only the user's side is explained.`)
    reasons.push(['actor_not_recorded', `the agent "${record.actor}" acting for the user is not explained again`])
  }
  const decision = explanation.decision
  const agrees = sameOutcome(record, decision)
  // (A held tool call's approval_pending is the decision itself, explained as held.)
  if (agrees && decision.effect === 'allow' && record.decision !== 'allow' && record.code !== null && record.code !== 'approval_pending') {
    caveats.push(`Refused after the policies allowed it (${record.code}): limits and upstreams are not explained again.`)
  }
  if (!agrees && reasons.length === 0) {
    reasons.push(['config_changed', 'nothing the record leaves out explains it, so the config has likely changed since (a record does not say which config decided it)'])
  }
  const because = agrees ? [] : [...new Set(reasons.map(([cause]) => cause))]
  return {
    explanation,
    under: {
      config: 'running', generation: rt.generation, sha256: rt.configDigest, roles_from: rolesFrom, agrees,
      disagrees: agrees ? null : `The record says ${recordedOutcome(record)}; explained under the running config, ${explainedOutcome(decision)}: ${reasons.map(([, why]) => why).join('; ')}.`,
      because, caveats,
    },
  }
}

/**
 * Notes where the explanation of a verified identity's request may part from the record, and why:
 * what the record leaves out (claims that trust rules, statements and required claims read) and what
 * the running config changed (the route, the credential it takes, roles, statements). The verdict is
 * explain's own. Returns whose roles decided.
 */
function noteDifferences(
  rt: Runtime, request: ExplainRequest, explanation: Explanation, granted: ReadonlySet<string>, record: RecordedRequest, caveats: string[], reasons: Array<[Disagreement, string]>,
): ExplainedUnder['roles_from'] {
  const { route, identity: described } = explanation
  if (route === null) {
    reasons.push(['config_changed', `no route of the running config matches ${record.method} ${JSON.stringify(record.path)}${record.route ? ` (it matched "${record.route}")` : ''}`])
    return null
  }
  if (record.route !== null && route.id !== record.route) reasons.push(['config_changed', `it matches route "${route.id}" now, not "${record.route}"`])
  if (route.public) {
    reasons.push(['config_changed', `route "${route.id}" is public now`])
    return null
  }
  if (described === null || described.issuer === null) {
    reasons.push(['config_changed', request.credential === 'client_cert'
      ? `no x509 issuer of the running config names the CA ${JSON.stringify(record.issuer)} (removed since)`
      : `the running config verifies no token of issuer ${JSON.stringify(record.issuer)} (removed since, or a credential explain does not read)`])
    return null
  }
  const issuer = jwtIssuers(rt.config).find((i) => i.name === described.issuer)
  const required = issuer?.required_claims.filter((name) => !KEPT_CLAIMS.has(name)) ?? []
  if (issuer && required.length > 0) {
    caveats.push(`Issuer "${issuer.name}" requires the claim${required.length === 1 ? '' : 's'} ${required.join(', ')}: the gateway checked it when it verified the token; the record does not keep it.`)
  }
  // The gateway took this credential then: a refusal now (the route's accept narrowed, say) is the config's.
  const refused = described.problems[0]
  if (refused) {
    reasons.push(['config_changed', `the running config refuses the credential the gateway took then (${refused.detail.replace(/\.$/, '')})`])
    return null
  }

  // `granted`: the roles trust rules grant now, read again from the record (with roles given, explain holds those instead).
  const { roles } = request
  for (const entry of explanation.roles) {
    for (const r of entry.rules) r.why = unrecorded(r.why)
    // A trust rule that fails here only for a claim the record does not keep.
    const rule = rt.access.roles.find((r) => r.name === entry.role)?.rules
      .find((r) => r.issuer === described.issuer && (r.subject === null || r.subject.matches(described.sub ?? '')) && unrecordedClaims(r.claims).length > 0)
    if (rule && !granted.has(entry.role)) {
      caveats.push(`Role "${entry.role}": its trust rule reads the claim ${unrecordedClaims(rule.claims).join(', ')}, which the record does not keep${entry.held && roles !== undefined ? '; the gateway assumed the role, as the record says' : ''}.`)
      if (roles === undefined) reasons.push(['claims_not_recorded', `role "${entry.role}" is granted on the claim ${unrecordedClaims(rule.claims).join(', ')}, which the record does not keep`])
    }
    if (roles !== undefined && !entry.held && granted.has(entry.role)) {
      reasons.push(['config_changed', `the running config's trust rules grant role "${entry.role}", which the gateway did not assume then`])
    }
  }
  for (const name of roles ?? []) {
    if (rt.access.roles.some((r) => r.name === name)) continue
    caveats.push(`Role "${name}", which the gateway assumed, is not in the running config.`)
    reasons.push(['config_changed', `role "${name}" is not in the running config`])
  }

  for (const entry of explanation.statements) entry.why = unrecorded(entry.why)
  const onClaims = explanation.statements.flatMap((s) => rt.access.statements.get(s.policy)?.filter((c) => c.sid === s.sid && unrecordedClaims(c.claims).length > 0) ?? [])
  for (const s of onClaims) caveats.push(`Statement "${s.sid}" (${s.effect}) reads the claim ${unrecordedClaims(s.claims).join(', ')}, which the record does not keep: it cannot match here.`)
  // The recorded statement first, when it is one of them: it is what decided.
  const deciding = onClaims.filter((s) => s.sid === record.statement)
  for (const s of deciding.length > 0 ? deciding : onClaims) {
    reasons.push(['claims_not_recorded', `statement "${s.sid}" reads the claim ${unrecordedClaims(s.claims).join(', ')}, which the record does not keep`])
  }
  if (record.statement !== null && ![...rt.access.statements.values()].some((list) => list.some((s) => s.sid === record.statement))) {
    reasons.push(['config_changed', `statement "${record.statement}" is not in the running config`])
  }
  return roles === undefined ? 'trust_rules' : 'record'
}

/** A trust rule's or statement's "claim X is missing" where the record does not keep X: said, so it is not taken for the token's. */
function unrecorded(why: string | null): string | null {
  const missing = why === null ? null : /^claim (\S+) is missing/.exec(why)
  return missing && !KEPT_CLAIMS.has(missing[1] as string) ? `${why}: not recorded, the record does not keep it` : why
}

/** Whether a verdict is what the record says happened: the same refusal, or an allow where the request passed access. */
function sameOutcome(record: RecordedRequest, verdict: Verdict): boolean {
  // A tool call held for approval (202): allowed by the policies, recorded as not run.
  if (verdict.effect === 'allow' && verdict.status === 202 && record.status === 202) {
    return record.statement === null || verdict.statement === null || record.statement === verdict.statement
  }
  if (verdict.effect === 'allow') {
    if (record.decision !== 'allow' && (record.code === null || record.status === 401 || BEFORE_UPSTREAM.has(record.code))) return false
    return record.statement === null || verdict.statement === null || record.statement === verdict.statement
  }
  return verdict.status === record.status && verdict.code === record.code && (verdict.code !== 'policy_denied' || verdict.statement === record.statement)
}

const recordedOutcome = (r: RecordedRequest) =>
  `${r.decision === 'allow' ? `allowed (${r.status})` : `${r.status} ${r.code ?? r.decision}`}${r.statement ? ` by statement "${r.statement}"` : ''}`

const explainedOutcome = (v: Verdict) =>
  v.effect === 'allow' ? `it would be allowed${v.statement ? ` by statement "${v.statement}"` : ''}` : `it would be ${v.status} ${v.code}${v.statement ? ` by statement "${v.statement}"` : ''}`

/** Replay's verdict: the roles of trust rules (the draft may change them), the required claims taken as checked. */
async function verdict(rt: Runtime, record: Kept): Promise<Verdict> {
  // A tool call is not replayed: a draft's MCP servers would be asked for their tools (and the recorded verdict stands for both).
  const { explanation } = await explainRecorded(rt, { ...record, roles: null }, { tools: false })
  const { decision } = explanation
  return { effect: decision.effect, status: decision.status, code: decision.code, statement: decision.statement, reason: decision.reason }
}

/** Refused before any decision (a bad request, a token that did not verify), or no request at all (a change): the draft cannot change those. */
const undecidable = (r: Kept) => r.method === '-' || changeMade(r) || (r.status === 401 && r.subject === null) || r.status === 400 || r.status === 413 || r.status === 431

/**
 * A draft reads nothing of this process's environment: its `${env:NAME:-default}` takes the
 * default, and its `${env:NAME}` stays as written. Resolved here, the environment (the master key,
 * env-store secrets) came back in the answer wherever it quoted a value (an invalid listen address,
 * a route id, a piece of a path), to any admin (adversarial probes); hiding the values afterwards
 * could not hide a short one or a number (`abc`, `1234`) without blanking every such text of the answer.
 */
/**
 * Where a draft's unset `${env:NAME}` is a whole address of a server no decision reads — an
 * upstream, a store, a datasource, the tracing collector — it stands for an address that is never
 * reached (.invalid, RFC 6761), so a production config whose addresses come from its environment
 * replays as it is. Anywhere else (an issuer, a path, a network) it stays as written: a stand-in
 * there would change decisions, and the error says how to give it a value.
 */
const ADDRESS_STAND_INS: ReadonlyMap<string, string> = new Map([
  ['upstreams.*.url', 'http://replay.invalid'],
  ['upstreams.*.targets.*', 'http://replay.invalid'],
  ['limits_store.url', 'redis://replay.invalid'],
  ['sign_in.session.store.url', 'redis://replay.invalid'],
  ['audit.sinks.*.url', 'postgres://replay.invalid/replay'],
  ['api_keys.store.url', 'postgres://replay.invalid/replay'],
  ['datasources.*.url', 'postgres://replay.invalid/replay'],
  ['telemetry.otlp_endpoint', 'http://replay.invalid'],
])

const addressStandIn: StandIn = (path) => ADDRESS_STAND_INS.get(path.map((part) => (typeof part === 'number' ? '*' : part)).join('.'))

/**
 * An error at a place that holds an `${env:NAME}` kept as written (or inside it, or around it) says
 * why: the draft kept it, which a URL or an address then fails (a production config's
 * `${env:AUDIT_DATABASE_URL}` made every replay of it "a PostgreSQL URL starts with postgres://",
 * with no word of the reason). Found by path, not by the error's line: a folded value's error
 * stands on its key's line, the reference on the next.
 */
function unsetHint(diagnostic: Diagnostic, kept: readonly UnsetReference[]): string {
  const at = diagnostic.path
  if (at.length === 0) return ''
  const within = (outer: ReadonlyArray<string | number>, inner: ReadonlyArray<string | number>) => outer.every((part, i) => part === inner[i])
  // The place itself, or the map or list right around it (a problem said of an upstream, a route).
  const near = (ref: UnsetReference) => within(at, ref.path) && ref.path.length - at.length <= 1
  const names = [...new Set(kept.filter(near).map((ref) => ref.name))]
  if (names.length === 0) return ''
  const references = names.map((name) => `\${env:${name}}`).join(', ')
  const example = names[0] as string
  return ` (a draft reads no environment, so ${references} ${names.length === 1 ? 'stays' : 'stay'} as written: give it a default, \${env:${example}:-value}, or write the value)`
}

export async function replay(current: Runtime, source: AuditSource, options: { draft: string; sinceMs: number }): Promise<ReplayResult> {
  const kept: UnsetReference[] = []
  const loaded = loadConfigText(options.draft, 'draft.yaml', {}, { unset: addressStandIn, kept })
  if (!loaded.config) {
    return { ok: false, errors: loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic('draft.yaml', d) + unsetHint(d, kept)) }
  }
  const deps = createRuntimeDeps(createLogger({ level: 'silent' }), { offline: true })
  try {
    await loadModulesFor(loaded.config)
    const draft = compileRuntime(loaded.config, deps)
    // A log with nothing written yet (the worker makes the file, then its tables) has no requests to replay.
    const read = (q: Parameters<typeof readRecords>[1]) => readRecords(source, q).catch((err: unknown) => {
      if (err instanceof NoAuditLog) return []
      throw err
    })
    // Requests alike in everything the decision reads are decided once.
    const groups = new Map<string, { record: Kept; count: number }>()
    const turn = slices(REPLAY_SLICE_MS)
    let scanned = 0
    let truncated = false
    // A page at a time, each record let go once grouped: read whole, 100,000 records of the largest
    // a client can cause were held at once (pagedRecords says what that cost an export).
    for await (const record of pagedRecords(read, { sinceMs: options.sinceMs, limit: REPLAY_MAX_RECORDS + 1 })) {
      if (scanned === REPLAY_MAX_RECORDS) {
        truncated = true
        break
      }
      scanned++
      await turn()
      if (undecidable(record)) continue
      const key = JSON.stringify([record.method, recordedOverride(record), record.issuer, record.subject, record.client_id, record.source_ip, record.credential === 'client_cert'])
      const group = groups.get(key)
      if (group) group.count++
      else groups.set(key, { record: keptOf(record), count: 1 }) // newest first: the first seen is the newest
    }
    const changes: ReplayChange[] = []
    for (const { record, count } of groups.values()) {
      await turn()
      const before = await verdict(current, record)
      const after = await verdict(draft, record)
      if (before.effect === after.effect && before.code === after.code && before.statement === after.statement) continue
      changes.push({
        method: record.method, path: record.path, principal: record.subject, issuer: record.issuer, source_ip: record.source_ip, requests: count,
        last: { id: record.id, time: record.time, status: record.status, decision: record.decision }, before, after,
      })
    }
    changes.sort((a, b) => Number(b.after.effect === 'deny') - Number(a.after.effect === 'deny') || b.requests - a.requests)
    return {
      ok: true, scanned, distinct: groups.size, truncated,
      changes: changes.slice(0, REPLAY_MAX_CHANGES), changes_total: changes.length, changes_truncated: changes.length > REPLAY_MAX_CHANGES,
      note: 'Each request is decided from its recorded identity (issuer, subject, client) under the running config and under the draft; rate limits and upstreams are not replayed.',
    }
  } finally {
    await deps.closeAll()
  }
}
