export { createLru, type Lru } from './lru.ts'
