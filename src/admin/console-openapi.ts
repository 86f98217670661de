// The console's endpoints (console-api.ts) in the admin API's OpenAPI document (openapi.ts adds
// these paths and schemas to its own). test/integration/openapi.test.ts calls each and checks it.
import type { JsonSchema } from '../config/index.ts'

const string = { type: 'string' } as const
const integer = { type: 'integer' } as const
const number = { type: 'number' } as const
const boolean = { type: 'boolean' } as const
const nullable = (schema: JsonSchema): JsonSchema => ({ anyOf: [schema, { type: 'null' }] })
const array = (items: JsonSchema): JsonSchema => ({ type: 'array', items })
/** Every property given is required; more may come in later versions. */
const shape = (properties: Record<string, JsonSchema>, description?: string): JsonSchema => ({
  type: 'object', ...(description ? { description } : {}), properties, required: Object.keys(properties),
})
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })
const json = (schema: JsonSchema, description: string) => ({ description, content: { 'application/json': { schema } } })
const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } })
const UNAUTHORIZED = problem('No admin credential, or not the right one (missing_token, unauthorized; session_required or session_expired where the console signs people in, with the sign-in path in X-Bouncer-Sign-In).')
const READ_ONLY = problem('The credential reads only (admin.read_token): this changes something, so it needs admin.token (policy_denied).')
const BAD_RANGE = problem('since, until or a filter does not parse, or the range is over 31 days (bad_request).')
const NO_SINK = problem('No sqlite or postgres audit sink to read (route_not_found).')
/** The audit log cannot be read for its own reason (audit/unreadable.ts). */
export const LOG_UNREADABLE = problem('The audit log cannot be read, and why: its PostgreSQL server not reachable or gone, a read ended at read_timeout, a SQLite file damaged or locked (audit_unavailable).')

const RANGE = [
  { name: 'since', in: 'query', schema: string, description: 'a duration back from now (15m, 1h, 30d) or a time; default 1h (denials: 24h)' },
  { name: 'until', in: 'query', schema: string, description: 'a time, or a date alone (that whole day, UTC); default now' },
  { name: 'route', in: 'query', schema: string, description: 'only this route id' },
  { name: 'principal', in: 'query', schema: string, description: "only this caller's subject" },
]
const SEARCH = [
  ...['since', 'until', 'principal', 'route'].map((name) => ({ name, in: 'query', schema: string })),
  { name: 'decision', in: 'query', schema: { enum: ['allow', 'deny', 'error'] } },
  { name: 'status', in: 'query', schema: integer },
]
const series = array(nullable(number))
const verdict = shape({ effect: { enum: ['allow', 'deny'] }, status: integer, code: nullable(string), statement: nullable(string), reason: string })
const issuerFields = { name: string, type: string, state: string, keys: array({ type: 'object' }), last_refresh: nullable(string), last_error: nullable(string) }
/** An issuer in the catalog; `workers` only under server.workers (so not required). */
const issuerShape: JsonSchema = {
  ...shape(issuerFields),
  properties: {
    ...issuerFields,
    workers: { ...array(shape({ worker: string, state: string, keys: integer, last_refresh: nullable(string), last_error: nullable(string) })), description: 'with server.workers only: each worker\'s own key set (each fetches its own); the fields above are then the worst worker\'s. A worker that did not answer within 5 s is unavailable, last_error saying so' },
  },
}
const recordedFields = {
  status: integer, code: nullable(string), statement: nullable(string), detail: nullable(string),
  roles: { ...nullable(array(string)), description: 'the roles the gateway assumed; null when the record could not be read again' },
}

export const consoleSchemas: Record<string, JsonSchema> = {
  ConsoleSession: shape({
    access: { enum: ['read', 'admin', null], description: 'null: no credential was sent (nobody is signed in)' },
    via: { enum: ['token', 'read_token', 'sign_in', null] },
    principal: { ...nullable(string), description: 'who signed in (issuer/subject); null for a token' },
    role: { ...nullable(string), description: 'the role of admin.roles or admin.read_roles that gave the access; null for a token' },
    may: shape({ reload: boolean, verify: boolean, approve: boolean }),
    sign_in: { ...nullable(string), description: 'where a person signs in to the console (admin.roles with sign_in); null when only tokens are taken' },
    sign_out: { ...nullable(string), description: 'where a signed-in person signs out of the console (POST, with this listener\'s Origin)' },
  }, 'Who the credential is, and what the console offers it.'),
  Overview: shape({
    since: string, until: string, bucket_ms: integer,
    buckets: { ...array(integer), description: "each bucket's start, ms since the epoch" },
    outcomes: array(shape({ key: { type: 'string', description: 'allow, deny:CODE or error:CODE' }, counts: array(integer) })),
    latency: shape({ total_p50: series, total_p99: series, upstream_p50: series, upstream_p99: series }, 'milliseconds per bucket (null: no request)'),
    totals: shape({ requests: integer, allow: integer, deny: integer, error: integer }),
    top_routes: array(shape({ route: nullable(string), requests: integer, denied: integer, errors: integer })),
    top_principals: array(shape({ principal: nullable(string), requests: integer, denied: integer })),
    denial_reasons: array(shape({ code: nullable(string), statement: nullable(string), count: integer })),
  }, 'Requests over time by outcome, latency percentiles, the busiest routes and principals, the denial reasons: computed by the audit database.'),
  RecordedDecision: shape({ decision: { enum: ['allow', 'deny', 'error'] }, ...recordedFields }, 'What the record says was decided: it stands, whatever an explanation under the running config says.'),
  ExplainedUnder: shape({
    config: { const: 'running', description: 'the config in force now: a record does not say which config decided it' },
    generation: integer, sha256: string,
    roles_from: { enum: ['record', 'trust_rules', null], description: "whose roles decided: the record's (those the gateway assumed), the trust rules' read again, or none asked for" },
    agrees: { type: 'boolean', description: 'the verdict is the recorded one (an allow also agrees with a refusal after the decision: a limit, the upstream)' },
    disagrees: { ...nullable(string), description: 'why not, in a sentence; null when it agrees' },
    because: array({ enum: ['claims_not_recorded', 'actor_not_recorded', 'config_changed'] }),
    caveats: { ...array(string), description: 'what the explanation cannot see for this request (claims the record does not keep)' },
  }, 'A recorded request explained again: under which config, with whose roles, and whether and why it differs from the record.'),
  DenialGroup: shape({
    recorded: shape(recordedFields, "the group's newest denial as recorded: its headline"),
    headline: { type: 'string', description: 'the recorded status, code and statement: "403 policy_denied (statement NoPII)"' },
    code: nullable(string), route: nullable(string), principal: nullable(string), count: integer, last: string,
    sample: shape({
      method: string, path: string, statement: nullable(string), detail: nullable(string), issuer: nullable(string), client_id: nullable(string), source_ip: string, status: integer,
      roles: array(string), actor: nullable(string), credential: nullable(string),
    }),
    explanation: { ...verdict, description: 'the decision explained under the running config' },
    explained_under: ref('ExplainedUnder'),
    simulate: { ...shape({ method: string, path: string, ip: string }), description: 'an ExplainRequest for the simulator (claims: the recorded identity; credential: client_cert where they are a client certificate identity; tool: a recorded MCP tool call, explained as tools/call decides it)' },
  }),
  AuditPage: shape({ records: array(ref('AuditRecord')), offset: integer, limit: integer, more: boolean }),
  Trace: shape({
    recorded: ref('RecordedDecision'),
    record: ref('AuditRecord'),
    explanation: ref('Explanation'),
    explained_under: ref('ExplainedUnder'),
    claims: nullable({ type: 'object' }),
    trace_url: nullable(string),
  }, 'What was decided (first), and the decision explained under the running config from the identity and roles the record keeps, with whether and why it differs.'),
  Verification: {
    ...shape({ ok: boolean, checked: integer, chains: integer, ms: integer }, 'What bouncer audit verify finds (its JSON), and how long it took (ms); only ok, checked, chains, empty and ms when there is no log yet.'),
    properties: {
      ok: boolean, checked: integer, chains: integer, ms: integer,
      empty: { type: 'boolean', description: 'true: there is no log yet, so nothing was checked' },
      anchored: { type: 'integer', description: 'chains that reach their latest signed checkpoint' },
      unanchored: { ...array(shape({ chain: string, newest: nullable(string) })), description: 'chains with records and no checkpoint signed by a key the config holds, with their newest record\'s time' },
      losses: { ...array(shape({ chain: string, id: string, time: string, detail: nullable(string) })), description: 'records_lost records: the chain is whole, and says records were lost before it numbered them (the spill files full while every sink was away)' },
      uncheckable: { ...nullable(string), description: 'why checkpoints could not be checked at all (no key): ok is then false though every record verified' },
      cuts: {
        ...array(shape({ chain: string, seq: integer, problem: { type: 'string', enum: ['unsigned', 'unknown key', 'bad signature', 'early'] }, cut: nullable({ type: 'object' }) })),
        description: 'retention cuts verify does not vouch for: bad signature and early (records deleted before retention) make ok false; unsigned and unknown key fail only --strict',
      },
    },
  },
  Catalog: shape({
    routes: array(shape({ id: string, methods: array(string), path: string, public: boolean, limits: array(string), target: { type: 'object' } })),
    roles: array(string),
    matrix: { type: 'object', description: 'route id → role → { allow: methods, deny: methods, conditional }' },
    issuers: array(issuerShape),
    drift: { ...nullable(array(shape({ detail: nullable(string), count: integer, last: string }))), description: 'tokens of issuers no config names, seen in the last hour; null when the audit log cannot be read (audit_error)' },
    audit_error: { ...nullable(string), description: 'why the audit log\'s figures (drift, each limit\'s refused_1h) are null: the log cannot be read (its server, its file); null when they are there' },
    limits: array(shape({ name: string, key: string, rate: nullable(string), burst: nullable(integer), quota: nullable(string), routes: array(string), refused_1h: nullable(integer) })),
    approvals: { anyOf: [{ type: 'null' }, array({ type: 'object' })], description: 'the pending approvals (GET /api/approvals?status=pending); null where the gateway has none, or its store cannot be read' },
    approvals_error: { ...nullable(string), description: 'why the approvals could not be read (their store failed: its path and why); null otherwise' },
  }),
  ReplayRequest: {
    type: 'object',
    properties: { config: { type: 'string', description: 'the draft config (YAML)' }, hours: { type: 'number', description: 'replay this many hours back (default 1, at most 744)' } },
    required: ['config'],
  },
  Replay: {
    anyOf: [
      shape({
        ok: { const: true }, scanned: integer, distinct: integer, truncated: boolean, note: string,
        changes: { ...array(shape({ method: string, path: string, principal: nullable(string), requests: integer, before: verdict, after: verdict })), description: 'the first 1,000 changes at most: refusals first, then the most requests' },
        changes_total: { type: 'integer', description: 'how many changes there are in all' },
        changes_truncated: { type: 'boolean', description: 'true: changes lists the first 1,000 of changes_total' },
      }),
      shape({ ok: { const: false }, errors: array(string) }),
    ],
  },
}

export function consolePaths(): Record<string, JsonSchema> {
  return {
    '/api/session': {
      get: { operationId: 'session', security: [{}, { adminToken: [] }, { consoleSession: [] }], summary: 'Who is signed in to the console, and what they may do (asked with no credential: nobody, and where to sign in)', responses: { 200: json(ref('ConsoleSession'), 'The caller, or nobody.'), 401: UNAUTHORIZED } },
    },
    '/api/overview': {
      get: {
        operationId: 'overview',
        summary: 'Traffic over time by outcome, latency, top routes, principals and denial reasons',
        parameters: RANGE,
        responses: { 200: json(ref('Overview'), 'The aggregates of the range.'), 400: BAD_RANGE, 401: UNAUTHORIZED, 404: NO_SINK, 503: LOG_UNREADABLE },
      },
    },
    '/api/denials': {
      get: {
        operationId: 'denials',
        summary: 'Denials grouped by code × route × principal, each explained, with a request to simulate',
        parameters: RANGE,
        responses: { 200: json(array(ref('DenialGroup')), 'The groups, the largest first (at most 100).'), 400: BAD_RANGE, 401: UNAUTHORIZED, 503: LOG_UNREADABLE },
      },
    },
    '/api/audit/page': {
      get: {
        operationId: 'auditPage',
        summary: 'A page of audit records, newest first (the filters of bouncer audit, with offset)',
        parameters: [...SEARCH, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } }, { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, maximum: 100_000, default: 0 } }],
        responses: { 200: json(ref('AuditPage'), 'The page, and whether there is another.'), 400: BAD_RANGE, 401: UNAUTHORIZED, 503: LOG_UNREADABLE },
      },
    },
    '/api/audit/export': {
      get: {
        operationId: 'auditExport',
        summary: 'The records of a search as a file to save: CSV or NDJSON',
        parameters: [...SEARCH, { name: 'format', in: 'query', schema: { enum: ['csv', 'ndjson'], default: 'ndjson' } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100_000, default: 100_000 } }],
        responses: {
          200: {
            description: 'An attachment: one record per line, newest first (CSV: a header line, roles joined by ;, a cell a spreadsheet would run prefixed with \'). Cut at `limit` while more records match: the file name ends `-newest-<limit>-of-more` and `X-Bouncer-Export-Truncated` gives the limit.',
            headers: { 'X-Bouncer-Export-Truncated': { description: 'Present when more records match than the file holds: its limit.', schema: { type: 'integer' } } },
            content: { 'application/x-ndjson': { schema: string }, 'text/csv': { schema: string } },
          },
          400: BAD_RANGE,
          401: UNAUTHORIZED,
          503: LOG_UNREADABLE,
        },
      },
    },
    '/api/audit/trace': {
      get: {
        operationId: 'auditTrace',
        summary: "A recorded request's decision trace: route, identity and the trust rule behind each role, the statements, limit, upstream timing, trace link",
        parameters: [{ name: 'id', in: 'query', required: true, schema: string }, { name: 'time', in: 'query', required: true, schema: string, description: "the record's time" }],
        responses: { 200: json(ref('Trace'), 'The record and its explanation.'), 400: problem('id is missing, or time is missing or not a time (bad_request).'), 401: UNAUTHORIZED, 404: problem('No such record (route_not_found).'), 503: LOG_UNREADABLE },
      },
    },
    '/api/audit/verify': {
      post: {
        operationId: 'auditVerify',
        summary: "Check the audit log's hash chain and checkpoints now (what bouncer audit verify does)",
        responses: { 200: json(ref('Verification'), 'The verdict (ok false names each problem).'), 401: UNAUTHORIZED, 403: READ_ONLY, 503: LOG_UNREADABLE },
      },
    },
    '/api/catalog': {
      get: {
        operationId: 'catalog',
        summary: 'Routes × roles, issuers with their keys and unknown issuers seen (last hour), limits and what they refused (last hour)',
        responses: { 200: json(ref('Catalog'), 'The running config, as the console shows it.'), 401: UNAUTHORIZED, 503: LOG_UNREADABLE },
      },
    },
    '/api/replay': {
      post: {
        operationId: 'replay',
        summary: 'Decide the recorded requests of the last hours again under a draft config; list every decision that changes',
        requestBody: { required: true, content: { 'application/json': { schema: ref('ReplayRequest') } } },
        responses: {
          200: json(ref('Replay'), 'The changes.'),
          400: problem('No config, or hours out of range (bad_request).'),
          401: UNAUTHORIZED,
          403: READ_ONLY,
          422: json(ref('Replay'), 'The draft has errors (bouncer check lines).'),
        },
      },
    },
  }
}
