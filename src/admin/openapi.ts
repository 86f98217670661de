// The admin listener's OpenAPI 3.1 document, served at GET /api/openapi.json (behind the admin
// credential, like everything under /api/). Schemas are JSON Schema 2020-12, as OpenAPI 3.1 takes
// them; where a response repeats a config value (a route's methods, a statement's effect) it points
// into the config's own schema, generated from the definition that validates the file.
// test/integration/openapi.test.ts calls every operation and checks each answer against it.
import { readFileSync } from 'node:fs'
import { FIELD_KINDS, FIELD_SPECS } from '../audit/index.ts'
import { configJsonSchema, type JsonSchema } from '../config/index.ts'
import { ERROR_CODES } from '../errors/index.ts'
import { CONSOLE_COOKIE } from '../gateway/index.ts'
import { consolePaths, consoleSchemas, LOG_UNREADABLE } from './console-openapi.ts'

const string = { type: 'string' } as const
const integer = { type: 'integer' } as const
const boolean = { type: 'boolean' } as const
const strings = { type: 'array', items: string } as const
const orNull = (type: 'string' | 'integer') => ({ type: [type, 'null'] })
const object = (properties: Record<string, JsonSchema>, description?: string): JsonSchema => ({
  type: 'object',
  ...(description ? { description } : {}),
  properties,
  required: Object.keys(properties),
  additionalProperties: false,
})

/** An object schema with properties that may be absent. */
const withOptional = (schema: JsonSchema, optional: Record<string, JsonSchema>): JsonSchema => ({ ...schema, properties: { ...(schema.properties as Record<string, JsonSchema>), ...optional } })
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })
const configRef = (pointer: string) => ({ $ref: `#/components/schemas/Config/${pointer}` })
const ROUTE = 'properties/routes/items/properties'
const STATEMENT = 'properties/policies/items/properties/statements/items/properties'

const json = (schema: JsonSchema, description: string) => ({ description, content: { 'application/json': { schema } } })
const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } })
const UNAUTHORIZED = problem('No admin credential, or not the right one (missing_token, unauthorized); also when no admin.token is configured.')

/** POST /api/approvals/{id}/approve and …/deny: the approver's token in the body decides. */
function approvalDecision(operationId: string, summary: string): Record<string, unknown> {
  return {
    post: {
      operationId,
      summary,
      parameters: [{ name: 'id', in: 'path', required: true, schema: string }],
      requestBody: { required: false, content: { 'application/json': { schema: ref('ApprovalDecision') } } },
      responses: {
        200: json(ref('Approval'), 'The approval, decided (audited).'),
        400: problem('Already decided, used or expired: final (bad_request).'),
        401: problem('No admin credential, or the approver\'s token is not valid.'),
        403: problem('The approver holds none of the approvers roles, or asked for the call itself; or the credential is admin.read_token, which reads only (policy_denied).'),
        404: problem('No such approval, or no approvals configured (route_not_found).'),
      },
    },
  }
}

const schemas: Record<string, JsonSchema> = {
  Problem: object({
    type: { type: 'string', description: 'urn:bouncer:error:CODE' },
    title: string,
    status: integer,
    code: { type: 'string', enum: Object.keys(ERROR_CODES) },
    detail: string,
    request_id: string,
  }, 'An error the gateway answers itself (RFC 9457).'),
  Health: object({ status: { const: 'ok' } }),
  Readiness: object({
    status: { enum: ['ready', 'not ready'] },
    checks: { type: 'object', additionalProperties: string, description: 'config, limits_store, audit:SINK, issuer:NAME, datasource:NAME (and draining): each with its state' },
  }),
  Route: object({
    id: configRef(`${ROUTE}/id`),
    methods: configRef(`${ROUTE}/methods`),
    path: string,
    upstream: orNull('string'),
    function: orNull('string'),
    dataset: { ...orNull('string'), description: 'the datasource of a dataset route' },
    upstream_path: orNull('string'),
    public: boolean,
    limits: strings,
    websocket: boolean,
  }),
  Role: object({
    name: string,
    description: orNull('string'),
    assumed_by: {
      type: 'array',
      items: object({
        issuer: string,
        subject: orNull('string'),
        claims: { type: 'object', additionalProperties: { anyOf: [string, strings] } },
      }),
    },
    policies: strings,
  }),
  Policy: object({
    name: string,
    statements: {
      type: 'array',
      items: object({
        sid: string,
        effect: configRef(`${STATEMENT}/effect`),
        actions: configRef(`${STATEMENT}/actions`),
        routes: strings,
        conditions: object({ source_ip: strings, claims: { type: 'object', additionalProperties: strings } }),
      }),
    },
  }),
  ApiKey: object({
    id: string,
    principal: string,
    description: orNull('string'),
    status: { enum: ['active', 'expired', 'revoked'] },
    created_at: { type: 'string', format: 'date-time' },
    expires_at: { type: ['string', 'null'], format: 'date-time' },
    last_used_at: { type: ['string', 'null'], format: 'date-time', description: 'written in batches, every few seconds' },
    revoked_at: { type: ['string', 'null'], format: 'date-time' },
  }, 'An API key (never the key or its hash).'),
  Session: object({
    id: { type: 'string', pattern: '^[0-9a-f]{32}$', description: 'the first 32 hex digits of the SHA-256 of the session cookie (the cookie itself is never stored)' },
    issuer: string,
    subject: string,
    audience: { enum: ['gateway', 'console'], description: 'the sign-in that made it, and the only one that accepts it: the gateway\'s (sign_in) or the admin console\'s' },
    name: orNull('string'),
    email: orNull('string'),
    created_at: { type: 'string', format: 'date-time' },
    last_seen_at: { type: 'string', format: 'date-time', description: 'recorded every tenth of sign_in.session.idle at most' },
    expires_at: { type: 'string', format: 'date-time', description: 'the absolute end (sign-in + ttl); an idle session ends earlier' },
  }, 'A signed-in browser session (never its cookie or tokens).'),
  ExplainRequest: {
    type: 'object',
    description: 'The request to explain (the options of bouncer explain): method and path, or tool (an MCP tool call, decided as tools/call decides it); claims or a token (its signature is not checked), not both; form or json, not both (a request has one body).',
    properties: {
      method: string, path: string, claims: { type: 'object' }, token: string, ip: string,
      credential: { const: 'client_cert', description: 'the claims are a client certificate\'s identity: iss the subject DN of its CA, sub its URI SAN or CN (as the audit record keeps them)' },
      form: { type: 'string', description: 'a POST\'s urlencoded form body (e.g. "_method=DELETE"): its _method fields read as the gateway reads a form POST\'s' },
      json: { type: 'string', description: 'a POST\'s JSON body (e.g. {"_method":"DELETE"}): its top-level _method read as the gateway reads a JSON POST\'s' },
      tool: { type: 'string', minLength: 1, description: 'an MCP tool call instead of a request: the tool as tools/call names it (a route tool, or SERVER__TOOL); the token is one for mcp.resource' },
    },
    oneOf: [{ required: ['method', 'path'], not: { anyOf: [{ required: ['tool'] }, { required: ['form', 'json'] }] } }, { required: ['tool'], not: { anyOf: [{ required: ['method'] }, { required: ['path'] }, { required: ['credential'] }, { required: ['form'] }, { required: ['json'] }] } }],
    additionalProperties: false,
  },
  Explanation: withOptional(object({
    request: object({ method: string, path: string, ip: string }),
    route: {
      anyOf: [
        { type: 'null' },
        object({ id: string, path: string, methods: configRef(`${ROUTE}/methods`), upstream: string, public: boolean, limits: strings }),
      ],
    },
    identity: {
      anyOf: [
        { type: 'null' },
        withOptional(object({
          source: { enum: ['claims', 'token'] },
          signature_checked: { const: false },
          issuer: orNull('string'),
          iss: orNull('string'),
          sub: orNull('string'),
          client_id: orNull('string'),
          problems: { type: 'array', items: object({ code: ref('Problem/properties/code'), detail: string }) },
        }), {
          actor: object({ sub: string, iss: string, issuer: string, roles: strings, roles_from: { enum: ['token_exchange', 'trust_rules'] } }, 'the agent acting for sub (an act claim), with the roles its side of the decision holds'),
        }),
      ],
    },
    roles: {
      type: 'array',
      items: object({ role: string, held: boolean, rules: { type: 'array', items: object({ rule: string, matched: boolean, why: orNull('string') }) } }),
    },
    statements: {
      type: 'array',
      items: withOptional(object({ sid: string, policy: string, effect: configRef(`${STATEMENT}/effect`), roles: strings, matched: boolean, why: orNull('string') }), {
        route: { type: 'string', description: 'a tool call\'s: the route the statement was read for (mcp:<tool> with action call, or a route tool\'s route with its method)' },
        agent: { const: true, description: 'a tool call on behalf of a user: a statement of the agent\'s roles' },
      }),
    },
    decision: object({
      effect: configRef(`${STATEMENT}/effect`),
      status: integer,
      code: { anyOf: [{ type: 'null' }, ref('Problem/properties/code'), { const: 'approval_pending', description: 'a tool call allowed and held for approval (status 202)' }] },
      statement: orNull('string'),
      reason: string,
    }),
  }, 'The decision for one request or tool call, and why: the route, the identity, each role and each statement that names the route.'), {
    tool: object({
      name: string,
      kind: { enum: ['route', 'server', null], description: 'a route tool, an aggregated MCP server\'s tool (SERVER__TOOL), or null: no such tool' },
      route: { anyOf: [{ type: 'null' }, object({ id: string, method: string, path: string, upstream: string }, 'a route tool\'s request')] },
      server: { anyOf: [{ type: 'null' }, object({ name: string, tool: string }, 'a server tool: its server and its name there')] },
      decided_on: orNull('string'),
      denied_by: { enum: ['subject', 'actor', null] },
      approval: { anyOf: [{ type: 'null' }, object({ tools: strings, approvers: strings, ttl_seconds: integer }, 'the mcp.approvals rule that holds the call')] },
      available: { anyOf: [{ type: 'null' }, strings], description: 'the tools this caller may call, as tools/list lists them (when the tool is unknown or refused)' },
    }, 'A tool call\'s explanation (the request\'s tool): the decision is tools/call\'s; allowed and held for approval is status 202.'),
  }),
  AuditRecord: object(auditRecordProperties(), 'One audit record (README "The audit log"); hash chains it to the record before.'),
  Secrets: object({
    store: { enum: ['embedded', 'env', 'file', null] },
    secrets: {
      type: 'array',
      items: object({
        name: string,
        versions: { type: 'array', items: object({ version: integer, created_at: orNull('string'), label: { enum: ['current', 'previous', null] } }) },
      }),
    },
  }, 'The names and versions in the secrets store: never a value.'),
  Reloaded: object({ ok: { const: true }, generation: integer, warnings: strings }),
  Checkpoint: object({
    chain: string, count: integer, id: string, hash: string, time: string,
    kid: { type: 'string', description: "the signing key's RFC 7638 thumbprint" },
    sig: { type: 'string', description: 'Ed25519 over the canonical JSON of the other fields, base64url' },
  }, 'A signed checkpoint of the chain head: what bouncer audit verify measures the log against.'),
  AuditHead: withOptional(object({
    chain: string,
    head: object({ count: integer, id: orNull('string'), hash: string }, 'The newest record in every sink (or durably spilled).'),
    checkpoint: { anyOf: [ref('Checkpoint'), { type: 'null' }] },
    checkpoint_file: string,
    key: object({ kid: string, kty: { const: 'OKP' }, crv: { const: 'Ed25519' }, x: string }, 'The public key that checks the checkpoints.'),
  }), {
    workers: {
      type: 'array',
      description: 'With server.workers above 1: each worker\'s chain (each writes its own); the fields above are the first worker\'s.',
      items: object({
        worker: string,
        chain: string,
        head: object({ count: integer, id: orNull('string'), hash: string }),
        checkpoint: { anyOf: [ref('Checkpoint'), { type: 'null' }] },
      }),
    },
    workers_unanswered: {
      type: 'array',
      description: 'With server.workers above 1: the workers that gave no head within 5 s (busy, stuck, an error) or are not running (restarting after a crash), each with why; their chains are not in workers.',
      items: object({ worker: string, why: string }),
    },
  }),
  Approval: object({
    id: string,
    tool: string,
    issuer: string,
    subject: string,
    actor: orNull('string'),
    args_sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    approvers: strings,
    status: { enum: ['pending', 'approved', 'denied', 'used', 'expired'] },
    created_at: string,
    expires_at: string,
    decided_by: orNull('string'),
    decided_at: orNull('string'),
  }, 'A tool call waiting for (or given) a person\'s approval (mcp.approvals).'),
  ApprovalDecision: {
    type: 'object',
    properties: { token: { type: 'string', description: 'the approver\'s own bearer token: one of its roles must be in the rule\'s approvers; not needed from a person signed in to the console, who is the approver' } },
    required: [],
    additionalProperties: false,
  },
  ReloadRefused: object({ ok: { const: false }, errors: { ...strings, description: 'bouncer check lines: the running config keeps serving' } }),
}

/** A value of the schema, or null. */
function orNullOf(schema: JsonSchema): JsonSchema {
  return Array.isArray(schema.enum) ? { enum: [...schema.enum, null] } : { ...schema, type: [schema.type, 'null'] }
}

/** The audit record's fields, from their table (src/audit/fields.ts). */
function auditRecordProperties(): Record<string, JsonSchema> {
  return Object.fromEntries(FIELD_SPECS.map((field) => {
    const schema: JsonSchema = FIELD_KINDS[field.kind].schema
    return [field.name, field.nullable ? orNullOf(schema) : schema]
  }))
}

// An empty value is no filter (GET /api/audit reads `principal=` as the console reads its empty field).
const AUDIT_FILTERS = [
  { name: 'since', schema: string, description: 'a duration back from now (1h) or a time (2026-11-26T10:00:00Z); empty is no filter' },
  { name: 'until', schema: string, description: 'a time, or a date alone (that whole day, UTC); empty is no filter' },
  { name: 'principal', schema: string, description: "the caller's subject; empty is no filter" },
  { name: 'actor', schema: string, description: 'the agent acting for the caller (token exchange); empty is no filter' },
  { name: 'route', schema: string, description: 'a route id; empty is no filter' },
  { name: 'decision', schema: { enum: ['allow', 'deny', 'error'] }, description: 'empty is no filter' },
  { name: 'status', schema: { type: 'integer', minimum: 0, maximum: 599 }, description: 'an HTTP status, 100 to 599 (or 0: a record no response went with); empty is no filter' },
  { name: 'limit', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 }, description: 'at most this many records' },
].map((p) => ({ in: 'query', ...p }))

/** The probes: no credential, and HEAD answers as GET does, without the body. */
const OPEN = { security: [], description: 'No credential needed. HEAD answers the same, without the body.' }

function paths(): JsonSchema {
  return {
    '/healthz': { get: { ...OPEN, operationId: 'health', summary: 'The process runs', responses: { 200: json(ref('Health'), 'Always, while the process runs.') } } },
    '/readyz': {
      get: {
        ...OPEN,
        operationId: 'readiness',
        summary: "Ready for traffic: a load balancer's health check",
        responses: {
          200: json(ref('Readiness'), 'Config loaded and every issuer\'s first key load tried.'),
          503: json(ref('Readiness'), 'Starting, or draining.'),
        },
      },
    },
    '/metrics': {
      get: {
        ...OPEN,
        operationId: 'metrics',
        summary: 'Prometheus metrics',
        responses: { 200: { description: 'The Prometheus text format.', content: { 'text/plain': { schema: string } } } },
      },
    },
    '/api/openapi.json': {
      get: { operationId: 'openapi', summary: 'This document', responses: { 200: json({ type: 'object' }, 'The OpenAPI 3.1 document.'), 401: UNAUTHORIZED } },
    },
    '/api/routes': {
      get: { operationId: 'listRoutes', summary: 'The routes, in match order', responses: { 200: json({ type: 'array', items: ref('Route') }, 'The routes of the running config.'), 401: UNAUTHORIZED } },
    },
    '/api/roles': {
      get: { operationId: 'listRoles', summary: 'The roles and their trust rules', responses: { 200: json({ type: 'array', items: ref('Role') }, 'The roles of the running config.'), 401: UNAUTHORIZED } },
    },
    '/api/policies': {
      get: { operationId: 'listPolicies', summary: 'The policies and their statements', responses: { 200: json({ type: 'array', items: ref('Policy') }, 'The policies of the running config.'), 401: UNAUTHORIZED } },
    },
    '/api/explain': {
      post: {
        operationId: 'explain',
        summary: 'Explain the decision for one request or MCP tool call (what bouncer explain prints)',
        requestBody: { required: true, content: { 'application/json': { schema: ref('ExplainRequest') } } },
        responses: {
          200: json(ref('Explanation'), 'The explanation, whatever the decision.'),
          400: problem('The body is not JSON, or not an explain request (bad_request).'),
          401: UNAUTHORIZED,
          413: problem('The body is over 1 MiB (payload_too_large).'),
        },
      },
    },
    '/api/audit': {
      get: {
        operationId: 'searchAudit',
        summary: 'Search the audit log, newest first (the filters of bouncer audit)',
        parameters: AUDIT_FILTERS,
        responses: {
          200: json({ type: 'array', items: ref('AuditRecord') }, 'The matching records, newest first.'),
          400: problem('A filter that does not parse, or a parameter that is no filter (bad_request).'),
          401: UNAUTHORIZED,
          404: problem('No sqlite or postgres audit sink to search (route_not_found).'),
          503: LOG_UNREADABLE,
        },
      },
    },
    '/api/audit/head': {
      get: {
        operationId: 'auditHead',
        summary: "The audit chain's live head, its latest signed checkpoint and the key that checks it",
        responses: {
          200: json(ref('AuditHead'), 'The head of this gateway\'s chain.'),
          401: UNAUTHORIZED,
          404: problem('The audit log is off (audit.sinks is empty), or its worker is starting (route_not_found).'),
        },
      },
    },
    '/api/secrets': {
      get: { operationId: 'listSecrets', summary: 'The secrets: names and versions, never values', responses: { 200: json(ref('Secrets'), 'The store and its secrets (store null: none configured).'), 401: UNAUTHORIZED } },
    },
    '/api/keys': {
      get: {
        operationId: 'listApiKeys',
        summary: 'The API keys, newest first (what bouncer keys list prints)',
        responses: {
          200: json({ type: 'array', items: ref('ApiKey') }, 'Every key of the api_keys store.'),
          401: UNAUTHORIZED,
          404: problem('No API keys are configured (route_not_found).'),
        },
      },
    },
    '/api/keys/{id}': {
      delete: {
        operationId: 'revokeApiKey',
        summary: 'Revoke an API key: refused at once by this gateway, by every other within api_keys.cache',
        parameters: [{ name: 'id', in: 'path', required: true, schema: string, description: 'the key\'s id (bk_<id> works too)' }],
        responses: {
          200: json(ref('ApiKey'), 'The key, revoked (a key revoked before keeps its first revocation time).'),
          401: UNAUTHORIZED,
          403: problem('The credential reads only (admin.read_token): this changes something, so it needs admin.token (policy_denied).'),
          404: problem('No such key, or no API keys configured (route_not_found).'),
        },
      },
    },
    '/api/sessions': {
      get: {
        operationId: 'listSessions',
        summary: 'The live browser sessions, newest first (what bouncer sessions list prints)',
        responses: {
          200: json({ type: 'array', items: ref('Session') }, 'Every session of the sign_in store.'),
          401: UNAUTHORIZED,
          404: problem('No browser sign-in is configured (route_not_found).'),
        },
      },
    },
    '/api/sessions/{id}': {
      delete: {
        operationId: 'revokeSession',
        summary: 'End a session: its cookie is refused at the next request, on every instance sharing the store',
        parameters: [{ name: 'id', in: 'path', required: true, schema: string, description: 'the session\'s id, as listed' }],
        responses: {
          200: json(ref('Session'), 'The session, now ended.'),
          401: UNAUTHORIZED,
          403: problem('The credential reads only (admin.read_token): this changes something, so it needs admin.token (policy_denied).'),
          404: problem('No such session, or no sign_in configured (route_not_found).'),
        },
      },
    },
    '/api/approvals': {
      get: {
        operationId: 'listApprovals',
        summary: 'Tool calls waiting for approval, and the decided ones (newest first, at most 1,000)',
        parameters: [{ name: 'status', in: 'query', required: false, schema: { enum: ['pending', 'approved', 'denied', 'used', 'expired'] } }],
        responses: {
          200: json({ type: 'array', items: ref('Approval') }, 'The approvals.'),
          400: problem('An unknown status (bad_request).'),
          401: UNAUTHORIZED,
          404: problem('No approvals configured (route_not_found).'),
        },
      },
    },
    '/api/approvals/{id}': {
      get: {
        operationId: 'getApproval',
        summary: 'One approval',
        parameters: [{ name: 'id', in: 'path', required: true, schema: string }],
        responses: {
          200: json(ref('Approval'), 'The approval.'),
          401: UNAUTHORIZED,
          404: problem('No such approval, or no approvals configured (route_not_found).'),
        },
      },
    },
    '/api/approvals/{id}/approve': approvalDecision('approveApproval', 'Approve a pending tool call: the same caller\'s same call then runs once before it expires'),
    '/api/approvals/{id}/deny': approvalDecision('denyApproval', 'Deny a pending tool call (final)'),
    '/api/reload': {
      post: {
        operationId: 'reload',
        summary: 'Read the config file again (as SIGHUP does)',
        responses: {
          200: json(ref('Reloaded'), 'The new config is in force.'),
          401: UNAUTHORIZED,
          403: problem('The credential reads only (admin.read_token): this changes something, so it needs admin.token (policy_denied).'),
          422: json(ref('ReloadRefused'), 'The file has errors: the running config keeps serving.'),
        },
      },
    },
  }
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
}

/** The config's schema as values are served: no ${env:} references, and no dialect (the document's). */
function configSchemaComponent(): JsonSchema {
  const { $schema: _dialect, ...config } = configJsonSchema({ envReferences: false })
  return config
}

/** Built once per process: it depends on nothing a reload changes. */
let document: JsonSchema | undefined
export function openApiDocument(): JsonSchema {
  document ??= {
    openapi: '3.1.1',
    info: {
      title: 'Bouncer admin API',
      version: packageVersion(),
      description: 'The admin listener of Bouncer: health, readiness and metrics without auth; everything under /api/ with the admin token (admin.token) as a bearer token; admin.read_token reads but changes nothing (403 policy_denied). The console is served at /.',
    },
    security: [{ adminToken: [] }, { consoleSession: [] }],
    paths: { ...paths(), ...consolePaths() },
    components: {
      securitySchemes: {
        adminToken: { type: 'http', scheme: 'bearer', description: 'admin.token (everything) or admin.read_token (read-only) from the config' },
        consoleSession: { type: 'apiKey', in: 'cookie', name: CONSOLE_COOKIE, description: 'A person signed in to the console at /.bouncer/sign_in (sign_in), with a role of admin.roles or admin.read_roles; a POST, PUT or DELETE needs this listener\'s Origin' },
      },
      schemas: { ...schemas, ...consoleSchemas, Config: configSchemaComponent() },
    },
  }
  return document
}
