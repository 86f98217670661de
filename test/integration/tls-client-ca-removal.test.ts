// Written by an adversarial probe (helper), which this held up against: a CA removed from server.tls.client_ca (the file rewritten; the watcher
// reloads) must stop authenticating its certificates: on connections kept alive from before the
// reload (HTTP/1.1 and h2), and on sessions resumed with a ticket issued before it.
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect as h2connect, type ClientHttp2Session } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientCertGateway, createPki, type Issued, type TestCa, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let partnerCa: TestCa
let dir: string
let bundle: string
let upstream: TestUpstream
let gateway: TestGateway
let partnerLeaf: Issued
let meshLeaf: Issued

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'bouncer-ca-removal-'))
  partnerCa = pki.newCa('Partner CA')
  partnerLeaf = partnerCa.issue('partner-loader', { usage: 'client', san: ['URI:spiffe://partner/loader'] })
  meshLeaf = pki.ca.issue('mesh-loader', { usage: 'client', san: ['URI:spiffe://prod/loader'] })
  bundle = join(dir, 'client-cas.pem')
  writeFileSync(bundle, readFileSync(pki.ca.cert, 'utf8') + readFileSync(partnerCa.cert, 'utf8'))
  upstream = await startUpstream()
  gateway = await clientCertGateway(pki, upstream.url, { clientCa: bundle, anyCaller: true, server: { http2: true } })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const logCount = (text: string) => gateway.logs.filter((line) => line.includes(text)).length

async function handshake(cert: Issued, extra: ConnectionOptions = {}): Promise<{ socket: TLSSocket; session: () => Buffer | undefined }> {
  const { port } = new URL(gateway.url)
  let ticket: Buffer | undefined
  const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca: readFileSync(pki.ca.cert), servername: 'localhost', cert: readFileSync(cert.cert), key: readFileSync(cert.key), ALPNProtocols: ['http/1.1'], ...extra })
  socket.on('session', (s: Buffer) => (ticket = s))
  socket.on('error', () => {})
  await once(socket, 'secureConnect')
  return { socket, session: () => ticket }
}

/** One keep-alive request on an open socket; the status line. */
async function requestOn(socket: TLSSocket, path: string): Promise<string> {
  socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
  let text = ''
  return await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1')
      const head = text.indexOf('\r\n\r\n')
      if (head === -1) return
      const length = Number(/content-length: (\d+)/i.exec(text.slice(0, head))?.[1] ?? 0)
      if (text.length >= head + 4 + length) {
        socket.off('data', onData)
        resolve(text.split('\r\n')[0] as string)
      }
    }
    socket.on('data', onData)
    socket.once('close', () => reject(new Error(`closed; read so far: ${text.slice(0, 200)}`)))
  })
}

async function h2Get(session: ClientHttp2Session, path: string): Promise<number> {
  const stream = session.request({ ':path': path })
  const [headers] = (await once(stream, 'response')) as [Record<string, string>]
  for await (const _ of stream) { /* drain */ }
  return Number(headers[':status'])
}

describe('a CA removed from client_ca', () => {
  it('no longer authenticates: kept-alive HTTP/1.1, h2 sessions and resumed TLS sessions made before the removal', async () => {
    const kept = await handshake(partnerLeaf)
    expect(await requestOn(kept.socket, '/data/before')).toBe('HTTP/1.1 200 OK')
    const resumable13 = await handshake(partnerLeaf, { maxVersion: 'TLSv1.3' })
    expect(await requestOn(resumable13.socket, '/data/before')).toBe('HTTP/1.1 200 OK')
    await waitFor(() => resumable13.session() !== undefined, 'a TLS 1.3 ticket')
    const resumable12 = await handshake(partnerLeaf, { maxVersion: 'TLSv1.2' })
    expect(await requestOn(resumable12.socket, '/data/before')).toBe('HTTP/1.1 200 OK')
    await waitFor(() => resumable12.session() !== undefined, 'a TLS 1.2 session')
    const h2 = h2connect(gateway.url, { ca: readFileSync(pki.ca.cert), servername: 'localhost', cert: readFileSync(partnerLeaf.cert), key: readFileSync(partnerLeaf.key) })
    h2.on('error', () => {})
    expect(await h2Get(h2, '/data/before')).toBe(200)

    const loaded = logCount('TLS certificate loaded')
    writeFileSync(bundle, readFileSync(pki.ca.cert, 'utf8'))
    await waitFor(() => logCount('TLS certificate loaded') > loaded, 'the reload after client_ca changed', 15_000)

    // The mesh's own certificates still work on new connections.
    const mesh = await handshake(meshLeaf)
    expect(await requestOn(mesh.socket, '/data/mesh')).toBe('HTTP/1.1 200 OK')
    mesh.socket.destroy()

    const results: Record<string, string> = {}
    results.keptAlive = await requestOn(kept.socket, '/data/after').catch((e: Error) => `closed: ${e.message.slice(0, 40)}`)
    results.h2 = String(await h2Get(h2, '/data/after').catch((e: Error) => `error ${e.message}`))
    for (const [name, old] of [['resumed13', resumable13], ['resumed12', resumable12]] as const) {
      old.socket.destroy()
      const again = await handshake(partnerLeaf, { session: old.session(), maxVersion: name === 'resumed13' ? 'TLSv1.3' : 'TLSv1.2' })
      results[name] = `${again.socket.isSessionReused() ? 'reused' : 'full'} ${await requestOn(again.socket, '/data/after')}`
      again.socket.destroy()
    }
    kept.socket.destroy()
    h2.close()
    expect(results).toEqual({
      keptAlive: 'HTTP/1.1 401 Unauthorized',
      h2: '401',
      resumed13: 'full HTTP/1.1 401 Unauthorized',
      resumed12: 'full HTTP/1.1 401 Unauthorized',
    })
  })
})
