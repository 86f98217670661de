// What outlives one runtime: the connections to upstream MCP servers and the approvals stores. A
// reload that keeps a server's settings keeps its connection; a store path keeps its handle.
import type { Logger } from '../../telemetry/index.ts'
import { openApprovalStore, type ApprovalStore } from './approvals.ts'
import { createMcpServerRegistry, type McpServerRegistry } from './servers.ts'

export interface AgentsRegistry {
  readonly servers: McpServerRegistry
  approvals(path: string): ApprovalStore
  closeAll(): Promise<void>
}

export function createAgentsRegistry(logger: Logger): AgentsRegistry {
  const servers = createMcpServerRegistry(logger)
  const stores = new Map<string, ApprovalStore>()
  return {
    servers,
    approvals(path) {
      let store = stores.get(path)
      if (!store) stores.set(path, (store = openApprovalStore(path)))
      return store
    },
    async closeAll() {
      await servers.closeAll()
      for (const store of stores.values()) store.close()
      stores.clear()
    },
  }
}
