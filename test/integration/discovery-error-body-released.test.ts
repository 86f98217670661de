// A discovery document that answers an error with a large body (an HTML error page, a proxy's
// stack trace) has its connection let go at once. Unread, a body over undici's window held the
// connection until the 5 s fetch timeout, and discovery is retried every 0.5 s at first: each retry
// kept one more connection open to a provider that was already failing.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE } from '../helpers/identity-provider.ts'
import { waitFor } from '../helpers/wait.ts'

const errorPage = `<html><body>${'x'.repeat(300_000)}</body></html>`
const open = new Set<Socket>()
/** How many of the provider's connections were open as each discovery request arrived. */
const openAtRequest: number[] = []
let provider: Server
let gateway: TestGateway

beforeAll(async () => {
  provider = createServer((_req, res) => {
    openAtRequest.push(open.size)
    res.writeHead(500, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(errorPage) }).end(errorPage)
  })
  provider.on('connection', (socket: Socket) => {
    open.add(socket)
    socket.on('close', () => open.delete(socket))
  })
  provider.listen(0, '127.0.0.1')
  await once(provider, 'listening')
  const base = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`
  gateway = await startTestGateway({
    issuers: [{ name: 'failing', issuer: `${base}/failing`, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['failing']),
    upstreams: [{ name: 'data', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'data', path: '/*', upstream: 'data' }],
  })
})

afterAll(async () => {
  await gateway?.close()
  provider.closeAllConnections()
  provider.close()
  await once(provider, 'close')
})

it('a discovery answering 500 with a large body does not keep its connection for the next retry', async () => {
  // The first try and two retries (0.5 s and 1 s after it), well inside the 5 s fetch timeout.
  await waitFor(() => openAtRequest.length >= 3, 'three discovery requests')
  expect(openAtRequest.slice(0, 3)).toEqual([1, 1, 1])
  expect(gateway.state.runtime.issuerKeys.get('failing')?.lastError).toContain('answered 500')
})
