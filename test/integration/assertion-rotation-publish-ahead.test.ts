// Found by a probe: `bouncer secrets rotate bouncer.assertion-key` under load (workers: 2) made an
// upstream verifying with jose's createRemoteJWKSet (defaults, as examples/assertion/verify-upstream.ts)
// refuse 11,975 of 21,897 requests for ~25 s: the gateway signed with the new key as soon as it loaded
// it, the verifier had fetched the JWKS 3 s before, and jose refetches for an unknown kid at most every
// 30 s. A new key is now published ahead of signing (BOUNCER_ASSERTION_PUBLISH_AHEAD_MS shortens the
// 90 s default, and the verifier's cool-down is jose's option set to 5 s, so that this test waits
// seconds, not a minute; publishing ahead stays 5 s longer than the cool-down, as 35 s and 30 s were).
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeProtectedHeader } from 'jose'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { assertionVerifier, type Caller } from '../../examples/assertion/verify-upstream.ts'
import { type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { allowAnyCaller } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

const PUBLISH_AHEAD_MS = 10_000
const JOSE_COOLDOWN_MS = 5_000
const env = { BOUNCER_MASTER_KEY: randomBytes(32).toString('base64'), BOUNCER_ASSERTION_PUBLISH_AHEAD_MS: String(PUBLISH_AHEAD_MS) }

let dir: string
let file: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: ServeProcess
let token: string
let verify: (assertion: string | undefined) => Promise<Caller>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-assertion-rotation-'))
  idp = await startIdentityProvider({ tokenTtlSeconds: 3600 })
  upstream = await startUpstream(async (req, res) => {
    try {
      await verify(req.headers['x-bouncer-assertion'] as string | undefined)
      res.writeHead(200).end()
    } catch (err) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end((err as Error).message)
    }
  })
  ;({ gateway, file } = await serveWithWorkers(dir, () => ({
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: '500ms' },
    issuers: [{ name: 'corp-sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp-sso']),
    upstreams: [{ name: 'sales-api', url: upstream.url, identity_assertion: true }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'sales-api' }],
  }), { env }))
  verify = assertionVerifier(gateway.url, 'sales-api', { cooldownMs: JOSE_COOLDOWN_MS }) // jose's createRemoteJWKSet, its cool-down shortened
  token = await idp.token('looker-reports')
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

const kidsOf = (body: string) => (JSON.parse(body) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

it('a rotated assertion key is published on every worker well before it signs, so a verifier caching the JWKS refuses nothing', { timeout: 120_000 }, async () => {
  const call = () => onNewConnection(`${gateway.url}/data/orders`, { headers: { authorization: `Bearer ${token}` } })
  expect((await call()).status).toBe(200) // the verifier has fetched the JWKS: the case the probe found
  const oldKid = decodeProtectedHeader(upstream.received.at(-1)?.headers['x-bouncer-assertion'] as string).kid as string

  const statuses: number[] = []
  const polls: Array<{ at: number; kids: string[] }> = []
  let firstNewAssertionAt = Infinity
  let newKid: string | undefined
  let stop = false
  const traffic = (async () => {
    while (!stop) {
      const [res, jwks] = await Promise.all([call(), onNewConnection(`${gateway.url}/.well-known/jwks.json`)])
      polls.push({ at: Date.now(), kids: kidsOf(jwks.body) })
      statuses.push(res.status)
      const kid = decodeProtectedHeader(upstream.received.at(-1)?.headers['x-bouncer-assertion'] as string).kid as string
      if (kid !== oldKid && firstNewAssertionAt === Infinity) {
        firstNewAssertionAt = Date.now()
        newKid = kid
      }
      await sleep(50)
    }
  })()

  const rotatedAt = Date.now()
  expect((await runCliInProcess(['secrets', 'rotate', 'bouncer.assertion-key', '--config', file], { env })).code).toBe(0)
  const deadline = rotatedAt + PUBLISH_AHEAD_MS + 15_000
  while (firstNewAssertionAt === Infinity && Date.now() < deadline) await sleep(200)
  await sleep(2_000) // and a while after the switch, on both workers
  stop = true
  await traffic

  expect(newKid, 'an assertion signed with the new key').toBeDefined()
  expect(statuses.filter((s) => s !== 200)).toEqual([])
  // Every JWKS (from either worker) listed the new key long enough before any assertion carried it
  // for a verifier that had just fetched the old set to be allowed to fetch again.
  const lastWithout = Math.max(...polls.filter((p) => !p.kids.includes(newKid as string)).map((p) => p.at))
  expect(firstNewAssertionAt - lastWithout).toBeGreaterThanOrEqual(JOSE_COOLDOWN_MS)
  expect(polls.filter((p) => p.at > lastWithout).every((p) => p.kids.includes(oldKid))).toBe(true) // the old key stays published
})
