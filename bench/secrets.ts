// Secrets and assertions: what X-Bouncer-Assertion costs the request thread (a cache hit, and a
// signature when the cache misses), and how long a running gateway takes to put a rotated upstream
// credential to use with the default refresh interval, counting requests that failed meanwhile.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import { stringify } from 'yaml'
import type { Identity } from '../src/request/index.ts'
import { startGateway } from '../src/instance/index.ts'
import { openEmbeddedStore } from '../src/secrets/embedded.ts'
import { createLogger } from '../src/telemetry/logger.ts'
import { createAssertionSigner } from '../src/upstream/assertion.ts'

export interface AssertionCost {
  cachedNs: number
  signMicros: number
}

export function benchAssertion(quick: boolean): AssertionCost {
  const signer = createAssertionSigner({ issuer: 'bouncer', ttlMs: 300_000, rotateEveryMs: 86_400_000, store: null, logger: createLogger({ level: 'silent' }) })
  const identities: Identity[] = Array.from({ length: 1_000 }, (_, i) => ({ issuerName: 'corp', iss: 'https://sso.example.com/', sub: `svc-${i}`, clientId: null, claims: {}, expiresAt: 0 }))
  const roles = ['looker-reports']
  const hits = quick ? 200_000 : 2_000_000
  for (let i = 0; i < 1_000; i++) signer.assertion('sales-api', identities[i] as Identity, roles)
  let started = performance.now()
  for (let i = 0; i < hits; i++) signer.assertion('sales-api', identities[i % 1_000] as Identity, roles)
  const cachedNs = ((performance.now() - started) * 1e6) / hits
  // Every call a new principal: a miss, so a signature (and a cache insert and eviction).
  const misses = quick ? 2_000 : 20_000
  const fresh: Identity[] = Array.from({ length: misses }, (_, i) => ({ issuerName: 'corp', iss: 'https://sso.example.com/', sub: `new-${i}`, clientId: null, claims: {}, expiresAt: 0 }))
  started = performance.now()
  for (const identity of fresh) signer.assertion('sales-api', identity, roles)
  return { cachedNs, signMicros: ((performance.now() - started) * 1000) / misses }
}

export interface RotationPickup {
  refreshIntervalMs: number
  rotations: number
  pickupMs: number[]
  requests: number
  failed: number
}

/**
 * A gateway with the default refresh interval (2s) forwards to an upstream that accepts the current
 * and previous token only; a client sends a request every 5 ms while the token is rotated in the
 * store several times. Reports how long each new value took to reach the upstream.
 */
export async function benchRotationPickup(quick: boolean): Promise<RotationPickup> {
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-rotation-bench-'))
  const masterKey = randomBytes(32)
  const path = join(dir, 'secrets.db')
  const store = openEmbeddedStore(path, masterKey)
  store.put('api-token', 'token-0')
  const accepted = new Set(['token-0'])
  let lastSeen = ''
  const upstream = createServer((req, res) => {
    lastSeen = String(req.headers.authorization).slice('Bearer '.length)
    res.writeHead(accepted.has(lastSeen) ? 200 : 401).end()
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' }, audit: { sinks: [] },
    secrets: { store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' } },
    upstreams: [{ name: 'api', url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, headers: { Authorization: 'Bearer ${secret:api-token}' } }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  }))
  const gateway = await startGateway({ configFile: file, logger: createLogger({ level: 'silent' }), env: { ...process.env, BOUNCER_MASTER_KEY: masterKey.toString('base64') } })
  const client = new Pool(gateway.url, { connections: 4 })
  let requests = 0
  let failed = 0
  let running = true
  const sender = (async () => {
    while (running) {
      const res = await client.request({ path: '/r', method: 'GET' })
      await res.body.dump()
      requests++
      if (res.statusCode !== 200) failed++
      await new Promise((r) => setTimeout(r, 5))
    }
  })()
  const rotations = quick ? 2 : 10
  const pickupMs: number[] = []
  for (let i = 1; i <= rotations; i++) {
    // Rotate at a random point of the refresh cycle, as an operator would.
    await new Promise((r) => setTimeout(r, Math.random() * 2_000))
    const value = `token-${i}`
    accepted.clear()
    accepted.add(`token-${i - 1}`)
    accepted.add(value)
    const rotatedAt = performance.now()
    store.put('api-token', value)
    while (lastSeen !== value) await new Promise((r) => setTimeout(r, 1))
    pickupMs.push(performance.now() - rotatedAt)
  }
  running = false
  await sender
  await client.close()
  await gateway.shutdown()
  upstream.close()
  store.close()
  await rm(dir, { recursive: true, force: true })
  return { refreshIntervalMs: 2_000, rotations, pickupMs, requests, failed }
}
