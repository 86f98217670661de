// Found by a probe: README's bound on the TLS handshake is headers_timeout, which a reload applies
// to the listener (lowered to shed a slow-handshake flood, say). The handshake's was set when the
// listener was made and never again: a reload to 300ms left a silent TLS connection open for the
// 10s of the start.
import { once } from 'node:events'
import { connect } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { clientCertConfig, clientCertTls, createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway

const config = (headersTimeout: string) => clientCertConfig(upstream.url, { anyCaller: true, server: { tls: clientCertTls(pki), headers_timeout: headersTimeout } })

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream()
  gateway = await startTestGateway(config('10s'))
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

it('closes a connection that sends no handshake within the headers_timeout a reload set', async () => {
  await gateway.writeConfig(config('300ms'))
  expect((await gateway.reload()).ok).toBe(true)
  const { port } = new URL(gateway.url)
  const socket = connect({ host: '127.0.0.1', port: Number(port) })
  await once(socket, 'connect')
  const opened = Date.now()
  // No ClientHello: only the handshake timeout closes it. 5 s is well short of the start's 10 s.
  const closed = await Promise.race([once(socket, 'close').then(() => Date.now() - opened), new Promise<null>((resolve) => setTimeout(resolve, 5_000, null).unref())])
  socket.destroy()
  expect(closed).not.toBeNull()
  expect(closed).toBeLessThan(3_000)
})
