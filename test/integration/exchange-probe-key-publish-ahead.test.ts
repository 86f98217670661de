// Found by an adversarial probe (helper): a rotated token exchange key (`bouncer secrets rotate
// bouncer.exchange-key`, or signing.rotate_every) signed exchanged tokens as soon as a worker read
// it, while the other worker still published the keys before it and a verifier of those tokens
// (an API in token_exchange.audiences, verifying with the keys at jwks_uri as docs/ai-agents.md
// says it may) had fetched the JWKS moments before: jose's createRemoteJWKSet refuses an unknown
// kid for its cool-down (30 s by default). The assertion key was fixed for the same (a new key is
// published ahead of signing); the exchange key was not. Here jose's cool-down is 5 s and the
// publish-ahead 10 s (BOUNCER_EXCHANGE_PUBLISH_AHEAD_MS), so that the test waits seconds.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { ISSUER, tokenForm } from '../helpers/exchange.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

const REPORTS_API = 'https://reports.example'
const PUBLISH_AHEAD_MS = 10_000
const JOSE_COOLDOWN_MS = 5_000
const env = { BOUNCER_MASTER_KEY: randomBytes(32).toString('base64'), BOUNCER_EXCHANGE_PUBLISH_AHEAD_MS: String(PUBLISH_AHEAD_MS) }

let dir: string
let file: string
let idp: TestIdentityProvider
let gateway: ServeProcess
let user: string
let agent: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-exchange-key-rotation-'))
  idp = await startIdentityProvider({ tokenTtlSeconds: 3600 })
  ;({ gateway, file } = await serveWithWorkers(dir, () => ({
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: '500ms' },
    issuers: [{ name: 'corp-sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'reporter', assumed_by: [{ issuer: 'corp-sso', subject: 'looker-reports' }], policies: [] },
      { name: 'agent', assumed_by: [{ issuer: 'corp-sso', subject: 'analytics-agent' }], policies: [] },
    ],
    token_exchange: { issuer: ISSUER, audiences: [REPORTS_API], actors: [{ role: 'agent', delegated_roles: ['reporter'] }] },
  }), { env }))
  ;[user, agent] = await Promise.all([idp.token('looker-reports'), idp.token('analytics-agent')])
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

const kidsOf = (body: string) => (JSON.parse(body) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function exchanged(): Promise<string> {
  const res = await onNewConnection(`${gateway.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: tokenForm({ subject: user, actor: agent }),
  })
  expect(res.status, res.body).toBe(200)
  return (JSON.parse(res.body) as { access_token: string }).access_token
}

it('a rotated exchange key is published on every worker well before it signs, so a verifier caching the JWKS refuses none of its tokens', { timeout: 120_000 }, async () => {
  // The API's verifier: jose's, its cool-down shortened; it fetches the JWKS at its first token.
  const keys = createRemoteJWKSet(new URL(`${gateway.url}/oauth2/jwks`), { cooldownDuration: JOSE_COOLDOWN_MS })
  const verifies = async (token: string) => jwtVerify(token, keys, { issuer: ISSUER, audience: REPORTS_API, typ: 'at+jwt' }).then(() => true, () => false)
  const first = await exchanged()
  expect(await verifies(first)).toBe(true)
  const oldKid = decodeProtectedHeader(first).kid as string

  const refused: string[] = []
  const polls: Array<{ at: number; kids: string[] }> = []
  let firstNewTokenAt = Infinity
  let newKid: string | undefined
  let stop = false
  const traffic = (async () => {
    while (!stop) {
      const [token, jwks] = await Promise.all([exchanged(), onNewConnection(`${gateway.url}/oauth2/jwks`)])
      polls.push({ at: Date.now(), kids: kidsOf(jwks.body) })
      const kid = decodeProtectedHeader(token).kid as string
      if (kid !== oldKid && firstNewTokenAt === Infinity) {
        firstNewTokenAt = Date.now()
        newKid = kid
      }
      if (!(await verifies(token))) refused.push(kid)
      await sleep(50)
    }
  })()

  const rotatedAt = Date.now()
  expect((await runCliInProcess(['secrets', 'rotate', 'bouncer.exchange-key', '--config', file], { env })).code).toBe(0)
  const deadline = rotatedAt + PUBLISH_AHEAD_MS + 15_000
  while (firstNewTokenAt === Infinity && Date.now() < deadline) await sleep(200)
  await sleep(2_000) // and a while after the switch, on both workers
  stop = true
  await traffic

  expect(newKid, 'a token signed with the new key').toBeDefined()
  // Before: the first tokens with the new kid were refused for the verifier's cool-down.
  expect(refused).toEqual([])
  const lastWithout = Math.max(...polls.filter((p) => !p.kids.includes(newKid as string)).map((p) => p.at))
  expect(firstNewTokenAt - lastWithout).toBeGreaterThanOrEqual(JOSE_COOLDOWN_MS)
  expect(polls.filter((p) => p.at > lastWithout).every((p) => p.kids.includes(oldKid))).toBe(true) // the old key stays published
})
