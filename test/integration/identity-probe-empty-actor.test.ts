// Found by the identity probe: a token's own empty sub names no principal (567c95f), but an act
// claim with an empty or blank sub (RFC 8693 §4.1: act names its actor by sub) was taken as an agent
// named "": decided by the trust rules that match any subject, counted under one shared actor key,
// audited as acting agent "". Such an act names nobody, and is refused as an act without sub is.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startAnyCallerGateway, type AnyCallerSetup, type TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'

let setup: AnyCallerSetup
let idp: TestIdentityProvider
let gateway: TestGateway

beforeAll(async () => {
  setup = await startAnyCallerGateway()
  ;({ idp, gateway } = setup)
})

afterAll(() => setup?.close())

async function call(token: string): Promise<{ status: number; code?: string; detail?: string }> {
  const res = await request(`${gateway.url}/data/x`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  if (res.statusCode === 200) return { status: 200 }
  const body = JSON.parse(text) as { code: string; detail: string }
  return { status: res.statusCode, code: body.code, detail: body.detail }
}

it('refuses a token whose act names an empty or blank sub, as one whose act has no sub', async () => {
  for (const sub of ['', '   ']) {
    expect(await call(await idp.mint({ sub: 'alice', act: { sub } })), JSON.stringify(sub)).toEqual({
      status: 401,
      code: 'malformed_token',
      detail: 'The token\'s act claim names no actor (RFC 8693 §4.1: an object with sub).',
    })
  }
  expect(await call(await idp.mint({ sub: 'alice', act: { sub: 'report-agent' } }))).toEqual({ status: 200 })
})
