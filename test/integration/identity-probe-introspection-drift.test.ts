// Found by the identity probe: SPEC says an issuer_unknown whose iss differs from a configured issuer
// only by a trailing slash, the scheme or letter case says so in its detail and the audit record
// ("issuer drift"). A JWT's does; an introspection answer naming the issuer with a trailing slash the
// config lacks (a provider and a config that disagree, every opaque token refused) said only
// "names iss https://legacy.test/, not …", never that it was drift nor what to fix.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { answerJson, startIntrospectionEndpoint, type TestIntrospectionEndpoint } from '../helpers/introspection-endpoint.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const LEGACY = 'https://legacy.test'
const AUD = 'api://legacy'

let dir: string
let db: string
let endpoint: TestIntrospectionEndpoint
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'identity-probe-introspection-drift-'))
  db = join(dir, 'audit.db')
  endpoint = await startIntrospectionEndpoint()
  upstream = await startUpstream()
  gw = await startTestGateway({
    issuers: [{ name: 'legacy', issuer: LEGACY, audiences: [AUD], introspection: { url: endpoint.url, client_id: 'bouncer', client_secret: 'bouncer-secret' } }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'legacy' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  })
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await endpoint?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('an introspection answer whose iss has a trailing slash the config lacks is refused naming the drift, in the answer and the audit record', async () => {
  endpoint.answers.set('opaque-drift', answerJson({ active: true, iss: `${LEGACY}/`, sub: 'alice', aud: AUD }))
  const res = await request(`${gw.url}/reports/daily`, { headers: { authorization: 'Bearer opaque-drift', 'x-request-id': 'introspection-drift' } })
  const body = (await res.body.json()) as { code: string; detail: string }
  expect({ status: res.statusCode, code: body.code }).toEqual({ status: 401, code: 'issuer_unknown' })
  expect(body.detail).toBe(`The token's iss "${LEGACY}/" differs from the configured issuer "${LEGACY}" only by a trailing slash (issuer drift): fix the issuer in the config or at the identity provider.`)
  let detail: string | null | undefined
  await waitFor(async () => (detail = (await searchAudit({ type: 'sqlite', path: db }, { limit: 20 }).catch(() => [])).find((r) => r.request_id === 'introspection-drift')?.detail) !== undefined, 'the audit record')
  expect(detail).toContain('only by a trailing slash (issuer drift)')
})

it('an answer naming another issuer altogether is refused as before', async () => {
  endpoint.answers.set('opaque-other', answerJson({ active: true, iss: 'https://other.test', sub: 'alice', aud: AUD }))
  const res = await request(`${gw.url}/reports/daily`, { headers: { authorization: 'Bearer opaque-other' } })
  expect(await res.body.json()).toMatchObject({ code: 'issuer_unknown', detail: `The introspection answer names iss https://other.test, not issuer "legacy"'s ${LEGACY}.` })
})
