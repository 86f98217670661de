// X-Bouncer-Assertion end to end: a real upstream verifies it with jose against the gateway's
// published keys (examples/assertion/verify-upstream.ts), across key rotations, and nothing a
// client sends can pass for one.
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeProtectedHeader } from 'jose'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertionVerifier, type Caller } from '../../examples/assertion/verify-upstream.ts'
import { newSigningKey } from '../../src/secrets/index.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gw: TestGateway
let token: string
/** Set once the gateway listens: the upstream verifies against its JWKS. */
let verify: (assertion: string | undefined) => Promise<Caller>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-assertion-'))
  idp = await startIdentityProvider()
  upstream = await startUpstream(async (req, res) => {
    const assertion = req.headers['x-bouncer-assertion'] as string | undefined
    try {
      const caller = await verify(assertion)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ caller, kid: decodeProtectedHeader(assertion as string).kid }))
    } catch (err) {
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: (err as Error).message, present: assertion !== undefined }))
    }
  })
  gw = await startTestGateway({
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: '200ms' },
    assertion: { issuer: 'bouncer-test', ttl: '5s', rotate_every: '1s' },
    issuers: [{ name: 'corp-sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp-sso']),
    upstreams: [{ name: 'sales-api', url: upstream.url, identity_assertion: true }],
    routes: [
      { id: 'data', path: '/data/*', upstream: 'sales-api' },
      { id: 'public', path: '/public/*', upstream: 'sales-api', public: true },
    ],
  }, { env: { BOUNCER_MASTER_KEY: randomBytes(32).toString('base64') } })
  verify = assertionVerifier(gw.url, 'sales-api', { issuer: 'bouncer-test', cooldownMs: 0 })
  token = await idp.token('looker-reports')
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

async function call(path: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } })
  return { status: res.statusCode, body: (await res.body.json()) as { caller?: Caller; kid?: string; error?: string; present?: boolean } }
}

async function publishedKids(): Promise<string[]> {
  const res = await request(`${gw.url}/.well-known/jwks.json`)
  const jwks = (await res.body.json()) as { keys: Array<{ kid: string; kty: string; alg: string; d?: string }> }
  for (const key of jwks.keys) {
    expect(key).toMatchObject({ kty: 'EC', alg: 'ES256' })
    expect(key.d).toBeUndefined() // never the private part
  }
  return jwks.keys.map((k) => k.kid)
}

describe('X-Bouncer-Assertion', () => {
  it('tells the upstream who is calling, and the upstream can prove it with the published keys', async () => {
    const { status, body } = await call('/data/orders')
    expect(status).toBe(200)
    expect(body.caller).toMatchObject({ iss: 'bouncer-test', aud: 'sales-api', sub: 'looker-reports', roles: ['any-caller'], idp: idp.issuer })
    const caller = body.caller as Caller
    expect((caller.exp as number) - (caller.iat as number)).toBeLessThanOrEqual(300)
    expect(await publishedKids()).toContain(body.kid)
  })

  it('is served with cache headers, without a token, even where no route matches', async () => {
    const res = await request(`${gw.url}/.well-known/jwks.json`)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('application/jwk-set+json')
    expect(res.headers['cache-control']).toBe('max-age=60')
    await res.body.dump()
  })

  it('is not sent on a public route, and a client cannot forge one', async () => {
    const forged = await call('/public/x', { 'x-bouncer-assertion': 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.' })
    expect(forged.status).toBe(401) // the upstream's own refusal: the gateway stripped the forged header
    expect(forged.body.present).toBe(false)
    const seen = upstream.received.at(-1)
    expect(seen?.headers['x-bouncer-assertion']).toBeUndefined()
  })

  it('keeps verifying across key rotations: new assertions use the new key, old keys stay published until what they signed expired', { timeout: 20_000 }, async () => {
    const before = await call('/data/orders')
    const firstAssertion = upstream.received.at(-1)?.headers['x-bouncer-assertion'] as string
    const firstKid = before.body.kid as string
    const firstExpiry = (before.body.caller?.exp as number) * 1000

    await waitFor(async () => (await publishedKids())[0] !== firstKid, 'the assertion key to rotate', 10_000)
    const after = await call('/data/orders')
    expect(after.status).toBe(200)
    expect(after.body.kid).not.toBe(firstKid)
    // The assertion signed before the rotation still verifies, for a verifier that never saw the old key too.
    const fresh = assertionVerifier(gw.url, 'sales-api', { issuer: 'bouncer-test', cooldownMs: 0 })
    await expect(fresh(firstAssertion)).resolves.toMatchObject({ sub: 'looker-reports' })

    // Rotations every second with a 5s ttl: the first key outlives the next rotation, and is
    // withdrawn only once everything it signed has expired.
    const secondKid = after.body.kid as string
    await waitFor(async () => !(await publishedKids()).slice(0, 2).includes(secondKid), 'two more rotations', 10_000)
    if (Date.now() < firstExpiry - 200) expect(await publishedKids()).toContain(firstKid)
    await waitFor(async () => !(await publishedKids()).includes(firstKid), 'the first key to be withdrawn', 10_000)
    expect(Date.now()).toBeGreaterThanOrEqual(firstExpiry)
    expect((await call('/data/orders')).status).toBe(200)
  })

  it('is refused by the upstream for another audience', async () => {
    await call('/data/orders')
    const assertion = upstream.received.at(-1)?.headers['x-bouncer-assertion'] as string
    const otherUpstream = assertionVerifier(gw.url, 'billing-api', { issuer: 'bouncer-test' })
    await expect(otherUpstream(assertion)).rejects.toThrow(/aud/)
  })
})

describe('several gateways behind one load balancer', () => {
  it('sign with the key they share through a read-only store, so either one’s JWKS verifies what the other signed', async () => {
    const keys = join(dir, 'shared-keys')
    await mkdir(keys)
    await writeFile(join(keys, 'bouncer.assertion-key'), newSigningKey())
    const config = {
      secrets: { store: { type: 'file', dir: keys } },
      assertion: { issuer: 'bouncer-test' },
      issuers: [{ name: 'corp-sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
      ...allowAnyCaller(['corp-sso']),
      upstreams: [{ name: 'sales-api', url: upstream.url, identity_assertion: true }],
      routes: [{ id: 'data', path: '/data/*', upstream: 'sales-api' }],
    }
    const a = await startTestGateway(config)
    const b = await startTestGateway(config)
    try {
      const jwksOf = async (url: string) => ((await (await request(`${url}/.well-known/jwks.json`)).body.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)
      expect(await jwksOf(a.url)).toEqual(await jwksOf(b.url))
      await (await request(`${a.url}/data/x`, { headers: { authorization: `Bearer ${token}` } })).body.dump()
      const fromA = upstream.received.at(-1)?.headers['x-bouncer-assertion'] as string
      await expect(assertionVerifier(b.url, 'sales-api', { issuer: 'bouncer-test' })(fromA)).resolves.toMatchObject({ sub: 'looker-reports' })
      expect(a.logs.join('')).not.toContain('kept in memory only')
    } finally {
      await a.close()
      await b.close()
    }
  })
})

describe('a reload while the shared key file is empty (caught mid-rewrite)', () => {
  it('is refused naming the key, and the running config keeps signing with its key', async () => {
    const keys = join(dir, 'rewritten-keys')
    await mkdir(keys)
    const file = join(keys, 'bouncer.assertion-key')
    await writeFile(file, newSigningKey())
    const config = {
      secrets: { store: { type: 'file', dir: keys } },
      assertion: { issuer: 'bouncer-test' },
      issuers: [{ name: 'corp-sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
      ...allowAnyCaller(['corp-sso']),
      upstreams: [{ name: 'sales-api', url: upstream.url, identity_assertion: true }],
      routes: [{ id: 'data', path: '/data/*', upstream: 'sales-api' }],
    }
    const g = await startTestGateway(config)
    try {
      const kids = async () => ((await (await request(`${g.url}/.well-known/jwks.json`)).body.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)
      const before = await kids()
      await writeFile(file, '')
      // Before: the SecretsError escaped prepare as an internal error, not a refused reload.
      const reloaded = await g.reload()
      expect(reloaded).toMatchObject({ ok: false })
      expect(JSON.stringify(reloaded)).toContain('bouncer.assertion-key')
      expect(await kids()).toEqual(before)
      await (await request(`${g.url}/data/x`, { headers: { authorization: `Bearer ${token}` } })).body.dump()
      const sent = upstream.received.at(-1)?.headers['x-bouncer-assertion'] as string
      const kid = (JSON.parse(Buffer.from(sent.split('.')[0] as string, 'base64url').toString()) as { kid: string }).kid
      expect(before).toContain(kid)
    } finally {
      await g.close()
    }
  })
})
