// server.workers and a key the provider withdrew: each worker fetches its issuers' keys on its own
// schedule, so once one worker's fetch (here a new token's unknown kid) found the old key gone, the
// other went on honouring tokens signed with it, from its token cache and its own key set, up to
// jwks_refresh_interval (an hour here): about half the requests with a withdrawn key's token were
// let in. Now the finder tells every worker through counters the primary shares (as API key
// revocations are shared); each drops its cached verifications and fetches the keys again before
// it verifies its next token.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { AUDIENCE, signingKey, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-idn3-key-withdrawn-'))
  idp = await startIdentityProvider({ keys: [await signingKey('idn3-ec-1', 'ES256')], tokenTtlSeconds: 3600 })
  upstream = await startUpstream()
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    // No cool-down: an unknown kid fetches at once. An hour between scheduled refreshes: only a token's fetch learns of the rotation.
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], jwks_cooldown: '0s', jwks_refresh_interval: '1h' }],
    roles: [{ name: 'everyone', assumed_by: [{ issuer: 'corp' }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'api', path: '/*', upstream: 'api' }],
  })))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

async function answers(token: string, count: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < count; i++) {
    const res = await onNewConnection(`${gateway.url}/x`, { headers: { authorization: `Bearer ${token}` } })
    out.push(res.status === 200 ? '200' : `${res.status} ${(JSON.parse(res.body) as { code: string }).code}`)
  }
  return out
}

describe('server.workers: a key withdrawn from the issuer\'s set', () => {
  it('is refused by every worker once one worker has found it gone', async () => {
    const old = await idp.token('looker-reports')
    // Every worker has loaded the keys (each fetches its own) and verified the token.
    await waitFor(async () => (await answers(old, 6)).every((a) => a === '200'), 'every worker taking the token')

    await idp.restart([await signingKey('idn3-ec-2', 'ES256')]) // idn3-ec-1 withdrawn, idn3-ec-2 published
    const fresh = await idp.token('looker-reports')
    // Its unknown kid has the worker it reaches fetch the new set, which finds idn3-ec-1 gone.
    expect(await answers(fresh, 1)).toEqual(['200'])
    await waitFor(() => gateway.stderr().includes('keys the provider no longer publishes'), 'a worker finding the key withdrawn')

    expect(await answers(old, 12)).toEqual(Array(12).fill('401 key_not_found'))
    expect(await answers(fresh, 6)).toEqual(Array(6).fill('200'))
  })
})
