// bouncer explain, for a deny that applies because the token withholds the claim it conditions on
// (`_claim_names`: Entra ID's groups past 200, pointed to instead of carried), showed the deny as
// matching with no word why, though the claim is absent: the reader took it for a bug. The
// statement's free-text `why` now says the claim is withheld and a deny holds on it (fails closed).
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: 'https://corp.example', jwks_uri: 'http://127.0.0.1:9/jwks', audiences: ['api'] }],
    roles: [{ name: 'staff', assumed_by: [{ issuer: 'corp' }], policies: ['staff'] }],
    policies: [{
      name: 'staff',
      statements: [
        { sid: 'StaffRead', effect: 'allow', actions: ['GET'], routes: ['payroll'] },
        { sid: 'NoContractors', effect: 'deny', actions: ['*'], routes: ['payroll'], conditions: { claims: { groups: 'contractors' } } },
      ],
    }],
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'payroll', methods: ['GET'], path: '/payroll', upstream: 'api' }],
  })
})

afterAll(async () => {
  await gw?.close()
})

const base = { iss: 'https://corp.example', aud: 'api', sub: 'user-1' }
const overage = { ...base, _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://graph.microsoft.com/v1.0/users/x/getMemberObjects' } } }
const explain = (claims: object, json = false) => runCliInProcess(['explain', '--config', gw.file, '--method', 'GET', '--path', '/payroll', '--claims', JSON.stringify(claims), ...(json ? ['--json'] : [])])

it('says why a deny on a withheld claim matches, in the statement\'s why (JSON) and its line (text)', async () => {
  const json = await explain(overage, true)
  expect(json.code).toBe(1)
  const statements = (JSON.parse(json.stdout) as { statements: Array<{ sid: string; matched: boolean; why: string | null }> }).statements
  expect(statements.find((s) => s.sid === 'NoContractors')).toEqual(expect.objectContaining({
    matched: true,
    why: 'claim groups is withheld by the token (_claim_names points to another source): a deny\'s condition on it holds, failing closed',
  }))
  const text = await explain(overage)
  expect(text.stdout).toMatch(/\+ deny +NoContractors .*: matches \(claim groups is withheld by the token/)
})

it('a deny that matches on claims carried, and an allow, still say only that they match', async () => {
  const json = await explain({ ...base, groups: ['contractors'] }, true)
  const statements = (JSON.parse(json.stdout) as { statements: Array<{ sid: string; matched: boolean; why: string | null }> }).statements
  expect(statements.map((s) => [s.sid, s.matched, s.why])).toEqual([['StaffRead', true, null], ['NoContractors', true, null]])
})
