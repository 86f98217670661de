export { createLru, type Lru } from './lru.ts'
export { createSharedResources, type ResourceKind, type SharedResources } from './shared-resources.ts'
