// Found by an adversarial probe (helper): with server.workers: 2 and the Redis session store, each
// worker kept the key that seals sign-in state cookies for 60 s after reading it. Once Redis lost it
// (a restart without persistence, FLUSHALL, an eviction), the next worker to read made a new one
// while the other still sealed and opened with the old: a sign-in begun on one worker and called
// back on the other was refused (400 "state does not match"), 3 of 8 sign-ins in the minute after.
// The key is read from the store at each sign-in's start and callback now (identity/sessions/sign-in.ts).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { Agent, setGlobalDispatcher } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import type { Person, TestIdentityProvider } from '../helpers/identity-provider.ts'
import { uniquePrefix } from '../helpers/redis.ts'
import { signInConfig, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

const ALICE: Person = { username: 'alice', password: 'alice-password-123', name: 'Alice', email: 'alice@example.com', groups: ['staff'] }
const PREFIX = uniquePrefix('workers-sign-in-key')

let dir: string
let upstream: TestUpstream
let idp: TestIdentityProvider
let gateway: ServeProcess
let redis: Redis

beforeAll(async () => {
  // Every request of the cookie jar on a connection of its own: a sign-in's steps land on either worker.
  setGlobalDispatcher(new Agent({ pipelining: 0 }))
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-sign-in-key-'))
  redis = new Redis('redis://127.0.0.1:6379')
  upstream = await startUpstream()
  ;({ gateway } = await serveWithWorkers(dir, async (port) => {
    idp = await startSignInProvider(port, { people: [ALICE] })
    return {
      ...signInConfig(idp, { scopes: ['openid', 'groups'], session: { store: { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: PREFIX } } }),
      roles: [{ name: 'staff', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['all'] }],
      policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['GET'], routes: ['app'] }] }],
      upstreams: [{ name: 'app', url: upstream.url }],
      routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
    }
  }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await idp?.stop()
  const keys = await redis.keys(`${PREFIX}*`)
  if (keys.length > 0) await redis.del(...keys)
  redis.disconnect()
  await rm(dir, { recursive: true, force: true })
})

/** A page load without a session: the worker it meets begins a sign-in (and reads the key). */
const beginSignIn = async () => (await onNewConnection(`${gateway.url}/app/home`, { headers: { accept: 'text/html' } })).status

it('sign-ins begun on one worker and called back on the other complete after the store lost its key', async () => {
  expect(await beginSignIn()).toBe(302)
  // Redis loses the key (restarted without persistence): the worker that reads it next makes another.
  await redis.del(`${PREFIX}k:sign-in`)
  expect(await Promise.all(Array.from({ length: 12 }, beginSignIn))).toEqual(Array(12).fill(302))

  const outcomes: string[] = []
  for (let round = 0; round < 8; round++) {
    const client = cookieJar()
    const toLogin = await client.follow(`${gateway.url}/app/home`)
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    const back = await client.follow(loggedIn.location!)
    outcomes.push(`${back.reply?.status} ${back.reply?.status === 200 ? '' : back.reply?.body}`)
  }
  expect(outcomes).toEqual(Array(8).fill('200 '))
}, 60_000)
