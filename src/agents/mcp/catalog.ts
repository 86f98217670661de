// The tools the gateway offers and the one decision about them. `tools/list` shows a tool exactly
// when `toolAccess` allows it, and `tools/call` runs a tool exactly when `toolAccess` allows it:
// one function, so the list can never offer what a call refuses, or hide what a call allows.
//
// A tool is the route `mcp:<tool>` to the policies, with the action `call`. A tool backed by a
// route is also that route's request: the route's own decision (its policy, for the method the
// tool sends) is part of the tool's, so an agent cannot do through MCP what its role cannot do
// over HTTP — and the call then goes through the pipeline, which decides again and throttles.
import type { Tool } from '@modelcontextprotocol/client'
import { decide, indexByRoute, type AccessControl, type AccessDecision, type RoutePolicy } from '../../access/index.ts'
import { TOOL_NAME } from '../../config/index.ts'
import type { Caller } from '../../request/index.ts'
import type { Logger } from '../../telemetry/index.ts'
import type { RouteToolSource, ToolDefinition } from './route-tools.ts'
import { routeToolDefinition } from './route-tools.ts'
import type { UpstreamMcpServer } from './servers.ts'

/** Aggregated tools are named SERVER__TOOL (unless the server's `prefix` is false). */
export const SEPARATOR = '__'

export type ToolTarget =
  | { kind: 'route'; source: RouteToolSource; route: { public: boolean; policy: RoutePolicy | undefined } }
  /** `listed` false: a name the transparent mode's server does not list, which the agent made up. */
  | { kind: 'server'; server: UpstreamMcpServer; upstreamName: string; listed?: false }

export interface ToolEntry {
  readonly name: string
  readonly definition: Tool | ToolDefinition
  readonly target: ToolTarget
}

export interface ToolVerdict {
  allowed: boolean
  /** What decided: the tool's own statement, or the route's when the route refused. */
  decision: AccessDecision
  /** `mcp:<tool>`, or the route's id when the route refused. */
  decidedOn: string
  /** On behalf of a user (an identity with an actor): whose roles refused, the user's or the agent's; null when allowed. */
  deniedBy?: 'subject' | 'actor' | null
}

export interface Catalog {
  /** Every tool, the unavailable servers' left out (logged). */
  entries(): Promise<ToolEntry[]>
  find(name: string): Promise<ToolEntry | undefined>
  /**
   * The tool `tools/call` decides for a name: the one found, or in the transparent mode (one
   * server, unprefixed) a name the server does not list, which is still its to answer (as it would directly).
   */
  callable(name: string): Promise<ToolEntry | undefined>
  /** What `tools/list` shows the caller: every tool toolAccess allows. */
  listFor(caller: Caller): Promise<ToolEntry[]>
  toolAccess(caller: Caller, entry: ToolEntry): ToolVerdict
  /** The one server of the transparent mode (mcp.servers: one, with prefix: false). */
  readonly transparent: UpstreamMcpServer | undefined
  /** The policy of a route `mcp:<name>` (e.g. mcp:resources for the transparent mode's pass-through). */
  policyOf(routeId: string): RoutePolicy | undefined
  readonly servers: readonly UpstreamMcpServer[]
}

export function createCatalog(routeTools: ReadonlyMap<string, ToolEntry>, servers: readonly UpstreamMcpServer[], access: AccessControl, logger: Logger): Catalog {
  const policies = new Map<string, RoutePolicy | undefined>()
  const policyOf = (routeId: string): RoutePolicy | undefined => {
    // Only a name a tool can bear is kept: explain's `tool` is whatever its reader sends, up to
    // the body's limit, and a cache keyed by it held every such name until 10,000 of them.
    if (!TOOL_NAME.test(routeId.slice('mcp:'.length))) return indexByRoute([routeId], access.roles, access.statements).get(routeId)
    if (!policies.has(routeId)) {
      if (policies.size > 10_000) policies.clear() // bounded: servers may list tools by the thousand
      policies.set(routeId, indexByRoute([routeId], access.roles, access.statements).get(routeId))
    }
    return policies.get(routeId)
  }

  /**
   * The caller's decision; on behalf of a user (an identity with an actor, SPEC "Agents"), the
   * agent's roles decide too, and a deny on either side wins.
   */
  function decideForBoth(caller: Caller, policy: RoutePolicy | undefined, method: string): { decision: AccessDecision; deniedBy?: 'subject' | 'actor' | null } {
    const decision = decide({ identity: caller.identity, roles: caller.roles, clientIp: caller.clientIp, policy, method })
    const actor = caller.identity.actor
    if (!actor) return { decision }
    if (decision.effect !== 'allow') return { decision, deniedBy: 'subject' }
    const actorDecision = decide({ identity: actor, roles: access.resolver.actorRolesFor(actor), clientIp: caller.clientIp, policy, method })
    return { decision: actorDecision, deniedBy: actorDecision.effect === 'allow' ? null : 'actor' }
  }

  async function serverEntries(server: UpstreamMcpServer): Promise<ToolEntry[]> {
    try {
      const tools = await server.tools()
      return tools.map((tool) => {
        const name = server.config.prefix ? `${server.config.name}${SEPARATOR}${tool.name}` : tool.name
        return { name, definition: { ...tool, name }, target: { kind: 'server', server, upstreamName: tool.name } }
      })
    } catch (err) {
      logger.warn({ server: server.config.name, reason: (err as Error).message }, 'MCP server unavailable: its tools are not listed')
      return []
    }
  }

  const transparent = servers.length === 1 && servers[0]?.config.prefix === false ? servers[0] : undefined
  const catalog: Catalog = {
    servers,
    transparent,
    policyOf,
    async entries() {
      const fromServers = servers.length === 0 ? [] : (await Promise.all(servers.map(serverEntries))).flat()
      const seen = new Set(routeTools.keys())
      // A route tool's name wins over a server's; a server's later duplicate is dropped (bouncer check warns).
      return [...routeTools.values(), ...fromServers.filter((entry) => !seen.has(entry.name) && seen.add(entry.name))]
    },
    async find(name) {
      const routeTool = routeTools.get(name)
      if (routeTool) return routeTool
      // Only the servers whose tools can bear this name: a call to one server's tool waited for
      // every other server's list (one down, the whole timeout). Their lists are asked at once and
      // read in file order, as entries() keeps them: a name two bear is the first's (several
      // unprefixed servers waited one after another: found by review).
      const lists = servers.filter((server) => !server.config.prefix || name.startsWith(`${server.config.name}${SEPARATOR}`)).map(serverEntries)
      for (const list of lists) {
        const found = (await list).find((entry) => entry.name === name)
        if (found) return found
      }
      return undefined
    },
    async callable(name) {
      const found = await catalog.find(name)
      // Transparent: a name no tool may bear (MCP's 1-128 letters, digits, _ - .) is unknown, as a
      // listed tool of that name would have been skipped. Passed on, an agent's 10 MB name was
      // decided, kept as a cached policy and a metrics label, and sent to the server.
      if (found || !transparent || !TOOL_NAME.test(name)) return found
      return { name, definition: { name, inputSchema: { type: 'object' } }, target: { kind: 'server', server: transparent, upstreamName: name, listed: false } }
    },
    async listFor(caller) {
      return (await catalog.entries()).filter((entry) => catalog.toolAccess(caller, entry).allowed)
    },
    toolAccess(caller, entry) {
      const toolRoute = `mcp:${entry.name}`
      const { decision, deniedBy } = decideForBoth(caller, policyOf(toolRoute), 'call')
      const who = deniedBy === undefined ? {} : { deniedBy }
      if (decision.effect !== 'allow' || entry.target.kind !== 'route' || entry.target.route.public) {
        return { allowed: decision.effect === 'allow', decision, decidedOn: toolRoute, ...who }
      }
      const route = decideForBoth(caller, entry.target.route.policy, entry.target.source.method)
      if (route.decision.effect === 'allow') return { allowed: true, decision, decidedOn: toolRoute, ...who }
      return { allowed: false, decision: route.decision, decidedOn: entry.target.source.routeId, ...(route.deniedBy === undefined ? {} : { deniedBy: route.deniedBy }) }
    },
  }
  return catalog
}

export function routeToolEntry(name: string, source: RouteToolSource, route: { public: boolean; policy: RoutePolicy | undefined }): ToolEntry {
  return { name, definition: routeToolDefinition(name, source), target: { kind: 'route', source, route } }
}
