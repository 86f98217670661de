// What outlives one runtime: the connections to upstream MCP servers, the approvals stores and the
// 2025-era sessions. A reload that keeps a server's settings keeps its connection; a store path
// keeps its handle; an mcp.path keeps its sessions (sessions.ts).
import type { Logger } from '../../telemetry/index.ts'
import { openApprovalStore, type ApprovalStore } from './approvals.ts'
import { createMcpServerRegistry, type McpServerRegistry } from './servers.ts'
import type { LegacySessions } from './sessions.ts'

export interface AgentsRegistry {
  readonly servers: McpServerRegistry
  approvals(path: string): ApprovalStore
  /** The sessions of the MCP endpoint at `path`, made by `create` at first (the SDK loads with the endpoint, not here). */
  sessions(path: string, create: () => LegacySessions): LegacySessions
  /**
   * Ends the sessions of every path but `except` (the endpoint's path once a reload has swapped
   * runtimes; null at shutdown, where their streams would otherwise be waited out).
   */
  endSessions(except: string | null): Promise<void>
  closeAll(): Promise<void>
}

/**
 * Opened on first use: compiling a config (`bouncer explain`, a reload that is then refused) must
 * not create the file; a gateway opens it with the first approval-gated call or admin request.
 */
function lazyStore(path: string): ApprovalStore {
  let store: ApprovalStore | null = null
  const open = () => (store ??= openApprovalStore(path))
  return {
    location: path,
    request: (call, now) => open().request(call, now),
    take: (call, now) => open().take(call, now),
    get: (id, now) => open().get(id, now),
    list: (filter, now) => open().list(filter, now),
    decide: (id, decision, by, now) => open().decide(id, decision, by, now),
    close: () => {
      store?.close()
      store = null
    },
  }
}

export function createAgentsRegistry(logger: Logger): AgentsRegistry {
  const servers = createMcpServerRegistry(logger)
  const stores = new Map<string, ApprovalStore>()
  const sessionsByPath = new Map<string, LegacySessions>()
  async function endSessions(except: string | null): Promise<void> {
    const ending = [...sessionsByPath].filter(([path]) => path !== except)
    for (const [path] of ending) sessionsByPath.delete(path)
    await Promise.all(ending.map(([, sessions]) => sessions.close()))
  }
  return {
    servers,
    approvals(path) {
      let store = stores.get(path)
      if (!store) stores.set(path, (store = lazyStore(path)))
      return store
    },
    sessions(path, create) {
      let sessions = sessionsByPath.get(path)
      if (!sessions) sessionsByPath.set(path, (sessions = create()))
      return sessions
    },
    endSessions,
    async closeAll() {
      await endSessions(null)
      await servers.closeAll()
      for (const store of stores.values()) store.close()
      stores.clear()
    },
  }
}
