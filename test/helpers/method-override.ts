// What the three method-override test files (a POST's `_method` in its query, form body or JSON
// body) share: the gateway's access rules and routes, and a raw POST of a body.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, type RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createPki } from './certs.ts'
import { startTestGateway, type TestGateway } from './gateway.ts'
import { h2Session, startH2Gateway } from './h2-gateway.ts'
import { AUDIENCE, startIdentityProvider } from './identity-provider.ts'
import { rawRequest, type RawResponse } from './raw.ts'
import { waitFor } from './wait.ts'

/**
 * An editor (any token of `issuer`) allowed every method but DELETE; `archive.delete` the one
 * route that takes DELETE under /archive/*, `archive` its GET and POST, `postOnly` a GET and POST
 * route of its own, and `records` any method. The test adds server, admin and audit settings.
 */
export function noDeleteGateway(issuer: string, audience: string, upstreamUrl: string, postOnly: { id: string; path: string }): Record<string, unknown> {
  return {
    issuers: [{ name: 'corp', issuer, audiences: [audience] }],
    roles: [{ name: 'editor', assumed_by: [{ issuer: 'corp' }], policies: ['no-delete'] }],
    policies: [{
      name: 'no-delete',
      statements: [
        { sid: 'AllowAll', effect: 'allow', actions: ['*'], routes: ['*'] },
        { sid: 'NeverDelete', effect: 'deny', actions: ['DELETE'], routes: ['*'] },
      ],
    }],
    upstreams: [{ name: 'app', url: upstreamUrl }],
    routes: [
      { id: 'archive.delete', methods: ['DELETE'], path: '/archive/*', upstream: 'app' },
      { id: 'archive', methods: ['GET', 'POST'], path: '/archive/*', upstream: 'app' },
      { id: postOnly.id, methods: ['GET', 'POST'], path: postOnly.path, upstream: 'app' },
      { id: 'records', path: '/records/*', upstream: 'app' },
    ],
  }
}

/** A POST of `body` with a bearer token (Content-Length, or chunked in two chunks), `headers` lines added. */
export function rawPost(port: number, token: string, target: string, body: Buffer, headers: readonly string[], chunked = false): Promise<RawResponse> {
  const head = `POST ${target} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n`
  if (!chunked) return rawRequest(port, Buffer.concat([Buffer.from(`${head}Content-Length: ${body.length}\r\n\r\n`), body]), { timeout: 20_000 })
  const half = Math.floor(body.length / 2)
  const chunk = (part: Buffer) => Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')])
  return rawRequest(port, [Buffer.from(`${head}Transfer-Encoding: chunked\r\n\r\n`), chunk(body.subarray(0, half)), Buffer.concat([chunk(body.subarray(half)), Buffer.from('0\r\n\r\n')])], { gapMs: 20, timeout: 20_000 })
}

export interface OverrideSetup {
  gateway: TestGateway
  /** An editor's token. */
  token: string
  /** The upstream's origin, and the identity provider's issuer. */
  upstreamUrl: string
  issuer: string
  close(): Promise<void>
}

/**
 * The upstream (`listener`, on loopback), a real identity provider, and a gateway of
 * noDeleteGateway's rules with `settings` (server, admin, audit) added; its issuer's keys loaded.
 */
export async function startOverrideGateway(listener: RequestListener, postOnly: { id: string; path: string }, settings: (dir: string) => Record<string, unknown>): Promise<OverrideSetup> {
  const app = createServer(listener)
  app.listen(0, '127.0.0.1')
  await once(app, 'listening')
  const idp = await startIdentityProvider()
  const upstreamUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`
  const gateway = await startTestGateway((dir) => ({ ...settings(dir), ...noDeleteGateway(idp.issuer, AUDIENCE, upstreamUrl, postOnly) }))
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
  return {
    gateway,
    token: await idp.token('looker-reports'),
    upstreamUrl,
    issuer: idp.issuer,
    async close() {
      await gateway.close()
      app.close()
      await idp.stop()
    },
  }
}

export interface OverrideH2Gateway {
  /** A POST of `body` as `type` over HTTP/2 (`withLength`: with its content-length); the answer's status. */
  post(path: string, body: Buffer, type: string, withLength: boolean): Promise<number>
  close(): Promise<void>
}

/** An HTTP/2 gateway (TLS) in front of `upstreamUrl`: public routes `postOnly` (GET and POST) and `/records/*` (any method). */
export async function startOverrideH2Gateway(upstreamUrl: string, postOnly: { id: string; path: string }): Promise<OverrideH2Gateway> {
  const pki = createPki()
  const h2 = await startH2Gateway(pki, upstreamUrl, {}, {
    routes: [{ id: postOnly.id, methods: ['GET', 'POST'], path: postOnly.path, upstream: 'api', public: true }, { id: 'records', path: '/records/*', upstream: 'api', public: true }],
  })
  return {
    async post(path, body, type, withLength) {
      const client = await h2Session(h2.url, readFileSync(pki.ca.cert))
      const stream = client.request({ ':method': 'POST', ':path': path, 'content-type': type, ...(withLength ? { 'content-length': body.length } : {}) })
      stream.end(body)
      stream.resume()
      const [headers] = await once(stream, 'response') as [Record<string, string>]
      await once(stream, 'close')
      client.close()
      return Number(headers[':status'])
    },
    async close() {
      await h2.close()
      pki.close()
    },
  }
}
