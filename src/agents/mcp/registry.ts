// What outlives one runtime: the connections to upstream MCP servers, the approvals stores and the
// 2025-era sessions. A reload that keeps a server's settings keeps its connection; a store path
// keeps its handle; an mcp.path keeps its sessions (sessions.ts). What no runtime uses any more is
// closed (`retire`, called as the other shared resources are).
import { createSharedResources } from '../../collections/index.ts'
import type { Logger } from '../../telemetry/index.ts'
import { openApprovalStore, type ApprovalStore } from './approvals.ts'
import { endedSessions, type EndedSessions } from './ended-sessions.ts'
import { createMcpServerRegistry, type McpServerRegistry, type UpstreamMcpServer } from './servers.ts'
import { newSessionKey, type SessionSeal } from './session-seal.ts'
import type { LegacySessions } from './sessions.ts'

export interface AgentsRegistry {
  readonly servers: McpServerRegistry
  approvals(path: string): ApprovalStore
  /** Disconnects the servers and closes the approvals stores of every runtime but those kept. */
  retire(keep: Iterable<{ servers: readonly UpstreamMcpServer[]; approvals: ApprovalStore | null }>): Promise<void>
  /** The sessions of the MCP endpoint at `path`, made by `create` at first (the SDK loads with the endpoint, not here). */
  sessions(path: string, create: (seal: SessionSeal, ended: EndedSessions) => LegacySessions): LegacySessions
  /**
   * A reload has swapped runtimes: the sessions of every path but `except` (the new endpoint's path)
   * are quiesced (their calls in flight still answered) and set aside until endRetiredSessions.
   */
  retireSessions(except: string | null): void
  /** Ends the set-aside sessions of every path no runtime still draining serves. */
  endRetiredSessions(draining: ReadonlySet<string>): Promise<void>
  /** Shutdown: every path's sessions quiesced, so the drain waits for calls, not for notification streams. */
  quiesceSessions(): void
  closeAll(): Promise<void>
}

/**
 * Opened on first use: compiling a config (`bouncer explain`, a reload that is then refused) must
 * not create the file; a gateway opens it with the first approval-gated call or admin request.
 * Once retired (no config uses it), a request that began before still reaches its approvals, each
 * on a handle of its own closed after it: nothing is left open that no registry would close.
 */
function lazyStore(path: string): ApprovalStore {
  let store: ApprovalStore | null = null
  let retired = false
  // A call waiting for another process's lock is still using the handle: closed when the last ends.
  let inUse = 0
  async function use<T>(operation: (store: ApprovalStore) => Promise<T>): Promise<T> {
    if (retired) {
      const once = openApprovalStore(path)
      try {
        return await operation(once)
      } finally {
        once.close()
      }
    }
    const current = (store ??= openApprovalStore(path))
    inUse++
    try {
      return await operation(current)
    } finally {
      if (--inUse === 0 && retired && store === current) {
        current.close()
        store = null
      }
    }
  }
  return {
    location: path,
    request: (call, now) => use((s) => s.request(call, now)),
    take: (call, now) => use((s) => s.take(call, now)),
    giveBack: (id, now) => use((s) => s.giveBack(id, now)),
    get: (id, now) => use((s) => s.get(id, now)),
    list: (filter, now) => use((s) => s.list(filter, now)),
    decide: (id, decision, by, now) => use((s) => s.decide(id, decision, by, now)),
    close: () => {
      retired = true
      if (inUse > 0) return
      store?.close()
      store = null
    },
  }
}

/**
 * `sessionKey`: what seals session ids (session-seal.ts), and `ended`: the table of the ids DELETEd
 * (ended-sessions.ts), both the process's; a registry of its own makes them (the table when a path
 * first has sessions: a compile for `explain` or a replay needs none).
 */
export function createAgentsRegistry(logger: Logger, sessionKey: string = newSessionKey(), ended?: EndedSessions): AgentsRegistry {
  let endedTable = ended
  const servers = createMcpServerRegistry(logger)
  // One store per path, kept across reloads and retired like the other shared resources.
  const stores = createSharedResources<string, ApprovalStore>({ fingerprint: (path) => path, create: lazyStore, close: (store) => store.close() })
  const sessionsByPath = new Map<string, LegacySessions>()
  // Sessions of paths a reload dropped, quiesced, until the runtimes that served them have drained.
  let retired: Array<{ path: string; sessions: LegacySessions }> = []
  async function endRetiredSessions(draining: ReadonlySet<string>): Promise<void> {
    const ending = retired.filter(({ path }) => !draining.has(path))
    retired = retired.filter(({ path }) => draining.has(path))
    await Promise.all(ending.map(({ sessions }) => sessions.close()))
  }
  return {
    servers,
    approvals: (path) => stores.acquire(path),
    async retire(keep) {
      const kept = [...keep]
      await Promise.all([stores.retire(kept.flatMap((mcp) => (mcp.approvals ? [mcp.approvals] : []))), servers.retire(kept.flatMap((mcp) => mcp.servers))])
    },
    sessions(path, create) {
      let sessions = sessionsByPath.get(path)
      if (!sessions) sessionsByPath.set(path, (sessions = create({ key: sessionKey, path }, (endedTable ??= endedSessions()))))
      return sessions
    },
    retireSessions(except) {
      for (const [path, sessions] of sessionsByPath) {
        if (path === except) continue
        sessionsByPath.delete(path)
        sessions.quiesce()
        retired.push({ path, sessions })
      }
    },
    endRetiredSessions,
    quiesceSessions() {
      for (const sessions of sessionsByPath.values()) sessions.quiesce()
    },
    async closeAll() {
      const open = [...sessionsByPath.values(), ...retired.map(({ sessions }) => sessions)]
      sessionsByPath.clear()
      retired = []
      await Promise.all(open.map((sessions) => sessions.close()))
      await Promise.all([servers.closeAll(), stores.closeAll()])
    },
  }
}
