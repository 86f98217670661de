// The admin API under /api/ (auth is checked by admin/server.ts before any of these run).
import { isIP } from 'node:net'
import { AuditQueryError, auditSourceOf, NoAuditLog, ordered, parseAuditQuery, readRecords, type AuditHead, type AuditQuery } from '../audit/index.ts'
import type { AuditConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import { isApiKeyBearer, isMethodToken, isRequestTargetForm } from '../http/index.ts'
import { explainTool, explainWithKeys, type Runtime } from '../gateway/index.ts'
import { apiKeyId, ApiKeyStoreError, keyDocument, SESSION_ID, sessionDocument, SessionStoreError, type ApiKeyDirectory, type SignIn } from '../identity/index.ts'
import { SecretsError, type SecretStore } from '../secrets/index.ts'
import { approvalRoutes } from './approvals.ts'
import { consoleRoutes } from './console-api.ts'
import type { ReloadResult, Secrets } from './console-shapes.ts'
import { openApiDocument } from './openapi.ts'
import type { AdminRoute } from './server.ts'

/** What the admin API reads and does, handed in by the running gateway (src/instance/). */
export interface AdminActions {
  /** The runtime in force (it changes on reload). */
  runtime(): Runtime
  /** Reloads the config; the answer is sent as the reply's body (200 when ok, else 422). */
  reload(): Promise<ReloadResult>
  secretsStore(): SecretStore | null
  /** The audit chain's live head and latest signed checkpoint; null while the log is off or starting. */
  auditHead(): AuditHead | null
  /**
   * The audit config the gateway started with: where its records go until the next restart (a
   * reload does not move them), so where search, export and verify must read. The runtime's
   * config may already name another sink.
   */
  auditConfig(): AuditConfig
}

export function adminRoutes(actions: AdminActions): AdminRoute[] {
  const { reload, secretsStore } = actions
  const routes: AdminRoute[] = [
    {
      method: 'GET',
      path: 'openapi.json',
      handle: () => ({ body: openApiDocument() }),
    },
    {
      method: 'GET',
      path: 'routes',
      handle: () => ({
        body: actions.runtime().config.routes.map((r) => ({
          id: r.id, methods: r.methods, path: r.path, upstream: r.upstream ?? null, function: r.function ?? null, dataset: r.dataset?.source ?? null, upstream_path: r.upstream_path ?? null,
          public: r.public, limits: r.limits, websocket: r.websocket,
        })),
      }),
    },
    {
      method: 'GET',
      path: 'roles',
      handle: () => ({
        body: actions.runtime().config.roles.map((role) => ({
          name: role.name,
          description: role.description ?? null,
          assumed_by: role.assumed_by.map((rule) => ({
            issuer: rule.issuer,
            subject: rule.subject?.text ?? null,
            claims: Object.fromEntries(Object.entries(rule.claims ?? {}).map(([k, v]) => [k, Array.isArray(v) ? v.map((g) => g.text) : v.text])),
          })),
          policies: role.policies,
        })),
      }),
    },
    {
      method: 'GET',
      path: 'policies',
      handle: () => ({
        body: [...actions.runtime().access.statements.entries()].map(([name, statements]) => ({
          name,
          statements: statements.map((s) => ({
            sid: s.sid, effect: s.effect, actions: s.anyAction ? ['*'] : [...s.actions], routes: s.routes.map((g) => g.text),
            conditions: { source_ip: s.sourceIpText, claims: Object.fromEntries((s.claims ?? []).map((c) => [c.name, c.globs.map((g) => g.text)])) },
          })),
        })),
      }),
    },
    {
      method: 'POST',
      path: 'explain',
      access: 'read', // asks how a request would be decided; changes nothing
      // An API key given as the token is checked against the running gateway's key store (not counted as a use).
      handle: async ({ body, caller }) => {
        const request = explainRequest(body)
        // Checking a key tells whether its secret matches, and whose it is, with no audit record and
        // no limit: an oracle for a leaked key that the gateway itself would audit. Admins only.
        // On the token as explain reads it, trimmed of any white space (spaces before `bk_` passed a
        // prefix check: a review; then a line break or a no-break space: the admin probe).
        if (request.token !== undefined && isApiKeyBearer(`Bearer ${request.token.trim()}`) && caller?.access !== 'admin') {
          throw new GatewayError('policy_denied', { detail: 'Explaining an API key checks its secret against the key store: it needs admin access, and this credential reads only. Explain its principal with "claims" instead.' })
        }
        if (request.tool !== undefined) return { body: await explainTool(actions.runtime(), { ...request, tool: request.tool }) }
        // An opaque token is introspected as the gateway would (an admin's only: whether it is live, and whose, is a secret test too).
        const runtime = actions.runtime()
        return { body: await explainWithKeys(runtime, request, runtime.apiKeys, caller?.access === 'admin' ? runtime.introspection : null) }
      },
    },
    {
      method: 'GET',
      path: 'secrets',
      handle: () => {
        const store = secretsStore()
        // The gateway's own key store (memory) is never a configured one: no store to list.
        if (!store || store.kind === 'memory') return { body: { store: null, secrets: [] } satisfies Secrets }
        try {
          return {
            body: {
              store: store.kind,
              secrets: store.list().map((name) => ({
                name,
                versions: store.versions(name).map((v) => ({ version: v.version, created_at: v.createdAt || null, label: v.label })),
              })),
            } satisfies Secrets,
          }
        } catch (err) {
          // Was a bare 500 with the reason only in the log (an adversarial probe). The store's
          // messages name a path and why, never a value.
          if (err instanceof SecretsError) throw new GatewayError('internal_error', { detail: `The ${store.kind} secrets store cannot be read: ${err.message}.`, cause: err })
          throw err
        }
      },
    },
    {
      method: 'GET',
      path: 'audit',
      handle: async ({ query }) => {
        const source = auditSourceOf(actions.auditConfig())
        if (!source) throw new GatewayError('route_not_found', { detail: 'No audit sink can be searched: configure an sqlite or postgres sink.' })
        try {
          // On the audit side thread, as the console's reads: node:sqlite holds the thread it runs
          // on, and a search that matches few records reads the log's whole time index to say so.
          return { body: (await readRecords(source, auditQuery(query))).map(ordered) }
        } catch (err) {
          if (err instanceof NoAuditLog) return { body: [] } // a new gateway: nothing written yet
          throw err
        }
      },
    },
    {
      method: 'GET',
      path: 'audit/head',
      handle: () => {
        const head = actions.auditHead()
        if (!head) throw new GatewayError('route_not_found', { detail: 'The audit log is off (audit.sinks is empty), or its worker is starting.' })
        return { body: head }
      },
    },
    {
      method: 'GET',
      path: 'keys',
      handle: async () => {
        const now = Date.now()
        return { body: (await fromStore(apiKeysOf(actions.runtime()).store.list())).map((record) => keyDocument(record, now)) }
      },
    },
    {
      method: 'DELETE',
      path: 'keys/{id}',
      access: 'admin',
      handle: async ({ params }) => {
        const directory = apiKeysOf(actions.runtime())
        const id = apiKeyId(params.id ?? '')
        const now = Date.now()
        const record = id === null ? undefined : await fromStore(directory.store.revoke(id, now))
        // Named by its id: a whole key given as the id kept its secret in the answer (an adversarial probe; SPEC: a detail never holds a secret).
        if (!record) throw new GatewayError('route_not_found', { detail: id === null ? 'No API key: give its id (16 hex digits), bk_<id>, or the whole key.' : `No API key ${id}.` })
        directory.forget(record.id) // refused here at once; other instances within api_keys.cache
        // Revoked before: nothing changed, nothing to record. The path names the id, never a whole key given as it.
        const change = record.revokedAt === now ? { path: `/api/keys/${record.id}`, detail: `Revoked API key ${record.id} of principal ${record.principal}.`, keyId: record.id } : undefined
        return { body: keyDocument(record, Date.now()), change }
      },
    },
    {
      method: 'GET',
      path: 'sessions',
      handle: async () => {
        const signIn = signInOf(actions.runtime())
        return { body: (await fromStore(signIn.store.list(Date.now()))).map(sessionDocument) }
      },
    },
    {
      method: 'DELETE',
      path: 'sessions/{id}',
      handle: async ({ params }) => {
        const signIn = signInOf(actions.runtime())
        const id = (params.id ?? '').toLowerCase()
        const record = SESSION_ID.test(id) ? await fromStore(signIn.store.get(id)) : undefined
        // Ended in the shared store: every instance refuses the cookie at its next request.
        // Named only by an id: a session cookie's value pasted as the id came back in the answer (an adversarial probe; SPEC: a detail never holds a token).
        if (!record || !(await fromStore(signIn.revoke(id)))) throw new GatewayError('route_not_found', { detail: SESSION_ID.test(id) ? `No session ${id}.` : 'No session: give its id (32 hex digits, as GET /api/sessions lists it).' })
        return { body: sessionDocument(record), change: { path: `/api/sessions/${id}`, detail: `Revoked session ${id} of ${record.issuer}/${record.subject}.` } }
      },
    },
    {
      method: 'POST',
      path: 'reload',
      access: 'admin',
      handle: async () => {
        const result = await reload()
        return { status: result.ok ? 200 : 422, body: result }
      },
    },
    ...approvalRoutes(actions.runtime),
  ]
  // The console reads other endpoints' answers (approvals come with agents) without a request of its own.
  routes.push(...consoleRoutes(actions, (method, path) => routes.find((r) => r.method === method && r.path === path)))
  return routes
}

/**
 * An API key or session store that cannot be reached (PostgreSQL, Redis or the file away): 503
 * with the store's own words (where it is and why, never a credential), as a request the store
 * cannot check is answered 503, not a bare 500 internal_error (found by an adversarial probe).
 */
async function fromStore<T>(work: T | Promise<T>): Promise<T> {
  try {
    return await work
  } catch (err) {
    if (!(err instanceof ApiKeyStoreError || err instanceof SessionStoreError)) throw err
    throw new GatewayError('identity_provider_unavailable', { detail: `${err.message.charAt(0).toUpperCase()}${err.message.slice(1)}; try again shortly.`, headers: { 'retry-after': '1' }, cause: err })
  }
}

function apiKeysOf(runtime: Runtime): ApiKeyDirectory {
  if (!runtime.apiKeys) throw new GatewayError('route_not_found', { detail: 'No API keys are configured (api_keys).' })
  return runtime.apiKeys
}

function signInOf(runtime: Runtime): SignIn {
  if (!runtime.signIn) throw new GatewayError('route_not_found', { detail: 'No browser sign-in is configured (sign_in).' })
  return runtime.signIn
}

/** GET /api/audit takes the filters of `bouncer audit` as query parameters. */
function auditQuery(params: URLSearchParams): AuditQuery {
  try {
    return parseAuditQuery(Object.fromEntries(params), 1_000)
  } catch (err) {
    if (err instanceof AuditQueryError) throw new GatewayError('bad_request', { detail: `${err.message}.` })
    throw err
  }
}

function explainRequest(body: unknown): Parameters<typeof explainWithKeys>[1] {
  const b = (body ?? {}) as Record<string, unknown>
  const bad = (detail: string) => new GatewayError('bad_request', { detail })
  if (b.tool !== undefined) {
    if (b.method !== undefined || b.path !== undefined) throw bad('give "tool" (an MCP tool call) or "method" and "path" (a request), not both.')
    if (typeof b.tool !== 'string' || b.tool.trim() === '') throw bad('"tool" must be a tool\'s name, e.g. "get_daily_report".')
    if (b.credential !== undefined) throw bad('"credential" does not go with "tool": the MCP endpoint takes bearer tokens only.')
  } else if (typeof b.method !== 'string' || typeof b.path !== 'string') throw bad('explain needs "method" and "path" strings (a request), or "tool" (an MCP tool call).')
  // "GET " pasted with its space was explained as a method the route does not take (405), one no request could carry.
  if (typeof b.method === 'string' && !isMethodToken(b.method)) throw bad('"method" must be an HTTP method, e.g. "GET".')
  if (typeof b.path === 'string' && !isRequestTargetForm(b.path)) throw bad('"path" must start with "/" (e.g. "/sales/daily/eu"), or be a whole URL.')
  if (b.claims !== undefined && (typeof b.claims !== 'object' || b.claims === null || Array.isArray(b.claims))) throw bad('"claims" must be an object.')
  if (b.token !== undefined && typeof b.token !== 'string') throw bad('"token" must be a string.')
  if (b.claims !== undefined && b.token !== undefined) throw bad('give "claims" or "token", not both.')
  if (b.form !== undefined && (typeof b.form !== 'string' || b.tool !== undefined)) throw bad('"form" is a POST\'s urlencoded form body, a string (e.g. "_method=DELETE"), with "method" and "path".')
  if (b.json !== undefined && (typeof b.json !== 'string' || b.tool !== undefined)) throw bad('"json" is a POST\'s JSON body, a string (e.g. {"_method":"DELETE"}), with "method" and "path".')
  if (b.form !== undefined && b.json !== undefined) throw bad('give "form" or "json", not both: a request has one body, of one Content-Type.')
  if (b.ip !== undefined && (typeof b.ip !== 'string' || isIP(b.ip) === 0)) throw bad('"ip" must be an IP address, e.g. "10.1.2.3".')
  // A client certificate's identity is given as claims (iss the CA's DN, sub its URI SAN or CN): nothing else tells them apart.
  if (b.credential !== undefined && (b.credential !== 'client_cert' || b.claims === undefined)) throw bad('"credential" is "client_cert", with "claims" (iss: the CA\'s subject DN, sub: the URI SAN or CN).')
  return {
    ...(typeof b.tool === 'string' ? { method: 'call', path: `mcp:${b.tool}`, tool: b.tool } : { method: b.method as string, path: b.path as string }),
    claims: b.claims as Record<string, unknown> | undefined, token: b.token as string | undefined, ip: b.ip as string | undefined,
    ...(b.credential === 'client_cert' ? { credential: 'client_cert' as const } : {}),
    ...(typeof b.form === 'string' ? { form: b.form } : {}),
    ...(typeof b.json === 'string' ? { json: b.json } : {}),
  }
}
