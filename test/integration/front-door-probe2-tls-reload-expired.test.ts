// Found by an adversarial probe (front door, round 2): an expired (or not yet valid) server
// certificate is a warning at `bouncer check` and in the start's log. Renewed on disk (a certbot
// hook that copied the wrong file, a clock-skewed issuer), the reload that the file change starts
// installed it and logged only "config reloaded" with a count of warnings and "TLS certificate
// loaded" at info: every client then refused the gateway, and nothing in the log said why.
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway
let cert: string
let key: string

beforeAll(async () => {
  pki = createPki()
  cert = join(pki.dir, 'served.crt')
  key = join(pki.dir, 'served.key')
  copyFileSync(pki.server.cert, cert)
  copyFileSync(pki.server.key, key)
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { tls: { cert, key }, hosts: ['localhost'] },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  })
})
afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

const lines = () => gateway.logs.map((line) => JSON.parse(line) as { level: number | string; msg: string; subject?: string })

describe('an expired certificate put in place of the served one', () => {
  it('is installed by the reload the change starts, with a warning that says it expired', async () => {
    const expired = pki.ca.issue('expired-server', { usage: 'server', san: ['IP:127.0.0.1', 'DNS:localhost'], notBefore: '20200101000000Z', notAfter: '20200201000000Z' })
    copyFileSync(expired.key, key)
    copyFileSync(expired.cert, cert)
    await waitFor(() => lines().some((line) => line.msg === 'TLS certificate loaded' && line.subject === 'CN=expired-server'), 'the expired certificate installed', 15_000)
    const warning = lines().find((line) => /expired at 2020-02-01/.test(line.msg))
    expect(warning?.msg).toMatch(/server\.tls\.cert: the certificate "CN=expired-server" expired at 2020-02-01T00:00:00\.000Z: clients will refuse it/)
    expect(warning?.level).toBe('warn')
  })
})
