// Found by a probe: the gateway is not handed the intermediate CA certificates a client sent (on
// Node 24 getPeerCertificate(true) on a server holds the leaf, then what the listener's own CAs
// complete; on Node 22 the same once getPeerX509Certificate was called). OpenSSL checks the chain through them and lets the handshake in, but the gateway
// cannot see which CA of client_ca it reached: a workload sending its SVID with SPIRE's intermediate,
// only the root in client_ca, was told its chain ends "at a CA of server.tls.client_ca that no x509
// issuer's ca names" — with one issuer, and no ca — and README said only a resumed session needed
// the intermediate in client_ca. The 401 now says which CA is missing and why.
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { clientCertGateway, createPki, type Issued, type TestCa, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let intermediate: TestCa
let leaf: Issued
let upstream: TestUpstream
let rootOnly: TestGateway
let withIntermediate: TestGateway

beforeAll(async () => {
  pki = createPki()
  intermediate = pki.newCa('Mesh Intermediate', pki.ca)
  leaf = intermediate.issue('loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] })
  const bundle = join(pki.dir, 'root-and-intermediate.pem')
  writeFileSync(bundle, readFileSync(pki.ca.cert, 'utf8') + readFileSync(intermediate.cert, 'utf8'))
  upstream = await startUpstream()
  rootOnly = await clientCertGateway(pki, upstream.url, { anyCaller: true })
  withIntermediate = await clientCertGateway(pki, upstream.url, { anyCaller: true, clientCa: bundle })
})

afterAll(async () => {
  await rootOnly?.close()
  await withIntermediate?.close()
  await upstream?.close()
  pki?.close()
})

/** Two connections, the second resuming the first's session, each presenting the leaf and its intermediate: status and detail of each. */
async function twoConnections(gateway: TestGateway): Promise<Array<{ resumed: boolean; status: string; detail: unknown }>> {
  const { port } = new URL(gateway.url)
  let session: Buffer | undefined
  const answers: Array<{ resumed: boolean; status: string; detail: unknown }> = []
  for (let i = 0; i < 2; i++) {
    const socket = connect({ host: '127.0.0.1', port: Number(port), ca: readFileSync(pki.ca.cert), servername: 'localhost', cert: readFileSync(leaf.cert, 'utf8') + readFileSync(intermediate.cert, 'utf8'), key: readFileSync(leaf.key), session, ALPNProtocols: ['http/1.1'] })
    const ticket = new Promise<Buffer>((resolve) => socket.once('session', resolve))
    await once(socket, 'secureConnect')
    const resumed = socket.isSessionReused()
    socket.write('GET /data/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    let text = ''
    for await (const chunk of socket) text += (chunk as Buffer).toString('utf8')
    const body = text.slice(text.indexOf('\r\n\r\n') + 4)
    answers.push({ resumed, status: text.split('\r\n')[0] as string, detail: body.startsWith('{"type"') ? (JSON.parse(body) as { detail: unknown }).detail : undefined })
    if (i === 0) session = await ticket
  }
  return answers
}

it('tells a client whose intermediate is not in client_ca which CA to add, not that no x509 issuer names it', async () => {
  const detail = 'The client certificate "CN=loader" is signed by "CN=Mesh Intermediate, O=Bouncer tests", which is not in server.tls.client_ca: the handshake checked it through the intermediate CA certificates the client sent, but those do not reach the gateway, which cannot tell which CA of client_ca it chains to. Add "CN=Mesh Intermediate, O=Bouncer tests" to server.tls.client_ca (beside its root).'
  expect(await twoConnections(rootOnly)).toEqual([
    { resumed: false, status: 'HTTP/1.1 401 Unauthorized', detail },
    { resumed: true, status: 'HTTP/1.1 401 Unauthorized', detail },
  ])
})

it('serves the same client, full and resumed, once its intermediate is in client_ca', async () => {
  expect(await twoConnections(withIntermediate)).toEqual([
    { resumed: false, status: 'HTTP/1.1 200 OK', detail: undefined },
    { resumed: true, status: 'HTTP/1.1 200 OK', detail: undefined },
  ])
})
