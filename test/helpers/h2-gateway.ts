// A gateway that speaks HTTP/2 (TLS, ALPN) in front of one upstream, every path public: what the
// HTTP/2 abort and timeout tests share.
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
