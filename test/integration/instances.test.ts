// What several instances behind one load balancer need of each: a config file that reloads itself
// when it changes (a ConfigMap), /readyz held back until the shared stores have answered, and the
// instance id in every log line and on /metrics.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { stringify } from 'yaml'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startPostgres, uniqueSchema } from '../helpers/postgres.ts'
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

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

  // Found by an adversarial probe (several instances on one file): an edit that one instance could
  // not load (an environment variable only the others had) left it on the old config with a 200
  // /readyz that said nothing, bouncer_background_failures_total{task="reload"} at 0, and a log line.
  it('an instance of two on one file that cannot load an edit says so on /readyz and /metrics while the other runs it, until an edit loads', async () => {
    upstream = await startUpstream((req, res) => void res.end(String(req.headers['x-generation'])))
    const dir = await mkdtemp(join(tmpdir(), 'bouncer-one-file-'))
    const file = join(dir, 'bouncer.yaml')
    const config = (header: string) => stringify({
      server: { listen: '127.0.0.1:0', watch_config: true },
      admin: { listen: '127.0.0.1:0' },
      ...routes(header),
      audit: { sinks: [], spill_dir: join(dir, '${env:BOUNCER_INSTANCE}') },
    })
    await writeFile(file, config('one'))
    const first = await startServe(['--config', file], { env: { BOUNCER_INSTANCE: 'gw-1', ONLY_HERE: 'two' } })
    const second = await startServe(['--config', file], { env: { BOUNCER_INSTANCE: 'gw-2' } })
    const body = async (url: string) => (await request(`${url}/x`)).body.text()
    const refusedGauge = async (adminUrl: string) => /^bouncer_config_reload_refused (\d+)$/m.exec(await (await request(`${adminUrl}/metrics`)).body.text())?.[1]
    try {
      expect(await refusedGauge(second.adminUrl)).toBe('0')
      await writeFile(file, config('${env:ONLY_HERE}'))
      await waitFor(async () => (await body(first.url)) === 'two', 'the instance that can load it to reload', 20_000)
      await waitFor(() => (second.stdout() + second.stderr()).includes('config reload refused'), 'the other to refuse it', 20_000)
      expect(await body(second.url)).toBe('one')
      const refused = await readyz(second.adminUrl)
      expect(refused.status).toBe(200) // its config still serves
      expect(refused.body.checks.config).toMatch(/^generation 1, sha256 [0-9a-f]{16}; a reload was refused at \d{4}-\d\d-\d\dT[\d:.]+Z \(1 problem, logged with "config reload refused"\): the running config keeps serving$/)
      expect(refused.body.checks.config).not.toContain('ONLY_HERE') // /readyz is open to whoever reaches the admin listener: no config text
      expect(await refusedGauge(second.adminUrl)).toBe('1')
      expect((await readyz(first.adminUrl)).body.checks.config).toMatch(/^generation 2, sha256 [0-9a-f]{16}$/)
      expect(await refusedGauge(first.adminUrl)).toBe('0')

      await writeFile(file, config('three'))
      await waitFor(async () => (await body(second.url)) === 'three', 'an edit it can load', 20_000)
      expect((await readyz(second.adminUrl)).body.checks.config).toMatch(/^generation 2, sha256 [0-9a-f]{16}$/)
      expect(await refusedGauge(second.adminUrl)).toBe('0')
    } finally {
      await first.stop()
      await second.stop()
      await rm(dir, { recursive: true, force: true })
    }
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

// An operations report: two instances on one Redis limits store, one at 10/m and one at 20/m for
// the same limit, each enforced its own on the same buckets, and nothing said so.
describe('instances sharing a Redis limits store', () => {
  it('are told when their limits differ, which instances and how, on /metrics too; until they agree, and a stopped one is forgotten', async () => {
    upstream = await startUpstream((_req, res) => void res.end('ok'))
    const dir = await mkdtemp(join(tmpdir(), 'bouncer-limits-agree-'))
    const prefix = uniquePrefix('limits-agree')
    const config = (rate: string, workers = 1) => stringify({
      server: { listen: '127.0.0.1:0', workers },
      admin: { listen: '127.0.0.1:0' },
      upstreams: [{ name: 'api', url: upstream!.url }],
      routes: [{ id: 'any', path: '/*', upstream: 'api', public: true, limits: ['per-caller'] }],
      limits: [{ name: 'per-caller', key: 'ip', rate }],
      limits_store: { type: 'redis', url: 'redis://127.0.0.1:6379', prefix },
      audit: { sinks: [], spill_dir: join(dir, '${env:BOUNCER_INSTANCE}') },
    })
    const fileA = join(dir, 'a.yaml')
    const fileB = join(dir, 'b.yaml')
    // gw-a with two workers: the first compares for the process, and /metrics says 1, not 1 per worker.
    await writeFile(fileA, config('10/m', 2))
    await writeFile(fileB, config('20/m'))
    const mismatch = (adminUrl: string) => metricValue(adminUrl, 'bouncer_limits_config_mismatch')
    const disagreeing = 'gateway instances sharing the limits store enforce different limits'
    const agreeing = 'the gateway instances sharing the limits store enforce the same limits again'
    const linesOf = (gw: ServeProcess, text: string) => `${gw.stdout()}${gw.stderr()}`.split('\n').filter((line) => line.includes(text)).map((line) => JSON.parse(line) as Record<string, unknown>)
    const a = await startServe(['--config', fileA], { env: { BOUNCER_INSTANCE: 'gw-a' }, startTimeout: 60_000 })
    let b: ServeProcess | undefined
    try {
      await waitFor(async () => (await mismatch(a.adminUrl)) === 0, 'gw-a alone: nothing to disagree with')
      b = await startServe(['--config', fileB], { env: { BOUNCER_INSTANCE: 'gw-b' } })
      const gwB = b
      // gw-b compares at start; gw-a at its next comparison (every 5 s).
      await waitFor(() => linesOf(gwB, disagreeing).length > 0, 'gw-b to warn')
      expect(linesOf(gwB, disagreeing)[0]).toMatchObject({
        level: 'warn',
        instances: ['gw-a'],
        differences: ['per-caller: key ip, rate 20/minute, burst 20, ip_prefix_v6 64 here; key ip, rate 10/minute, burst 10, ip_prefix_v6 64 on gw-a'],
      })
      expect(await mismatch(gwB.adminUrl)).toBe(1)
      await waitFor(() => linesOf(a, disagreeing).length > 0, 'gw-a to warn', 15_000)
      expect(linesOf(a, disagreeing)[0]).toMatchObject({ instances: ['gw-b'], differences: ['per-caller: key ip, rate 10/minute, burst 10, ip_prefix_v6 64 here; key ip, rate 20/minute, burst 20, ip_prefix_v6 64 on gw-b'] })
      expect(await mismatch(a.adminUrl)).toBe(1)

      // gw-b reloads the same limits as gw-a: it says so at once, gw-a at its next comparison.
      await writeFile(fileB, config('10/m'))
      gwB.child.kill('SIGHUP')
      await waitFor(() => linesOf(gwB, agreeing).length > 0, 'gw-b to agree after its reload')
      expect(await mismatch(gwB.adminUrl)).toBe(0)
      await waitFor(async () => (await mismatch(a.adminUrl)) === 0, 'gw-a to agree', 15_000)
      // gw-a's first worker says it; its line reaches the process's stdout after the metric can read 0.
      await waitFor(() => linesOf(a, agreeing).length > 0, 'gw-a to say they agree')
      expect(linesOf(a, agreeing)).toHaveLength(1)
      expect(linesOf(a, disagreeing)).toHaveLength(1)

      // gw-b at 20/m again, then stopped: gw-a forgets it at once (it took its limits back), not when they expire.
      await writeFile(fileB, config('20/m'))
      gwB.child.kill('SIGHUP')
      await waitFor(async () => (await mismatch(a.adminUrl)) === 1, 'gw-a to see gw-b differ again', 15_000)
      expect(await b.stop('SIGTERM')).toBe(0)
      b = undefined
      await waitFor(async () => (await mismatch(a.adminUrl)) === 0, 'gw-a to forget the stopped gw-b at its next comparison, before gw-b\'s limits would expire', 9_000)
      await waitFor(() => linesOf(a, agreeing).length > 1, 'gw-a to say they agree again')
      expect(linesOf(a, agreeing)).toHaveLength(2)
    } finally {
      await b?.stop('SIGKILL')
      await a.stop('SIGKILL')
      await rm(dir, { recursive: true, force: true })
    }
  }, 90_000)
})
