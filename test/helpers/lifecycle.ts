// Lifecycles the integration test files share: what a test opened, closed after it (newest first,
// and also when it failed), and an upstream that lives as long as the file's tests.
import { afterAll, afterEach, beforeAll } from 'vitest'
import { startUpstream, type TestUpstream, type UpstreamHandler } from './upstream.ts'

/** Registers an afterEach that runs, newest first, the closers a test hands to the returned function. */
export function closeAfterEach(): (...close: Array<() => unknown>) => void {
  const closers: Array<() => unknown> = []
  afterEach(async () => {
    while (closers.length > 0) await closers.pop()?.()
  })
  return (...close) => void closers.push(...close)
}

/** An upstream started before the file's tests and closed after them; call the getter inside a test. */
export function upstreamForFile(handler?: UpstreamHandler): () => TestUpstream {
  let upstream: TestUpstream | undefined
  beforeAll(async () => {
    upstream = await startUpstream(handler)
  })
  afterAll(async () => {
    await upstream?.close()
  })
  return () => {
    if (!upstream) throw new Error('the file\'s upstream starts in beforeAll: read it inside a test')
    return upstream
  }
}
