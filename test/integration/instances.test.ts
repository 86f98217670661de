// What several instances behind one load balancer need of each: a config file that reloads itself
// when it changes (a ConfigMap), /readyz held back until the shared stores have answered, and the
// instance id in every log line and on /metrics.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startPostgres, uniqueSchema } from '../helpers/postgres.ts'
import { startRedis, type TestRedis } from '../helpers/redis.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let gateway: TestGateway | undefined
let redis: TestRedis | undefined
let upstream: TestUpstream | undefined

afterEach(async () => {
  await gateway?.close()
  await redis?.stop()
  await upstream?.close()
  gateway = redis = upstream = undefined
})

const routes = (header: string) => ({
  upstreams: [{ name: 'api', url: upstream?.url ?? 'http://127.0.0.1:9', headers: { 'X-Generation': header } }],
  routes: [{ id: 'any', path: '/*', upstream: 'api', public: true }],
})

async function readyz(adminUrl: string): Promise<{ status: number; body: { checks: Record<string, string> } }> {
  const res = await request(`${adminUrl}/readyz`)
  return { status: res.statusCode, body: (await res.body.json()) as { checks: Record<string, string> } }
}

describe('server.watch_config', () => {
  it('reloads the config when its file changes, without a signal', async () => {
    upstream = await startUpstream((req, res) => void res.end(String(req.headers['x-generation'])))
    gateway = await startTestGateway({ server: { watch_config: true }, ...routes('one') })
    expect(await (await request(`${gateway.url}/x`)).body.text()).toBe('one')
    await gateway.writeConfig({ server: { watch_config: true }, ...routes('two') })
    await waitFor(async () => (await (await request(`${gateway!.url}/x`)).body.text()) === 'two', 'the changed file to be reloaded', 20_000)
    expect(gateway.logs.join('')).toContain('config file changed: reloading')
  })

  it('refuses a changed file that does not load, says why, and keeps serving the running config', async () => {
    upstream = await startUpstream((req, res) => void res.end(String(req.headers['x-generation'])))
    gateway = await startTestGateway({ server: { watch_config: true }, ...routes('one') })
    await writeFile(gateway.file, 'server: { watch_config: true }\nroutes: [{ id: any, path: "/*", upstream: nowhere, public: true }]\n')
    await waitFor(() => gateway!.logs.join('').includes('config reload refused'), 'the refusal in the log', 20_000)
    expect(await (await request(`${gateway.url}/x`)).body.text()).toBe('one')
  })

  it('leaves a changed file alone when it is off (the default): SIGHUP or the API reloads it', async () => {
    upstream = await startUpstream((req, res) => void res.end(String(req.headers['x-generation'])))
    gateway = await startTestGateway(routes('one'))
    await gateway.writeConfig(routes('two'))
    // Three polls of the file go by: a watcher that reloaded would have done it by then.
    await new Promise((r) => setTimeout(r, 3_000)) // a negative: nothing to wait on but time
    expect(await (await request(`${gateway.url}/x`)).body.text()).toBe('one')
    await gateway.reload()
    expect(await (await request(`${gateway.url}/x`)).body.text()).toBe('two')
  })

  it('is a boolean', async () => {
    await expect(startTestGateway({ server: { watch_config: 'yes' }, ...routes('one') })).rejects.toThrow(/watch_config/)
  })
})

describe('/readyz and the shared stores', () => {
  it('answers 503 until the Redis limits store has answered, then 200, and stays 200 through a later outage', async () => {
    redis = await startRedis()
    await redis.stop()
    gateway = await startTestGateway({ ...routes('one'), limits_store: { type: 'redis', url: redis.url, on_error: 'allow' } })
    const before = await readyz(gateway.adminUrl)
    expect(before.status).toBe(503)
    expect(before.body.checks.limits_store).not.toBe('ready')
    await redis.start()
    await waitFor(async () => (await readyz(gateway!.adminUrl)).status === 200, '/readyz 200 once Redis answers', 20_000)
    await redis.stop()
    redis = undefined // stopped for good (its helper's stop() waits for an exit that already happened)
    await waitFor(async () => (await readyz(gateway!.adminUrl)).body.checks.limits_store !== 'ready', 'the outage in the checks', 20_000)
    expect((await readyz(gateway.adminUrl)).status).toBe(200)
  })

  // Found by a probe: the stores' "answered once" was noted only when /readyz was polled, so a
  // gateway nobody polled while they answered read not ready through a later outage, where a
  // polled one read ready.
  it('is 200 through an outage of Redis and PostgreSQL that /readyz was not polled before', async () => {
    redis = await startRedis()
    const postgres = await startPostgres()
    const schema = uniqueSchema('ready')
    const dir = await mkdtemp(join(tmpdir(), 'bouncer-ready-'))
    try {
      gateway = await startTestGateway({
        ...routes('one'),
        limits_store: { type: 'redis', url: redis.url, on_error: 'allow' },
        audit: { sinks: [{ type: 'postgres', url: postgres.url, schema, write_timeout: '500ms' }], spill_dir: join(dir, 'spill'), flush_interval: '10ms' },
      })
      const state = gateway.state
      await (await request(`${gateway.url}/x`)).body.dump()
      // Watched in process, not through /readyz: both stores answer.
      await waitFor(() => state.runtime.limiter.store.status() === 'ready' && state.audit.stats().sinks[`postgres:${schema}`] === true, 'both stores to answer', 20_000)
      await redis.stop()
      redis = undefined
      await postgres.stop()
      await (await request(`${gateway.url}/x`)).body.dump()
      await waitFor(() => state.runtime.limiter.store.status() !== 'ready' && state.audit.stats().sinks[`postgres:${schema}`] === false, 'both outages', 20_000)
      const during = await readyz(gateway.adminUrl)
      expect(during.body.checks[`audit:postgres:${schema}`]).toBe('spilling to disk')
      expect(during.body.checks.limits_store).not.toBe('ready')
      expect(during.status).toBe(200)
    } finally {
      await gateway?.close()
      gateway = undefined
      await postgres.destroy()
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('the instance id', () => {
  it('is in every log line and in bouncer_instance_info, from $BOUNCER_INSTANCE', async () => {
    gateway = await startTestGateway(routes('one'), { env: { BOUNCER_INSTANCE: 'gw-7' } })
    await gateway.reload()
    const lines = gateway.logs.join('').trim().split('\n').map((line) => JSON.parse(line) as { instance?: string })
    expect(lines.length).toBeGreaterThan(0)
    for (const line of lines) expect(line.instance).toBe('gw-7')
    const metrics = await (await request(`${gateway.adminUrl}/metrics`)).body.text()
    expect(metrics).toContain('bouncer_instance_info{instance_id="gw-7"} 1')
    expect(metrics).not.toMatch(/^bouncer_tls_certificate/m) // no TLS: no certificate series (an expiry of 0 would read "expired")
  })
})
