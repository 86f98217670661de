export { applyUpstreamHeaders, compileRuntime, createRuntimeDeps, type CompileDeps, type CompiledRoute, type Runtime } from './compile.ts'
export { explain, formatExplanation, type Explanation, type ExplainRequest } from './explain.ts'
export { applyTimeouts, createGatewayServer, type ClientErrorInfo } from './server.ts'
export type { GatewayState } from './state.ts'
