// Checks that need the whole file: names that must exist, names that must be unique, route
// syntax, and (as warnings) configuration that is legal but almost certainly not what was meant.
import { isIP } from 'node:net'
import type { Finding, ConfigPath } from './diagnostics.ts'
import type { SecretReference } from './interpolate.ts'
import { checkRewrite, parseRoutePattern, type RoutePattern } from './route-pattern.ts'
import { accessFindings } from './access-checks.ts'
import { datasetFindings } from './dataset-checks.ts'
import { dataPathFindings } from './data-path-checks.ts'
import { functionFindings } from './function-checks.ts'
import { sinkName } from '../text/index.ts'
import { mcpFindings } from './mcp-checks.ts'
import { routeFindings } from './route-checks.ts'
import { upstreamFindings } from './upstream-checks.ts'
import { callerFindings } from './caller-checks.ts'
import { exchangeFindings } from './exchange-checks.ts'
import { signInFindings } from './sign-in-checks.ts'
import { API_KEYS_ISSUER, type AcceptedCredential, type Config } from './schema.ts'
import { tlsFindings } from './tls-checks.ts'
import { workersFindings } from './workers-checks.ts'
import { routesSelectedBy } from './values.ts'
import { isReservedForConfig } from '../http/index.ts'

/** What a route's request can go to: exactly one per route. */
const ROUTE_TARGETS = ['upstream', 'function', 'dataset'] as const

export function crossCheck(config: Config, secretRefs: readonly SecretReference[]): Finding[] {
  const findings: Finding[] = []
  const error = (path: ConfigPath, message: string, atKey = false) => findings.push({ severity: 'error', path, message, atKey })
  const warn = (path: ConfigPath, message: string) => findings.push({ severity: 'warning', path, message })

  const issuers = uniqueNames(config.issuers, 'issuers', 'name', 'issuer', error)
  uniqueNames(config.roles, 'roles', 'name', 'role', error)
  const policies = uniqueNames(config.policies, 'policies', 'name', 'policy', error)
  const upstreams = uniqueNames(config.upstreams, 'upstreams', 'name', 'upstream', error)
  const limits = uniqueNames(config.limits, 'limits', 'name', 'limit', error)
  uniqueNames(config.routes, 'routes', 'id', 'route', error)

  // Both listeners on one address: serve failed with "EADDRINUSE", as if another process held it.
  const { listen: gateway } = config.server
  const { listen: admin } = config.admin
  // `::` takes IPv4 too (dual-stack); `0.0.0.0` only IPv4, so `[::1]` beside it binds (found by review).
  const covers = (wild: string, host: string) => wild === '::' || (wild === '0.0.0.0' && isIP(host) !== 6)
  if (admin.port !== 0 && admin.port === gateway.port && (admin.host === gateway.host || covers(admin.host, gateway.host) || covers(gateway.host, admin.host))) {
    error(['admin', 'listen'], `the gateway listens on ${gateway.text} (server.listen): the admin listener needs a port of its own`)
  }

  // A confused operator's admin tokens (an adversarial probe); the values a secrets store gives
  // are held to the same rule when they are read (instance/prepare.ts adminFor).
  for (const { key, message } of adminTokenProblems(config.admin.token, config.admin.read_token)) error(['admin', key], message)

  const seenIssuerUrls = new Map<string, number>()
  config.issuers.forEach((issuer, i) => {
    if (issuer.type !== 'jwt') return
    const earlier = seenIssuerUrls.get(issuer.issuer)
    if (earlier !== undefined) error(['issuers', i, 'issuer'], `issuer "${issuer.issuer}" is already configured by issuers[${earlier}]`)
    seenIssuerUrls.set(issuer.issuer, i)
  })

  config.upstreams.forEach((upstream, i) => {
    for (const header of Object.keys(upstream.headers)) {
      if (isReservedForConfig(header)) {
        error(['upstreams', i, 'headers', header], `the gateway sets ${header} itself; it cannot be configured`, true)
      }
    }
  })

  const routePatterns: RoutePattern[] = []
  let needsIdentity = false
  config.routes.forEach((route, i) => {
    const parsed = parseRoutePattern(route.path)
    if (!parsed.ok) error(['routes', i, 'path'], parsed.message)
    else routePatterns.push(parsed.value)
    if (route.upstream_path !== undefined) {
      const rewrite = parseRoutePattern(route.upstream_path)
      if (!rewrite.ok) error(['routes', i, 'upstream_path'], rewrite.message)
      else if (parsed.ok) {
        const problem = checkRewrite(rewrite.value, parsed.value)
        if (problem) error(['routes', i, 'upstream_path'], problem)
      }
    }
    const targets = ROUTE_TARGETS.filter((target) => route[target] !== undefined)
    if (targets.length !== 1) {
      error(['routes', i], targets.length === 0
        ? `route "${route.id}" has no target: give it one of ${ROUTE_TARGETS.join(', ')}`
        : `route "${route.id}" has both ${targets.join(' and ')}: give it exactly one target`)
    }
    if (route.upstream !== undefined && !upstreams.has(route.upstream)) error(['routes', i, 'upstream'], `unknown upstream "${route.upstream}"`)
    route.accept.forEach((kind, j) => {
      const missing = credentialSetup(config, kind)
      if (missing) error(['routes', i, 'accept', j], missing)
    })
    route.limits.forEach((name, j) => {
      if (!limits.has(name)) error(['routes', i, 'limits', j], `unknown limit "${name}"`)
      const limit = config.limits.find((l) => l.name === name)
      if (route.public && limit && (limit.key === 'principal' || limit.key === 'actor' || limit.key === 'role' || limit.key.startsWith('claim:'))) {
        warn(['routes', i, 'limits', j], `limit "${name}" is keyed by ${limit.key}, but public route "${route.id}" has no identity: it is keyed by client IP there`)
      }
    })
    // An API key is an identity without any issuer: a route that takes keys is reachable.
    if (!route.public && !(config.api_keys && route.accept.includes('api_key'))) needsIdentity = true
  })
  if (needsIdentity && config.issuers.length === 0) {
    warn(['routes'], 'routes that are not public need an identity, but no issuers are configured: every request to them gets 401')
  }

  config.roles.forEach((role, i) => {
    role.assumed_by.forEach((rule, j) => {
      if (rule.issuer === API_KEYS_ISSUER && !issuers.has(rule.issuer)) {
        if (!config.api_keys) error(['roles', i, 'assumed_by', j, 'issuer'], `issuer "${API_KEYS_ISSUER}" is the gateway's API keys: configure api_keys to use them`)
      } else if (!issuers.has(rule.issuer)) error(['roles', i, 'assumed_by', j, 'issuer'], `unknown issuer "${rule.issuer}"`)
    })
    role.policies.forEach((name, j) => {
      if (!policies.has(name)) error(['roles', i, 'policies', j], `unknown policy "${name}"`)
    })
    // A role that only opens the console (admin.roles, admin.read_roles) needs no policy on the gateway.
    const consoleOnly = config.admin.roles.includes(role.name) || config.admin.read_roles.includes(role.name)
    if (role.policies.length === 0 && !consoleOnly) warn(['roles', i, 'policies'], `role "${role.name}" has no policies: it allows nothing`)
  })

  const usedPolicies = new Set(config.roles.flatMap((role) => role.policies))
  // MCP tools are routes `mcp:<tool>` too; an aggregated server's tools are only known once it answers.
  const toolRoutes = (config.mcp?.tools ?? []).map((tool) => `mcp:${tool.name ?? tool.route}`)
  const serverTools = (config.mcp?.servers.length ?? 0) > 0
  const routeIds = [...config.routes.map((route) => route.id), ...toolRoutes]
  const knownRoutes = new Set(routeIds)
  config.policies.forEach((policy, i) => {
    if (!usedPolicies.has(policy.name)) warn(['policies', i, 'name'], `policy "${policy.name}" is not used by any role`)
    policy.statements.forEach((statement, j) => {
      statement.routes.forEach((glob, k) => {
        if (routesSelectedBy([glob], routeIds, knownRoutes).length === 0 && !(serverTools && glob.text.startsWith('mcp:'))) {
          warn(['policies', i, 'statements', j, 'routes', k], `"${glob.text}" matches no route`)
        }
      })
    })
  })
  // Appended one by one: a spread of a very large list overflows the stack (120,000 findings did).
  for (const more of [accessFindings(config), routeFindings(config), upstreamFindings(config), callerFindings(config), signInFindings(config), functionFindings(config), datasetFindings(config), mcpFindings(config), tlsFindings(config), exchangeFindings(config), workersFindings(config), dataPathFindings(config)]) for (const finding of more) findings.push(finding)

  if (secretRefs.length > 0 && !config.secrets) {
    for (const ref of secretRefs) error(ref.path, `\${secret:${ref.name}} is used but no secrets store is configured (secrets.store)`)
  }
  if (config.secrets) {
    for (const name of Object.keys(config.secrets.rotation)) {
      if (config.secrets.store.type !== 'embedded') {
        error(['secrets', 'rotation', name], `scheduled rotation needs the embedded store; the ${config.secrets.store.type} store is read-only`, true)
      }
    }
  }

  // A sink's name (sqlite:PATH, postgres:SCHEMA, stdout) is its spill file's, its metrics' and its
  // health's: two postgres sinks of one schema on two servers shared one spill file, and the one that
  // was up replayed and emptied the other's at the next start, its records lost and its chain gapped
  // (verify: "missing (deleted)"; the audit probe). Two stdout sinks printed every record twice.
  const sinkNames = new Set<string>()
  config.audit.sinks.forEach((sink, i) => {
    const name = sinkName(sink)
    if (!sinkNames.has(name)) {
      sinkNames.add(name)
      return
    }
    if (sink.type === 'sqlite') error(['audit', 'sinks', i, 'path'], `two sqlite sinks write ${sink.path}`)
    else if (sink.type === 'postgres') error(['audit', 'sinks', i, 'schema'], `two postgres sinks use schema ${sink.schema}: a sink is known by its schema (its spill file, metrics and health), so their spilled records would mix and be lost; give each its own schema`)
    else error(['audit', 'sinks', i, 'type'], 'two stdout sinks: each record would be written twice')
  })
  // durability: sync completes a response once its record is committed; drop answers at the spill's
  // cap without one. Together a probe saw 1,784 requests answered 200 whose records were dropped.
  if (config.audit.sinks.length > 0 && config.audit.durability === 'sync' && config.audit.on_spill_full === 'drop') {
    error(['audit', 'on_spill_full'], 'drop answers requests whose records the full spill cannot take, and durability: sync answers only recorded ones: use on_spill_full: refuse (503 audit_unavailable at the cap), or durability: batched')
  }

  return findings
}

function uniqueNames<T>(
  items: readonly T[],
  section: string,
  key: keyof T & string,
  what: string,
  error: (path: ConfigPath, message: string) => void,
): Set<string> {
  const names = new Set<string>()
  items.forEach((item, i) => {
    const value = String(item[key])
    if (names.has(value)) error([section, i, key], `duplicate ${what} "${value}"`)
    names.add(value)
  })
  return names
}

/** Why a route cannot accept this kind of credential with this config, or null when it can. */
function credentialSetup(config: Config, kind: AcceptedCredential): string | null {
  switch (kind) {
    case 'bearer':
      return null
    case 'api_key':
      return config.api_keys ? null : 'accepting api_key credentials needs api_keys (e.g. api_keys: { store: sqlite })'
    case 'client_cert': {
      // On a listener that asks for no certificate, and with no proxy forwarding one, such a route could never see one.
      const tls = config.server.tls
      if ((!tls || tls.client_ca === undefined || tls.client_auth === 'none') && config.server.forwarded_client_cert === undefined) {
        return 'accepting client_cert needs a listener that asks for client certificates (server.tls with client_ca) or certificates forwarded by a trusted proxy (server.forwarded_client_cert): without either this route never sees a certificate'
      }
      if (!config.issuers.some((issuer) => issuer.type === 'x509')) return 'accepting client_cert needs an issuer of type x509 (whose certificates it accepts)'
      return null
    }
    case 'session':
      return config.sign_in ? null : 'accepting session credentials needs sign_in (the OpenID provider people sign in at)'
  }
}

/**
 * The admin tokens' rule, for literal values (check) and for values read from a secrets store: a
 * read_token equal to the token is the admin token (it is checked first), so whoever was handed the
 * "read-only" one may reload and revoke; a token with white space, a control character or a
 * character beyond U+00FF can never be sent as `Authorization: Bearer <token>`, so every call is refused 401.
 */
export function adminTokenProblems(token: string | undefined, readToken: string | undefined, read: 'as written' | 'from the store' = 'as written'): Array<{ key: 'token' | 'read_token'; message: string }> {
  const stored = read === 'from the store'
  if (token !== undefined && token === readToken) {
    const same = stored ? 'has the same value as admin.token once their secrets are read, and admin.token is checked first' : 'is the same as admin.token, which is checked first'
    return [{ key: 'read_token', message: `admin.read_token ${same}: whoever holds it may do everything; give the read-only token a value of its own` }]
  }
  const problems: Array<{ key: 'token' | 'read_token'; message: string }> = []
  const once = stored ? ' once its secret is read' : ''
  for (const [key, value] of [['token', token], ['read_token', readToken]] as const) {
    if (value === undefined) continue
    if (/\s/.test(value)) problems.push({ key, message: `admin.${key} holds white space${once}, which no bearer token can (Authorization: Bearer <token>): no request could present it` })
    // Node reads a header's bytes as Latin-1 (curl's UTF-8 `€` arrives as `â¬`), fetch and undici
    // refuse such a header, and a control character makes the request a 400. Never quoted: a secret.
    // eslint-disable-next-line no-control-regex -- the control characters are what is refused
    else if (/[\u0000-\u001f\u007f\u0100-\u{10ffff}]/u.test(value)) {
      problems.push({ key, message: `admin.${key} holds a character no HTTP header can carry${once} (a control character, or one beyond U+00FF): no request could present it` })
    }
  }
  return problems
}
