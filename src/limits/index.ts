export { compileRouteLimits, createLimitsStoreRegistry, enforceLimits, type Limiter, type LimitsStoreRegistry, type RouteLimits } from './limiter.ts'
export type { LimitsStore } from './store.ts'
