// The key that seals 2025-era MCP session ids (sessions.ts), SDK-free: the process makes it with its
// other keys (instance/own-keys.ts) before the MCP SDK is loaded, or whether a config has `mcp` at all.
import { randomBytes } from 'node:crypto'

/** Its name in the process's key store, which every worker reads. */
export const MCP_SESSION_KEY = 'bouncer.mcp-session-key'

export const newSessionKey = (): string => randomBytes(32).toString('base64url')

/** What seals one endpoint's session ids: the process's key and the endpoint's path (a moved endpoint's ids do not open). */
export interface SessionSeal {
  key: string
  path: string
}
