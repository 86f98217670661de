// A gateway that speaks HTTP/2 (TLS, ALPN) in front of one upstream, every path public: what the
// HTTP/2 abort and timeout tests share.
import { once } from 'node:events'
import { connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2'
import type { TestPki } from './certs.ts'
import { startTestGateway, type TestGateway } from './gateway.ts'

/** `server`: settings beside TLS and http2 (timeouts); `more`: other config sections (audit). */
export function startH2Gateway(pki: TestPki, upstreamUrl: string, server: Record<string, unknown> = {}, more: Record<string, unknown> = {}): Promise<TestGateway> {
  return startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key }, http2: true, hosts: ['localhost'], ...server },
    upstreams: [{ name: 'api', url: upstreamUrl }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
    ...more,
  })
}

/** Closes it, waiting at most `ms`: a test whose point is a shutdown that hung must still end. */
export async function closeWithin(gateway: TestGateway | undefined, ms = 3_000): Promise<void> {
  await Promise.race([gateway?.close(), new Promise((resolve) => setTimeout(resolve, ms))])
}

/** An HTTP/2 session to `url` (TLS, `ca` trusted, SNI localhost), once connected; its errors are left to its streams. */
export async function h2Session(url: string, ca: Buffer): Promise<ClientHttp2Session> {
  const client = connect(url, { ca, servername: 'localhost' })
  client.on('error', () => {})
  await once(client, 'connect')
  return client
}

/** One request (no body) on a session of its own, closed after it: the answer's status and body. */
export async function h2Once(url: string, ca: Buffer, headers: OutgoingHttpHeaders): Promise<{ status: number; body: string }> {
  const client = await h2Session(url, ca)
  return new Promise((resolve) => {
    const stream = client.request(headers, { endStream: true })
    let status = 0
    const chunks: Buffer[] = []
    stream.on('response', (h) => (status = Number(h[':status'])))
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('close', () => {
      client.close()
      resolve({ status, body: Buffer.concat(chunks).toString('utf8') })
    })
    stream.on('error', () => {})
  })
}

/** One request with `body` on a session of its own, closed after it: the answer's status and body, and the stream's error (a reset) or null. */
export async function h2Exchange(url: string, ca: Buffer, headers: OutgoingHttpHeaders, body: string): Promise<{ status: number; body: string; error: string | null }> {
  const client = await h2Session(url, ca)
  return new Promise((resolve) => {
    const stream = client.request(headers)
    stream.end(body)
    let status = 0
    let error: string | null = null
    const chunks: Buffer[] = []
    stream.on('response', (h) => (status = Number(h[':status'])))
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('error', (err) => (error = err.message))
    stream.on('close', () => {
      client.close()
      resolve({ status, body: Buffer.concat(chunks).toString('utf8'), error })
    })
  })
}
