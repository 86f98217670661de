// A gateway started in-process from a config object (written to a temp dir as YAML), listening on
// free ports, with its logs captured so tests can assert on them (and grep them for secrets).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { request } from 'undici'
import { expect } from 'vitest'
import { stringify } from 'yaml'
import type { Explanation } from '../../src/gateway/explain.ts'
import { startGateway, type GatewayInstance } from '../../src/instance/index.ts'
import { createLogger } from '../../src/telemetry/logger.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from './identity-provider.ts'
import { startUpstream, type TestUpstream } from './upstream.ts'
import { waitFor } from './wait.ts'

export interface TestGateway extends GatewayInstance {
  dir: string
  file: string
  logs: string[]
  /** Rewrites the config file (for reload tests). */
  writeConfig(config: Record<string, unknown>): Promise<void>
  close(): Promise<void>
}

export function withDefaults(config: Record<string, unknown>, dir: string): Record<string, unknown> {
  const server = (config.server ?? {}) as Record<string, unknown>
  const admin = (config.admin ?? {}) as Record<string, unknown>
  return {
    ...config,
    server: { listen: '127.0.0.1:0', ...server },
    admin: { listen: '127.0.0.1:0', ...admin },
    audit: config.audit ?? { sinks: [], spill_dir: join(dir, 'spill') },
  }
}

/**
 * `config`, or a function of the gateway's own temp dir giving it (for files that go with the gateway,
 * an SQLite audit log; the dir is removed on close). `port`, `adminPort`: the listeners' ports
 * (default 0, any free one), for tests that must know one in advance (a provider's registered redirect URI).
 */
export async function startTestGateway(config: Record<string, unknown> | ((dir: string) => Record<string, unknown>), options: { env?: NodeJS.ProcessEnv; port?: number; adminPort?: number } = {}): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-test-'))
  const file = join(dir, 'bouncer.yaml')
  const writeConfig = (next: Record<string, unknown>) => writeFile(file, stringify(withDefaults(next, dir)))
  await writeConfig(typeof config === 'function' ? config(dir) : config)
  const logs: string[] = []
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logs.push(chunk.toString('utf8'))
        callback()
      },
    }),
  })
  const gateway = await startGateway({ configFile: file, port: options.port ?? 0, adminPort: options.adminPort ?? 0, logger, env: { ...process.env, ...options.env } })
  return {
    ...gateway,
    dir,
    file,
    logs,
    writeConfig,
    async close() {
      await gateway.shutdown()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Roles and policies that let any verified caller of these issuers do anything (identity tests). */
export function allowAnyCaller(issuers: string[]): { roles: object[]; policies: object[] } {
  return {
    roles: [{ name: 'any-caller', assumed_by: issuers.map((issuer) => ({ issuer })), policies: ['allow-all'] }],
    policies: [{ name: 'allow-all', statements: [{ sid: 'AllowAll', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
  }
}

export interface AnyCallerSetup {
  idp: TestIdentityProvider
  upstream: TestUpstream
  gateway: TestGateway
  close(): Promise<void>
}

/** The identity provider (issuer `corp`), an upstream behind /data/*, and a gateway that lets any verified caller of corp do anything, its keys loaded: tests of how a token or request is read, where the decision is not the point. */
export async function startAnyCallerGateway(): Promise<AnyCallerSetup> {
  const idp = await startIdentityProvider()
  const upstream = await startUpstream()
  const gateway = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'data', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'data' }],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
  return {
    idp, upstream, gateway,
    async close() {
      await gateway.close()
      await upstream.close()
      await idp.stop()
    },
  }
}

/** Every path, public, forwarded to `upstreamUrl` (upstream `api`, route `all`): the front door's tests, where identity is not the point. */
export function publicCatchAll(upstreamUrl: string): { upstreams: object[]; routes: object[] } {
  return { upstreams: [{ name: 'api', url: upstreamUrl }], routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }] }
}

/** GET /readyz on the gateway's admin listener: its status and its checks. */
export async function readyz(gateway: { adminUrl: string }): Promise<{ status: number; checks: Record<string, string> }> {
  const res = await request(`${gateway.adminUrl}/readyz`)
  return { status: res.statusCode, checks: ((await res.body.json()) as { checks: Record<string, string> }).checks }
}

/** POST /api/explain on the gateway's admin listener, as `adminToken`: the explanation; the test fails, showing the answer, unless it is 200. */
export async function explainAt(gateway: { adminUrl: string }, adminToken: string, body: Record<string, unknown>): Promise<Explanation> {
  const res = await request(`${gateway.adminUrl}/api/explain`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await res.body.text()
  expect(res.statusCode, text).toBe(200)
  return JSON.parse(text) as Explanation
}
