// The MCP endpoint and the SDK behind it (~25 MB and ~0.3 s to load) are loaded only for a config
// that has `mcp`. compileRuntime is synchronous, so whoever compiles a config awaits loadMcpFor first.
import type { Config } from '../../config/index.ts'
import type * as Endpoint from './endpoint.ts'

let endpoint: typeof Endpoint | null = null

export async function loadMcpFor(config: Pick<Config, 'mcp'>): Promise<void> {
  if (config.mcp && endpoint === null) endpoint = await import('./endpoint.ts')
}

export const compileMcp: typeof Endpoint.compileMcp = (...args) => {
  if (endpoint === null) throw new Error('the MCP endpoint is not loaded: await loadMcpFor(config) before compiling a config with mcp')
  return endpoint.compileMcp(...args)
}
