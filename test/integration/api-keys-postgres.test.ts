// API keys in PostgreSQL, for several instances: two gateways (one in this process, one a
// `bouncer serve` process) read one schema; a key made and revoked with `bouncer keys` is seen by
// both, within api_keys.cache. While the database is away, keys are refused with 503 once their
// cached records are older than the cache: never let through on a record that may be revoked.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { dropSchema, SHARED_POSTGRES, startPostgres, uniqueSchema, type PrivatePostgres } from '../helpers/postgres.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const schema = uniqueSchema('api_keys')
const ADMIN = 'api-keys-pg-test-admin-token-012345'
let dir: string
let upstream: TestUpstream

function config(url: string, keysSchema: string, cache = '1s'): Record<string, unknown> {
  return {
    admin: { token: ADMIN },
    api_keys: { store: { type: 'postgres', url, schema: keysSchema }, cache },
    roles: [{ name: 'bi', assumed_by: [{ issuer: 'api-keys', subject: 'bi-*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['api_key'] }],
  }
}

async function status(base: string, key: string): Promise<{ status: number; code: unknown }> {
  const res = await request(`${base}/data/x`, { headers: { 'x-api-key': key } })
  const body = await res.body.text()
  return { status: res.statusCode, code: body.startsWith('{') ? (JSON.parse(body) as { code?: unknown }).code : undefined }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-api-keys-pg-'))
  upstream = await startUpstream()
})

afterAll(async () => {
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('two gateways sharing a PostgreSQL store', () => {
  let first: TestGateway
  let second: ServeProcess
  let file: string

  beforeAll(async () => {
    file = join(dir, 'bouncer.yaml')
    await writeFile(file, stringify({ ...config(SHARED_POSTGRES, schema), server: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0', token: ADMIN }, audit: { sinks: [], spill_dir: join(dir, 'spill') } }))
    first = await startTestGateway(config(SHARED_POSTGRES, schema))
    second = await startServe(['--config', file])
  })

  afterAll(async () => {
    await first?.close()
    await second?.stop()
    await dropSchema(SHARED_POSTGRES, schema)
  })

  it('a key made with bouncer keys works on both; revoked, both refuse it once the cache time has passed', async () => {
    const created = await runCliInProcess(['keys', 'create', '--config', file, '--principal', 'bi-sheets'])
    expect(created.code, created.stderr).toBe(0)
    const key = created.stdout.trim()
    const id = key.slice(3, 19)
    for (const base of [first.url, second.url]) expect(await status(base, key)).toEqual({ status: 200, code: undefined })

    // Only the hash is in the database.
    const client = new pg.Client({ connectionString: SHARED_POSTGRES })
    await client.connect()
    const { rows } = await client.query(`SELECT * FROM ${schema}.api_keys WHERE id = $1`, [id])
    await client.end()
    expect(rows).toHaveLength(1)
    expect(JSON.stringify(rows)).not.toContain(key.slice(20))
    expect(rows[0]).toMatchObject({ principal: 'bi-sheets', revoked_at: null })

    // Revoked through the first gateway's admin API while the second holds the key in its cache:
    // the first refuses it at once, the second once its cached record is older than the cache.
    expect(await status(second.url, key)).toEqual({ status: 200, code: undefined })
    const revoked = await request(`${first.adminUrl}/api/keys/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } })
    const revokedAt = Date.now()
    expect(revoked.statusCode).toBe(200)
    await revoked.body.dump()
    expect(await status(first.url, key)).toEqual({ status: 401, code: 'api_key_revoked' })
    await waitFor(async () => (await status(second.url, key)).status === 401, 'the revocation on the second gateway')
    console.log(`revocation seen by the second gateway after ${Date.now() - revokedAt} ms (cache 1000 ms)`)
    await new Promise((r) => setTimeout(r, Math.max(0, revokedAt + 1_000 - Date.now())))
    for (const base of [first.url, second.url]) expect(await status(base, key)).toEqual({ status: 401, code: 'api_key_revoked' })
  })

  it('keys list reads the same store', async () => {
    const listed = await runCliInProcess(['keys', 'list', '--config', file, '--json'])
    expect(listed.code).toBe(0)
    expect(listed.stdout).toContain('"principal":"bi-sheets","description":null,"status":"revoked"')
  })
})

describe('a PostgreSQL store that goes away', () => {
  let postgres: PrivatePostgres
  let gateway: TestGateway

  beforeAll(async () => {
    postgres = await startPostgres()
    gateway = await startTestGateway(config(postgres.url, 'keys', '500ms'))
  })

  afterAll(async () => {
    await gateway?.close()
    await postgres?.destroy()
  })

  it('refuses keys with 503 once their cached records are older than the cache, and serves them again when it is back', async () => {
    const file = join(dir, 'private.yaml')
    await writeFile(file, stringify(config(postgres.url, 'keys', '500ms')))
    const created = await runCliInProcess(['keys', 'create', '--config', file, '--principal', 'bi-excel'])
    expect(created.code, created.stderr).toBe(0)
    const key = created.stdout.trim()
    expect((await status(gateway.url, key)).status).toBe(200)

    await postgres.stop()
    const stoppedAt = Date.now()
    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + 500 - Date.now())))
    const res = await request(`${gateway.url}/data/x`, { headers: { 'x-api-key': key } })
    expect(res.statusCode).toBe(503)
    expect(res.headers['retry-after']).toBe('1')
    expect(await res.body.json()).toMatchObject({ code: 'identity_provider_unavailable', detail: 'The API key store cannot be read: API keys cannot be checked right now.' })

    await postgres.start()
    await waitFor(async () => (await status(gateway.url, key)).status === 200, 'the store to be back', 20_000)
  })
})
