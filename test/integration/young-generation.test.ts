// Deployments set NODE_OPTIONS=--max-semi-space-size=16 for the request thread (deploy/, the
// Dockerfile). V8 applied it to every worker thread too, over the young generation each was started
// with: a function's `memory` (of which the young generation is a slice) did not bound it, and the
// audit worker held 16-32 MB of young generation for its batches. bin/bouncer.js clears the flag
// once the main thread has its heap (issue 15).
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'

const FIXTURE = fileURLToPath(new URL('../fixtures/functions/young-generation.mjs', import.meta.url))
let serve: ServeProcess

beforeAll(async () => {
  serve = await serveConfig({
    audit: { sinks: [] },
    // 64 MB: a young generation of 8 MB (a semi-space of ~2.7 MB), the rest old generation.
    functions: [{ name: 'young', module: FIXTURE, memory: '64MB', concurrency: 1 }],
    routes: [{ id: 'young', path: '/young', function: 'young', public: true }],
  }, { env: { NODE_OPTIONS: '--max-semi-space-size=16', BOUNCER_LOG_LEVEL: 'warn' } })
})
afterAll(async () => {
  await serve?.stop()
})

it("a function's worker keeps the young generation its memory gives it, under the deployed --max-semi-space-size=16", async () => {
  const res = await request(`${serve.url}/young`)
  expect(res.statusCode).toBe(200)
  const { newSpaceMb } = (await res.body.json()) as { newSpaceMb: number }
  // Two semi-spaces of ~2.7 MB; with the flag applied it grows to 16-32 MB.
  expect(newSpaceMb).toBeGreaterThan(0)
  expect(newSpaceMb).toBeLessThanOrEqual(8)
})
