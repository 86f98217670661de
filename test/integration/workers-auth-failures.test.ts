// auth_failures with server.workers: the failures an address makes on any worker count in one
// budget (the workers' shared limits table), and each worker holds the address back at its own
// first failure once that budget is spent. Separate buckets per worker would let it fail burst + 1
// times on each.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

let dir: string
let upstream: TestUpstream
let gateway: ServeProcess
const ADMIN = 'workers-auth-failures-admin-token-0123'

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-auth-failures-'))
  upstream = await startUpstream()
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
    roles: [{ name: 'bi', assumed_by: [{ issuer: 'api-keys' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data', upstream: 'api', accept: ['api_key'] }],
    auth_failures: { rate: '1/h', burst: 3 },
    admin: { listen: '127.0.0.1:0', token: ADMIN },
  })))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

it('counts an address\'s failures on every worker in one budget', async () => {
  const unknown = `bk_${'0'.repeat(16)}_${'b'.repeat(64)}`
  const outcomes: number[] = []
  // Each on a connection of its own from one address: the kernel spreads them over the workers.
  for (let i = 0; i < 16; i++) {
    const agent = new Agent({ localAddress: '127.0.0.9' })
    try {
      const res = await request(`${gateway.url}/data`, { dispatcher: agent, headers: { 'x-api-key': unknown, connection: 'close' } })
      await res.body.dump()
      outcomes.push(res.statusCode)
    } finally {
      await agent.close()
    }
  }
  const refused = outcomes.filter((status) => status === 401).length
  // The budget (3), then at most one more on each worker before it holds the address back.
  expect(refused).toBeGreaterThanOrEqual(4)
  expect(refused).toBeLessThanOrEqual(5)
  expect(outcomes.filter((status) => status === 429).length).toBe(16 - refused)
}, 60_000)

it('counts wrong admin tokens at the primary\'s admin listener against the address that sent them', async () => {
  // The primary passes /api/* to a worker with the operator's address: the worker counts and holds that address, not the primary's.
  const admin = async (from: string, token: string) => {
    const agent = new Agent({ localAddress: from })
    try {
      const res = await request(`${gateway.adminUrl}/api/routes`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } })
      await res.body.dump()
      return res.statusCode
    } finally {
      await agent.close()
    }
  }
  const guesses: number[] = []
  for (let i = 0; i < 4; i++) guesses.push(await admin('127.0.0.21', `guess-${i}`))
  expect(guesses).toEqual([401, 401, 401, 401])
  expect(await admin('127.0.0.21', ADMIN)).toBe(429)
  expect(await admin('127.0.0.22', ADMIN)).toBe(200)
}, 60_000)
