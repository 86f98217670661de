export { functionBackend, type FunctionRouteSettings } from './backend.ts'
export { routeKeyOf } from './event.ts'
export type { FunctionPool } from './pool.ts'
export { createFunctionRegistry, type FunctionLoading, type FunctionRegistry } from './registry.ts'
