// TLS termination (issue 16, point 1): the listener serves HTTPS with the configured chain, TLS 1.2
// at least and 1.3 preferred, sessions resume; a certificate replaced on disk is picked up without
// dropping open connections (they keep the old one), a broken one is refused and the old one kept,
// with the reason; and at start a broken pair is a `bouncer check` error.
import { X509Certificate } from 'node:crypto'
import { copyFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { loadConfigText } from '../../src/config/index.ts'
import { createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway
/** The files the gateway reads; the tests replace them. */
let live: Issued
let agent: Agent

function installPair(pair: Issued): void {
  copyFileSync(pair.cert, live.cert)
  copyFileSync(pair.key, live.key)
}

beforeAll(async () => {
  pki = createPki()
  live = { cert: join(pki.dir, 'live.crt'), key: join(pki.dir, 'live.key') }
  installPair(pki.server)
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { tls: { cert: live.cert, key: live.key } },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  })
  agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert) } })
})

afterAll(async () => {
  await agent?.close()
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

/** The server certificate's serial each connection saw at its handshake. */
const serials = new WeakMap<TLSSocket, string | undefined>()
/** The latest session ticket each connection received. */
const sessions = new WeakMap<TLSSocket, Buffer>()

/** A TLS connection to the gateway; resolves once the handshake is done (or rejects with its error). */
function handshake(options: ConnectionOptions = {}): Promise<TLSSocket> {
  const { port } = new URL(gateway.url)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port), ca: readPem(pki.ca.cert), servername: 'localhost', ...options })
    socket.on('session', (ticket: Buffer) => sessions.set(socket, ticket))
    socket.once('secureConnect', () => {
      // Read at once: a client's view of its peer is gone once a TLS 1.3 ticket replaces its session.
      serials.set(socket, socket.getPeerX509Certificate()?.serialNumber)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

function readPem(path: string): Buffer {
  return readFileSync(path)
}

/** One HTTP/1.1 request on an open TLS socket, keeping it open; answers the status line. */
function requestOn(socket: TLSSocket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1')
      const head = text.indexOf('\r\n\r\n')
      const length = /content-length: (\d+)/i.exec(text)
      if (head !== -1 && length && text.length >= head + 4 + Number(length[1])) {
        socket.off('data', onData)
        resolve(text.split('\r\n')[0] as string)
      }
    }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
  })
}

function serialOf(socket: TLSSocket): string | undefined {
  return serials.get(socket)
}

function logCount(text: string): number {
  return gateway.logs.filter((line) => line.includes(text)).length
}

describe('TLS termination', () => {
  it('serves HTTPS, says https upstream, and forces no HSTS', async () => {
    expect(gateway.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const res = await request(`${gateway.url}/hello`, { dispatcher: agent })
    const echoed = (await res.body.json()) as { headers: Record<string, string> }
    expect(res.statusCode).toBe(200)
    expect(echoed.headers['x-forwarded-proto']).toBe('https')
    // HSTS is the operator's choice (a header the upstream or a route sets), never forced.
    expect(res.headers['strict-transport-security']).toBeUndefined()
  })

  it('prefers TLS 1.3, takes 1.2, refuses 1.1', async () => {
    const preferred = await handshake()
    expect(preferred.getProtocol()).toBe('TLSv1.3')
    preferred.destroy()
    const older = await handshake({ maxVersion: 'TLSv1.2' })
    expect(older.getProtocol()).toBe('TLSv1.2')
    expect(older.getCipher().name).toMatch(/^ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/)
    older.destroy()
    await expect(handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1' })).rejects.toThrow()
  })

  it('resumes sessions (TLS 1.3 tickets and TLS 1.2)', async () => {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const first = await handshake({ maxVersion })
      expect(await requestOn(first, '/one')).toBe('HTTP/1.1 200 OK')
      await waitFor(() => sessions.has(first), 'a session ticket')
      first.destroy()
      const second = await handshake({ maxVersion, session: sessions.get(first) })
      expect(second.isSessionReused()).toBe(true)
      expect(await requestOn(second, '/two')).toBe('HTTP/1.1 200 OK')
      second.destroy()
    }
  })

  it('logs the certificate it starts with, as it logs a renewed one: subject and not_after', () => {
    // An operator reading the log after a restart found no line naming the certificate served.
    const started = new X509Certificate(readFileSync(pki.server.cert))
    const loaded = gateway.logs.flatMap((chunk) => chunk.split('\n')).filter((line) => line.includes('"TLS certificate loaded"')).map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(loaded[0]).toMatchObject({ subject: expect.stringContaining('CN='), not_after: new Date(started.validTo).toISOString(), fingerprint_sha256: started.fingerprint256 })
  })

  it('picks up a replaced certificate: open connections keep the old one, new handshakes get the new one', async () => {
    const before = await handshake()
    const oldSerial = serialOf(before)
    expect(await requestOn(before, '/before')).toBe('HTTP/1.1 200 OK')
    const loaded = logCount('TLS certificate loaded')
    const renewed = pki.ca.issue('renewed', { usage: 'server', san: ['DNS:localhost', 'IP:127.0.0.1'] })
    installPair(renewed)
    await waitFor(() => logCount('TLS certificate loaded') > loaded, 'the renewed certificate to load', 15_000)

    const after = await handshake()
    expect(serialOf(after)).not.toBe(oldSerial)
    expect(serialOf(after)).toBe(readSerial(renewed.cert))
    expect(await requestOn(after, '/after')).toBe('HTTP/1.1 200 OK')
    // The connection made before the swap is still served, still on the certificate it was made with.
    expect(await requestOn(before, '/still-open')).toBe('HTTP/1.1 200 OK')
    expect(serialOf(before)).toBe(oldSerial)
    before.destroy()
    after.destroy()
  })

  it('keeps the running certificate when the new files do not load, and says why', async () => {
    const running = await handshake()
    const runningSerial = serialOf(running)
    running.destroy()
    const refusals = logCount('config reload refused')
    // A key that belongs to another certificate.
    const other = pki.ca.issue('other-server', { usage: 'server', san: ['IP:127.0.0.1'] })
    copyFileSync(other.key, live.key)
    await waitFor(() => logCount('config reload refused') > refusals, 'the reload to be refused', 15_000)
    const refusal = gateway.logs.filter((line) => line.includes('config reload refused')).at(-1) as string
    expect(refusal).toContain('server.tls.key: the key in')
    expect(refusal).toContain('does not match the certificate')
    const still = await handshake()
    expect(serialOf(still)).toBe(runningSerial)
    still.destroy()
    // SIGHUP's path says the same.
    const reload = await gateway.reload()
    expect(reload.ok).toBe(false)
    expect(JSON.stringify(reload)).toContain('does not match the certificate')
    // And a good pair again is taken.
    installPair(pki.server)
    const fixed = await gateway.reload()
    expect(fixed.ok).toBe(true)
    const back = await handshake()
    expect(serialOf(back)).toBe(readSerial(pki.server.cert))
    back.destroy()
  })

  it('installs the certificate as the reload read it while preparing, whatever the files hold at its commit', async () => {
    // server.workers stages a reload on every worker, then commits it: the files were read again at
    // the commit, so a file replaced in between answered ok with no certificate installed, or left
    // workers on two certificates (a probe). Staged and committed here as the primary does.
    const renewed = pki.ca.issue('staged', { usage: 'server', san: ['DNS:localhost', 'IP:127.0.0.1'] })
    installPair(renewed)
    const staged = await gateway.stageReload()
    expect(staged.ok).toBe(true)
    copyFileSync(pki.ca.issue('stray', { usage: 'server', san: ['IP:127.0.0.1'] }).key, live.key) // broken before the commit
    expect(staged.ok && staged.commit()).toMatchObject({ ok: true })
    const after = await handshake()
    expect(serialOf(after)).toBe(readSerial(renewed.cert))
    after.destroy()
    // /metrics names the certificate served, and when it expires.
    const leaf = new X509Certificate(readFileSync(renewed.cert))
    const metrics = await (await request(`${gateway.adminUrl}/metrics`)).body.text()
    expect(metrics).toContain(`bouncer_tls_certificate_info{fingerprint_sha256="${leaf.fingerprint256}",not_after="${new Date(leaf.validTo).toISOString()}"} 1`)
    expect(metrics).toContain(`bouncer_tls_certificate_expiry_timestamp_seconds{fingerprint_sha256="${leaf.fingerprint256}"} ${Math.floor(Date.parse(leaf.validTo) / 1000)}`)
    installPair(pki.server)
    expect(await gateway.reload()).toMatchObject({ ok: true })
  })

  it('answers requests Node\'s parser refuses in SPEC\'s format over TLS too', async () => {
    const socket = await handshake()
    const answer = new Promise<string>((resolve) => {
      let text = ''
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
      socket.on('close', () => resolve(text))
    })
    socket.write('POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
    const text = await answer
    expect(text).toMatch(/^HTTP\/1\.1 400 /)
    expect(text).toContain('"code":"bad_request"')
  })

  it('logs a failed handshake at debug level and keeps serving', async () => {
    const untrusting = handshake({ ca: readPem(pki.otherCa.cert) })
    await expect(untrusting).rejects.toThrow()
    await waitFor(() => logCount('TLS handshake failed') > 0, 'the failed handshake in the log')
    const res = await request(`${gateway.url}/after-failure`, { dispatcher: agent })
    expect(res.statusCode).toBe(200)
    await res.body.dump()
  })
})

function readSerial(certPath: string): string {
  return new X509Certificate(readPem(certPath)).serialNumber
}

describe('bouncer check, at start', () => {
  const check = (tls: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const loaded = loadConfigText(stringify({ server: { tls, ...extra } }), join(pki.dir, 'check.yaml'))
    return loaded.diagnostics.map((d) => `${d.severity}: ${d.path.join('.')}: ${d.message}`)
  }

  it('refuses a key that does not match the certificate', () => {
    const other = pki.ca.issue('mismatch', { usage: 'server', san: ['IP:127.0.0.1'] })
    expect(check({ cert: pki.server.cert, key: other.key })).toEqual([expect.stringMatching(/^error: server\.tls\.key: the key in .* does not match the certificate "CN=server"/)])
  })

  it('refuses files that cannot be read or are not PEM', () => {
    const notPem = join(pki.dir, 'not-pem.crt')
    writeFileSync(notPem, 'hello')
    expect(check({ cert: join(pki.dir, 'missing.crt'), key: notPem })).toEqual([
      expect.stringMatching(/^error: server\.tls\.cert: cannot read .*missing\.crt: no such file$/),
      expect.stringMatching(/^error: server\.tls\.key: .*not-pem\.crt holds no PEM private key/),
    ])
  })

  it('refuses a device and a file larger than any PEM without reading them (check, a start and a reload read them on one thread)', () => {
    // /dev/zero was read until check held 20 GB. (A named pipe is read as a file is: a program may feed it.)
    expect(check({ cert: '/dev/zero', key: pki.server.key })).toEqual([
      'error: server.tls.cert: cannot read /dev/zero: it is not a regular file (a device or a socket)',
    ])
    const huge = join(pki.dir, 'huge.crt')
    writeFileSync(huge, '')
    truncateSync(huge, 11 * 1024 * 1024)
    expect(check({ cert: huge, key: pki.server.key })).toEqual([`error: server.tls.cert: cannot read ${huge}: it holds 11,534,336 bytes, more than any PEM file (at most 10 MB)`])
  })

  it('warns about an expired certificate, and refuses h2 without TLS and client_auth without client_ca', () => {
    const expired = pki.ca.issue('expired-server', { usage: 'server', san: ['IP:127.0.0.1'], notBefore: '20200101000000Z', notAfter: '20200201000000Z' })
    expect(check({ cert: expired.cert, key: expired.key })).toEqual([expect.stringMatching(/^warning: server\.tls\.cert: the certificate "CN=expired-server" expired at 2020-02-01T00:00:00\.000Z/)])
    expect(check({ cert: pki.server.cert, key: pki.server.key, client_auth: 'require' })).toEqual(['error: server.tls.client_auth: client_auth: require needs client_ca, the CAs client certificates must chain to'])
    const noTls = loadConfigText(stringify({ server: { http2: true } }), 'check.yaml')
    expect(noTls.diagnostics.map((d) => d.message)).toEqual(['HTTP/2 is offered by ALPN on a TLS listener: set server.tls (cleartext h2c is not supported)'])
  })

  it('resolves relative paths from the config file\'s folder', () => {
    const loaded = loadConfigText(stringify({ server: { tls: { cert: 'Test CA/server.crt', key: 'Test CA/server.key' } } }), join(pki.dir, 'bouncer.yaml'))
    expect(loaded.diagnostics).toEqual([])
    expect(loaded.config?.server.tls?.cert).toBe(join(pki.dir, 'Test CA/server.crt'))
  })
})
