export { ASSERTION_KEY, createAssertionSigner, isAssertionKey, newAssertionKey, type AssertionSigner, type PublishedJwks } from './assertion.ts'
export { forward, type ForwardOptions } from './forward.ts'
export { createUpstreamRegistry, type Upstream, type UpstreamRegistry } from './pools.ts'
export { forwardUpgrade } from './upgrade.ts'
