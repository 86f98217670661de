export { ASSERTION_KEY, createAssertionSigner, isAssertionKey, newAssertionKey, publishedKeysOf, type AssertionSigner, type PublishedJwks } from './assertion.ts'
export { upstreamBackend } from './backend.ts'
export { createUpstreamRegistry, type Upstream, type UpstreamRegistry } from './pools.ts'
export type { ForwardSettings } from './request.ts'
