// `bouncer explain` could not explain a client certificate's caller: its claims (iss the CA's DN,
// sub the SPIFFE ID, as the audit record keeps them) were read as a bearer token's, from an issuer
// that does not exist, and every such request came out "401 client_cert_required: the request
// carries a bearer token". `--client-cert` says what the claims are, as POST /api/explain's
// "credential": "client_cert" does, and the decision is the gateway's.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let pki: TestPki
let file: string

beforeAll(() => {
  pki = createPki()
  file = join(pki.dir, 'bouncer.yaml')
  writeFileSync(file, stringify({
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert } },
    audit: { sinks: [] },
    issuers: [{ name: 'mesh', type: 'x509' }],
    roles: [{ name: 'etl', assumed_by: [{ issuer: 'mesh', subject: 'spiffe://prod/ns/etl/*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['data'] }] }],
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:1' }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
  }))
})

afterAll(() => pki?.close())

const claims = (sub: string) => JSON.stringify({ iss: 'CN=Test CA, O=Bouncer tests', sub })

describe('bouncer explain --client-cert', () => {
  it('explains a workload by its certificate\'s issuer and trust rules', async () => {
    const allowed = await runCliInProcess(['explain', '--config', file, '--method', 'GET', '--path', '/data/x', '--client-cert', '--claims', claims('spiffe://prod/ns/etl/sa/loader'), '--json'])
    expect(allowed.code, allowed.stderr).toBe(0)
    expect(JSON.parse(allowed.stdout)).toMatchObject({ identity: { issuer: 'mesh', sub: 'spiffe://prod/ns/etl/sa/loader' }, decision: { effect: 'allow', statement: 'Read' } })
    const other = await runCliInProcess(['explain', '--config', file, '--method', 'GET', '--path', '/data/x', '--client-cert', '--claims', claims('spiffe://prod/ns/web/sa/site'), '--json'])
    expect(other.code).toBe(1)
    expect(JSON.parse(other.stdout)).toMatchObject({ decision: { status: 403, code: 'no_role' } })
  })

  it('needs --claims', async () => {
    const bare = await runCliInProcess(['explain', '--config', file, '--method', 'GET', '--path', '/data/x', '--client-cert'])
    expect(bare.code).toBe(2)
    expect(bare.stderr).toMatch(/--client-cert needs --claims/)
  })
})
