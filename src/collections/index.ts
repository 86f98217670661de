export { createLru, type Lru } from './lru.ts'
export { createSharedResources, type ResourceKind, type SharedResources } from './shared-resources.ts'
export { DeadlineExceeded, withinDeadline } from './deadline.ts'
export { addMissingColumns, isBusy, whenUnlocked } from './sqlite-file.ts'
