// Checks about the MCP endpoint (mcp): tools name routes that exist and take the bearer tokens MCP
// callers present, tool and server names are unique, server URLs hold no credentials, the
// transparent mode has one server, approvers are roles.
import type { Finding } from './diagnostics.ts'
import type { Config } from './schema.ts'
import { repeatedHeaders } from './upstream-checks.ts'

/** Headers the gateway (the call's trace context) and its MCP client (the session, the protocol) set on every request to a server. */
const SET_FOR_MCP_SERVERS: ReadonlySet<string> = new Set(['traceparent', 'tracestate', 'mcp-session-id', 'mcp-protocol-version', 'host', 'content-length', 'transfer-encoding', 'connection'])

export function mcpFindings(config: Config): Finding[] {
  const mcp = config.mcp
  if (!mcp) return []
  const findings: Finding[] = []
  const error = (path: (string | number)[], message: string) => findings.push({ severity: 'error', path: ['mcp', ...path], message })
  const routes = new Map(config.routes.map((r) => [r.id, r]))
  const names = new Set<string>()
  mcp.tools.forEach((tool, i) => {
    const route = routes.get(tool.route)
    if (!route) error(['tools', i, 'route'], `unknown route "${tool.route}"`)
    // A tool call carries the MCP caller, who presented a bearer token: a route that takes no bearer
    // token (accept) refuses that caller over HTTP, and its tool ran the call for them anyway.
    else if (!route.public && !route.accept.includes('bearer')) {
      error(['tools', i, 'route'], `route "${tool.route}" does not take bearer tokens (accept: ${route.accept.join(', ')}), and MCP callers present one: its tool would let them past that`)
    }
    // The method the tool sends must be one the route takes: tools/list showed the tool, and every call was 405.
    if (route && tool.method !== undefined && tool.method !== '*' && !route.methods.includes(tool.method) && !route.methods.includes('*')) {
      error(['tools', i, 'method'], `route "${tool.route}" takes ${route.methods.join(', ')}, not ${tool.method}: every call of the tool would be refused (405)`)
    }
    const name = tool.name ?? tool.route
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(name)) error(['tools', i, 'name'], `"${name}" is not a valid tool name: give the tool a name (letters, digits, _ - .)`)
    if (names.has(name)) error(['tools', i, 'name'], `duplicate tool name "${name}"`)
    names.add(name)
  })
  const servers = new Set<string>()
  mcp.servers.forEach((server, i) => {
    if (servers.has(server.name)) error(['servers', i, 'name'], `duplicate MCP server "${server.name}"`)
    servers.add(server.name)
    // fetch refuses a URL with user:password@: such a server never answered, and each attempt logged its password.
    const url = new URL(server.url)
    if (url.username || url.password) error(['servers', i, 'url'], 'put credentials in headers (with ${secret:NAME}), not in the URL')
    if (!server.prefix && mcp.servers.length > 1) error(['servers', i, 'prefix'], 'prefix: false (the transparent mode) needs exactly one server: with several, their tool names could collide')
    // Set on each request by the gateway (the call's trace context) or its MCP client (the session):
    // a configured value would be sent beside them or in their place, as with a route upstream's.
    for (const header of Object.keys(server.headers)) {
      const folded = header.toLowerCase().replace(/_/g, '-')
      if (SET_FOR_MCP_SERVERS.has(folded)) error(['servers', i, 'headers', header], `the gateway sets ${header} itself on every request to an MCP server; it cannot be configured`)
    }
    findings.push(...repeatedHeaders(server.headers, ['mcp', 'servers', i, 'headers']))
    server.limits.forEach((name, j) => {
      if (!config.limits.some((limit) => limit.name === name)) error(['servers', i, 'limits', j], `unknown limit "${name}"`)
    })
  })
  const roles = new Set(config.roles.map((r) => r.name))
  mcp.approvals.forEach((rule, i) => {
    rule.approvers.forEach((role, j) => {
      if (!roles.has(role)) error(['approvals', i, 'approvers', j], `unknown role "${role}"`)
    })
  })
  config.routes.forEach((route, i) => {
    if (route.path === mcp.path || route.path.startsWith(`${mcp.path}/`)) {
      findings.push({ severity: 'error', path: ['routes', i, 'path'], message: `${route.path} is the MCP endpoint's path (mcp.path)` })
    }
  })
  return findings
}
