// A key's lookup that overlaps its revocation through the admin API (PostgreSQL store). The lookup
// read the record before the revocation committed and got its answer after the gateway had
// forgotten the key: it put the unrevoked record back in the cache, and the key was let through for
// up to api_keys.cache after DELETE /api/keys/{id} had answered — where README says the gateway that
// revoked refuses the key at once. With server.workers, the same on the worker that did not answer
// the admin request. Requests sent after the revocation also joined the lookup in flight (one read
// per id) and got its stale answer.
//
// Deterministic order: the gateway reaches PostgreSQL through a relay on loopback that holds
// PostgreSQL's answers to the key's lookup (the SELECT by id) once the server has sent them, so the
// record has been read before the revocation, and reaches the gateway only after it.
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

const ADMIN = 'api-keys-race-admin-token-0123456789'
/** The lookup's statement (postgres-store.ts), as its Parse message carries it. */
const LOOKUP = /SELECT id, principal[^\0]* WHERE id = \$1/

interface LookupRelay {
  port: number
  /** Holds PostgreSQL's answers to the next `count` lookups (each on its connection) until release(); 0: holds no more. */
  hold(count: number): void
  /** Lookups PostgreSQL has answered and the relay holds. */
  held(): number
  /** Passes the held answers on, in order. */
  release(): void
  close(): Promise<void>
}

/** A relay to the shared PostgreSQL server that can hold the answers to the key store's lookups. */
async function startLookupRelay(): Promise<LookupRelay> {
  let toHold = 0
  const holding = new Set<{ client: Socket; queue: Buffer[]; answered: boolean }>()
  const sockets = new Set<Socket>()
  const relay: Server = createServer((client) => {
    const server = connect(5432, '127.0.0.1')
    let held: { client: Socket; queue: Buffer[]; answered: boolean } | null = null
    for (const socket of [client, server]) {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => sockets.delete(socket))
    }
    client.on('close', () => server.destroy())
    server.on('close', () => client.destroy())
    client.on('data', (chunk: Buffer) => {
      if (toHold > 0 && (held === null || !holding.has(held)) && LOOKUP.test(chunk.toString('latin1'))) {
        toHold--
        held = { client, queue: [], answered: false }
        holding.add(held)
      }
      server.write(chunk)
    })
    server.on('data', (chunk: Buffer) => {
      if (held === null || !holding.has(held)) return void client.write(chunk)
      held.queue.push(chunk)
      held.answered = true
    })
  })
  relay.listen(0, '127.0.0.1')
  await once(relay, 'listening')
  return {
    port: (relay.address() as AddressInfo).port,
    hold: (count) => void (toHold = count),
    held: () => [...holding].filter((h) => h.answered).length,
    release() {
      for (const h of holding) for (const chunk of h.queue) h.client.write(chunk)
      holding.clear()
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      relay.close()
      await once(relay, 'close')
    },
  }
}

let dir: string
let upstream: TestUpstream
let relay: LookupRelay

function config(url: string, schema: string): Record<string, unknown> {
  return {
    // The longest cache: a record cached by the raced lookup lets the key through for a second.
    api_keys: { store: { type: 'postgres', url, schema }, cache: '1s' },
    roles: [{ name: 'bi', assumed_by: [{ issuer: 'api-keys' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data', upstream: 'api', accept: ['api_key'] }],
  }
}

/** A key made with `bouncer keys create` in the schema (directly, not through the relay). */
async function createKey(schema: string): Promise<{ key: string; id: string }> {
  const file = join(dir, `${schema}-cli.yaml`)
  await writeFile(file, stringify(config(SHARED_POSTGRES, schema)))
  const created = await runCliInProcess(['keys', 'create', '--config', file, '--principal', 'looker-studio'])
  expect(created.code, created.stderr).toBe(0)
  const key = created.stdout.trim()
  return { key, id: key.slice(3, 19) }
}

async function revoke(adminUrl: string, id: string): Promise<void> {
  const res = await request(`${adminUrl}/api/keys/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } })
  expect(res.statusCode, await res.body.text()).toBe(200)
}

/** One request on `client` (a kept-alive connection stays with one worker): `200`, or the status and the code. */
async function send(client: Client, key: string): Promise<string> {
  const res = await client.request({ method: 'GET', path: '/data', headers: { 'x-api-key': key } })
  const body = await res.body.text()
  return `${res.statusCode} ${res.statusCode === 200 ? '' : (JSON.parse(body) as { code: string }).code}`.trim()
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-api-keys-race-'))
  upstream = await startUpstream()
  relay = await startLookupRelay()
})

afterAll(async () => {
  await relay?.close()
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('one gateway', () => {
  const schema = uniqueSchema('keys_race')
  let gateway: TestGateway

  beforeAll(async () => {
    gateway = await startTestGateway({ ...config(`postgres://postgres@127.0.0.1:${relay.port}/test`, schema), admin: { token: ADMIN } })
  })

  afterAll(async () => {
    await gateway?.close()
    await dropSchema(SHARED_POSTGRES, schema)
  })

  it('a lookup that read the record before DELETE /api/keys/{id} and ended after it does not let the key through, then or later', async () => {
    const { key, id } = await createKey(schema)
    const client = new Client(gateway.url, { pipelining: 1 })
    const late = new Client(gateway.url, { pipelining: 1 })
    try {
      relay.hold(1)
      const raced = send(client, key)
      await waitFor(() => relay.held() === 1, 'PostgreSQL to answer the lookup')
      await revoke(gateway.adminUrl, id)
      // Sent once the revocation has answered, while the lookup that read the record before it is held.
      const after = send(late, key)
      relay.release()
      expect(await raced).toBe('401 api_key_revoked')
      expect(await after).toBe('401 api_key_revoked')
      // Within api_keys.cache of the raced lookup: nothing it read was kept.
      expect(await send(client, key)).toBe('401 api_key_revoked')
      expect(await send(late, key)).toBe('401 api_key_revoked')
    } finally {
      relay.hold(0)
      relay.release()
      await Promise.all([client.close(), late.close()])
    }
  }, 30_000)

  it('a lookup whose every read (three) a revocation overlapped is refused with 503, never answered from one of them', async () => {
    const { key, id } = await createKey(schema)
    const client = new Client(gateway.url, { pipelining: 1 })
    try {
      relay.hold(1)
      const raced = send(client, key)
      for (let read = 1; read <= 3; read++) {
        await waitFor(() => relay.held() === 1, `PostgreSQL to answer read ${read}`)
        await revoke(gateway.adminUrl, id) // the second and third time: already revoked, forgotten again
        relay.hold(read < 3 ? 1 : 0) // the read that follows
        relay.release()
      }
      expect(await raced).toBe('503 identity_provider_unavailable')
      // The next lookup reads once, undisturbed.
      expect(await send(client, key)).toBe('401 api_key_revoked')
    } finally {
      relay.hold(0)
      relay.release()
      await client.close()
    }
  }, 30_000)
})

describe('server.workers: 2', () => {
  const schema = uniqueSchema('keys_race_workers')
  let gateway: ServeProcess

  beforeAll(async () => {
    ;({ gateway } = await serveWithWorkers(dir, () => ({
      ...config(`postgres://postgres@127.0.0.1:${relay.port}/test`, schema),
      admin: { listen: '127.0.0.1:0', token: ADMIN },
    })))
  }, 120_000)

  afterAll(async () => {
    await gateway?.stop('SIGKILL')
    await dropSchema(SHARED_POSTGRES, schema)
  })

  it('lookups in flight on both workers during DELETE /api/keys/{id} let the key through on neither, then or later', async () => {
    const { key, id } = await createKey(schema)
    // A worker reads a key once however many of its requests wait (one read per id): two held
    // lookups are one on each worker. Twelve kept-alive connections, which the kernel spreads over
    // both workers (a connection stays with the worker that accepted it): all twelve on one worker
    // would be one time in two thousand.
    relay.hold(2)
    const clients = Array.from({ length: 12 }, () => new Client(gateway.url, { pipelining: 1 }))
    try {
      const raced = clients.map((client) => send(client, key))
      await waitFor(() => relay.held() === 2, 'PostgreSQL to answer a lookup on each worker')
      await revoke(gateway.adminUrl, id)
      relay.release()
      expect(await Promise.all(raced)).toEqual(Array(clients.length).fill('401 api_key_revoked'))
      // Within api_keys.cache of the raced lookups, on every connection (both workers).
      expect(await Promise.all(clients.map((client) => send(client, key)))).toEqual(Array(clients.length).fill('401 api_key_revoked'))
    } finally {
      relay.hold(0)
      relay.release()
      await Promise.all(clients.map((client) => client.close()))
    }
  }, 60_000)
})
