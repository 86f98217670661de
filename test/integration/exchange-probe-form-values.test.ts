// Found by an adversarial probe (helper): a token request's parameter sent without a value was read
// as given. `subject_token=` (or `actor_token=`) was verified as `Authorization: Bearer ` and
// answered invalid_grant "The Authorization header is not "Bearer <token>"" (a header the client
// never sent), `grant_type=` unsupported_grant_type, `audience=` invalid_target for "". RFC 6749
// §3.1: "Parameters sent without a value MUST be treated as if they were omitted from the request."
// A token with white space in it got the same words about the header, and a gzip body was parsed
// as its compressed bytes: "grant_type is missing".
import { gzipSync } from 'node:zlib'
import { decodeJwt } from 'jose'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchange as exchangeAt, tokenForm } from '../helpers/exchange.ts'
import { AGENT_FOR_REPORTER, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

let setup: McpTestSetup
let user: string
let agent: string

beforeAll(async () => {
  setup = await startMcpTestGateway('exchange-probe-form-values', (config) => ({
    ...config,
    token_exchange: { ...AGENT_FOR_REPORTER, audiences: [AGENT_FOR_REPORTER.issuer, 'https://reports.bouncer.test'] },
  }))
  ;[user, agent] = await Promise.all([setup.idp.token('looker-reports'), setup.idp.token('analytics-agent')])
}, 90_000)

afterAll(() => setup?.close())

/** looker-reports' token exchanged, analytics-agent acting, with `params` sent as they are. */
const exchange = (params: Record<string, string>) => exchangeAt(setup.gateway.url, { subject: user, actor: agent, params })

it('takes a parameter sent without a value as omitted (RFC 6749 §3.1)', async () => {
  expect(await exchange({ subject_token: '' })).toMatchObject({ status: 400, body: { error: 'invalid_request', error_description: 'subject_token_type is given without subject_token.' } })
  expect(await exchange({ subject_token: '', subject_token_type: '' })).toMatchObject({ status: 400, body: { error: 'invalid_request', error_description: expect.stringMatching(/^subject_token is missing/) } })
  expect(await exchange({ actor_token: '', actor_token_type: '' })).toMatchObject({ status: 400, body: { error: 'invalid_request', error_description: expect.stringMatching(/^actor_token is missing/) } })
  expect(await exchange({ grant_type: '' })).toMatchObject({ status: 400, body: { error: 'invalid_request', error_description: 'grant_type is missing.' } })
  // The default audience, the first of token_exchange.audiences.
  const omitted = await exchange({ audience: '', expires_in: '' })
  expect(omitted.status, JSON.stringify(omitted.body)).toBe(200)
  expect(decodeJwt(omitted.body.access_token as string).aud).toBe(AGENT_FOR_REPORTER.issuer)
})

it('says a token with white space in it is no token, not that a header is malformed', async () => {
  const answer = await exchange({ actor_token: `${agent.slice(0, 20)} ${agent.slice(20)}` })
  expect(answer).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_description: 'actor_token holds white space: a token is one word (RFC 6750 section 2.1).' } })
})

it('says a content-encoded token request is not read, rather than that its parameters are missing', async () => {
  const form = tokenForm({ subject: user, actor: agent })
  const res = await request(`${setup.gateway.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' },
    body: gzipSync(form),
  })
  expect(res.statusCode).toBe(400)
  expect(res.headers['accept-encoding']).toBe('identity')
  expect(await res.body.json()).toMatchObject({ error: 'invalid_request', error_description: 'The token request\'s body is sent with Content-Encoding gzip: the token endpoint reads the form as it is; send it unencoded.' })
})
