// Found by an operations probe: `bouncer explain --ip 10.1.2.3.` (or any text that is no address)
// was explained as if it were one: no source_ip condition matched it, and the answer was a
// policy's denial ("No statement allows GET…"), exit 1, which sent the operator to the policies;
// POST /api/explain did the same with "ip". And --claims that were not JSON, a malformed argument,
// exited 1 (a finding), not 2 (README: a usage error, before any config is read).
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type CliResult } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'

const ADMIN = 'explain-bad-arguments-admin-token-0123'
// The gateway in-process: what is tested here is `bouncer explain` and the admin API, not `serve`,
// whose process cost ~1-2 s of CPU to start (the test process has the gateway's modules loaded).
let gateway: TestGateway
let file: string

beforeAll(async () => {
  gateway = await startTestGateway({
    admin: { token: ADMIN },
    audit: { sinks: [] },
    issuers: [{ name: 'corp-sso', issuer: 'https://sso.example.com/', audiences: ['api://bouncer'], jwks_uri: 'http://127.0.0.1:9/keys' }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'corp-sso' }], policies: ['office'] }],
    policies: [{ name: 'office', statements: [{ sid: 'FromTheOffice', effect: 'allow', actions: ['GET'], routes: ['*'], conditions: { source_ip: ['10.0.0.0/8'] } }] }],
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'reports', path: '/reports', upstream: 'api' }],
  })
  file = gateway.file
})
afterAll(async () => {
  await gateway?.close()
})

const claims = JSON.stringify({ iss: 'https://sso.example.com/', sub: 'ana', aud: 'api://bouncer', exp: 4_102_444_800 })
const explain = (...args: string[]) => runCliInProcess(['explain', '--config', file, '--method', 'GET', '--path', '/reports', ...args])
/** The allowed request both tests below check against (exit 0): one `bouncer explain` process (~1 s of CPU) for the two. */
let allowedRun: Promise<CliResult> | undefined
const allowed = () => (allowedRun ??= explain('--claims', claims, '--ip', '10.1.2.3'))

it('bouncer explain takes an address in --ip, and refuses anything else as a usage error', async () => {
  expect((await allowed()).code).toBe(0)
  for (const ip of ['10.1.2.3.', '10.1.2', 'office', '']) {
    const result = await explain('--claims', claims, '--ip', ip)
    expect(result).toEqual({ code: 2, stdout: '', stderr: `bouncer: --ip must be an IP address, e.g. 10.1.2.3 (not "${ip}")\n` })
  }
})

it('bouncer explain refuses --claims that are not a JSON object as a usage error', async () => {
  expect(await explain('--claims', '{sub: ana}')).toEqual({ code: 2, stdout: '', stderr: 'bouncer: --claims is not valid JSON\n' })
  expect(await explain('--claims', '["ana"]')).toEqual({ code: 2, stdout: '', stderr: 'bouncer: --claims must be a JSON object\n' })
})

it('POST /api/explain answers 400 bad_request for an "ip" that is no address', async () => {
  const post = (ip: string) => request(`${gateway.adminUrl}/api/explain`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ method: 'GET', path: '/reports', claims: JSON.parse(claims) as object, ip }),
  })
  const ok = await post('10.1.2.3')
  expect(ok.statusCode).toBe(200)
  expect(((await ok.body.json()) as { decision: { effect: string } }).decision.effect).toBe('allow')
  const res = await post('10.1.2.3.')
  expect(res.statusCode).toBe(400)
  expect(await res.body.json()).toMatchObject({ code: 'bad_request', detail: '"ip" must be an IP address, e.g. "10.1.2.3".' })
})

// Found by an adversarial probe: claims nested 50,000 deep (100 KB of JSON) were checked for depth
// by JSON.stringify, which recursed until RangeError: POST /api/explain answered 500
// internal_error and `bouncer explain --claims` "bouncer: internal error: Maximum call stack size
// exceeded". They are refused as the gateway refuses such a token: 401 malformed_token.
it('claims nested far deeper than a token may are explained as malformed_token, by the API and the command line', async () => {
  const deep = `{"iss":"https://sso.example.com/","sub":"ana","deep":${'['.repeat(50_000)}${']'.repeat(50_000)}}`
  const res = await request(`${gateway.adminUrl}/api/explain`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: `{"method":"GET","path":"/reports","ip":"10.1.2.3","claims":${deep}}`,
  })
  expect(res.statusCode).toBe(200)
  expect(((await res.body.json()) as { decision: unknown }).decision).toMatchObject({ effect: 'deny', status: 401, code: 'malformed_token' })
  const cli = await explain('--claims', deep, '--ip', '10.1.2.3')
  expect(cli.code).toBe(1)
  expect(cli.stderr).toBe('')
  expect(cli.stdout).toContain('DENY: 401 malformed_token: The claims nest deeper than the gateway reads a token\'s.')
})

// Found by an adversarial probe: explain answered CONNECT as any method the route does not list
// (405 method_not_allowed), or allowed it where a route lists it, while the gateway refuses every
// CONNECT tunnel 400 bad_path before it looks for a route.
it('CONNECT is explained as the gateway answers it: 400 bad_path', async () => {
  const real = await rawRequest(Number(new URL(gateway.url).port), 'CONNECT /reports HTTP/1.1\r\nHost: gw\r\n\r\n')
  expect(real.status).toBe(400)
  expect(JSON.parse(real.body)).toMatchObject({ code: 'bad_path' })
  const res = await request(`${gateway.adminUrl}/api/explain`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ method: 'CONNECT', path: '/reports', claims: JSON.parse(claims) as object, ip: '10.1.2.3' }),
  })
  expect(((await res.body.json()) as { decision: unknown }).decision).toMatchObject({ effect: 'deny', status: 400, code: 'bad_path', reason: '400 bad_path: CONNECT tunnels are not supported.' })
})

// Found by an adversarial probe: a method no request line can carry ("GET " pasted with its space,
// "G\r\nET", "") was explained as a method the route does not take: 405 "does not accept GET ; it
// accepts GET", exit 1, which sent the operator to the route. It is a usage error now.
it('a method that is no HTTP method is a usage error, for the command line and the API', async () => {
  for (const method of ['GET ', 'G\r\nET', '', 'GET/1']) {
    expect(await runCliInProcess(['explain', '--config', file, '--method', method, '--path', '/reports', '--claims', claims])).toEqual({
      code: 2, stdout: '', stderr: `bouncer: --method must be an HTTP method, e.g. GET (not ${JSON.stringify(method)})\n`,
    })
    const res = await request(`${gateway.adminUrl}/api/explain`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ method, path: '/reports', claims: JSON.parse(claims) as object }),
    })
    expect(res.statusCode).toBe(400)
    expect(await res.body.json()).toMatchObject({ code: 'bad_request', detail: '"method" must be an HTTP method, e.g. "GET".' })
  }
  expect((await allowed()).code).toBe(0)
  expect((await runCliInProcess(['explain', '--config', file, '--method', 'get', '--path', '/reports', '--claims', claims, '--ip', '10.1.2.3'])).code).toBe(0)
})
