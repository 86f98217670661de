// Certificates made by the tests themselves with the `openssl` command, into a temp dir: a test CA,
// a server certificate for 127.0.0.1 and localhost, and client certificates of any shape (a SPIFFE
// URI SAN, a CN only, expired, not yet valid, from another CA). `openssl ca` is used because it is
// the one command of OpenSSL 3.0 that sets a certificate's start and end dates freely.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Agent, request } from 'undici'
import { allowAnyCaller, startTestGateway, type TestGateway } from './gateway.ts'

export interface Issued {
  /** Paths of the PEM files. */
  cert: string
  key: string
}

export interface TestCa extends Issued {
  name: string
  /** A certificate signed by this CA. Dates are `YYYYMMDDHHMMSSZ`; by default valid from an hour ago for a year. */
  issue(name: string, options: IssueOptions): Issued
}

export interface IssueOptions {
  /** `/CN=…/O=…`; default `/CN=<name>`. */
  subject?: string
  /** subjectAltName entries, e.g. `URI:spiffe://prod/ns/etl/sa/loader`, `DNS:localhost`, `IP:127.0.0.1`. */
  san?: string[]
  usage: 'server' | 'client'
  /** keyUsage's bits; default digitalSignature. */
  keyUsage?: string
  notBefore?: string
  notAfter?: string
}

export interface TestPki {
  dir: string
  ca: TestCa
  /** Signed by `ca`, for 127.0.0.1 and localhost. */
  server: Issued
  /** A second, unrelated CA (its certificates are "from another CA"). */
  otherCa: TestCa
  /** Makes a new CA in the same directory: a root, or an intermediate signed by `parent`. */
  newCa(name: string, parent?: TestCa): TestCa
  close(): void
}

/**
 * One request to the gateway over TLS (the test CA trusted, SNI localhost), presenting `cert` or no
 * certificate, on a connection of its own: what a reload or a clock changes is read by its handshake.
 */
export async function requestWithCertificate(url: string, pki: TestPki, cert: Issued | null): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string; json(): Record<string, unknown> }> {
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost', ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) } })
  try {
    const res = await request(url, { dispatcher: agent })
    const text = await res.body.text()
    return { status: res.statusCode, headers: res.headers, text, json: () => (text === '' ? {} : (JSON.parse(text) as Record<string, unknown>)) }
  } finally {
    await agent.close()
  }
}

export interface ClientCertConfigOptions {
  /** The x509 issuer `mesh`'s `ca`, the CAs it vouches for; by default none (any CA of client_ca). */
  issuerCa?: string
  /** The `mesh` subjects that assume role `etl`; by default the SPIFFE IDs below spiffe://prod/ns/etl/. */
  subjects?: string[]
  /** Any `mesh` caller may do anything (allowAnyCaller), in place of role `etl` and policy `read`. */
  anyCaller?: boolean
  /** Upstream `api` is sent an identity assertion (X-Bouncer-Assertion). */
  identityAssertion?: boolean
  /** Issuers beside `mesh`. */
  issuers?: object[]
  /** Routes beside `data`, to upstream `api`; policy `read` allows GET on them too. */
  routes?: Array<{ id: string } & Record<string, unknown>>
  /** A public route `open` (/open) to upstream `api` as well. */
  open?: boolean
  /** The config's `server` (with clientCertGateway, its `tls` is added). */
  server?: Record<string, unknown>
}

/**
 * The config the client-certificate tests share: x509 issuer `mesh`, role `etl` (its workloads),
 * policy `read` (GET), upstream `api` at `upstreamUrl`, route `data` (/data/*) taking client
 * certificates only. Where they come from (server.tls, or a proxy's fields) is `server`'s.
 */
export function clientCertConfig(upstreamUrl: string, options: ClientCertConfigOptions = {}): Record<string, unknown> {
  const routes = [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }, ...(options.routes ?? [])]
  return {
    ...(options.server ? { server: options.server } : {}),
    issuers: [{ name: 'mesh', type: 'x509', ...(options.issuerCa ? { ca: options.issuerCa } : {}) }, ...(options.issuers ?? [])],
    ...(options.anyCaller ? allowAnyCaller(['mesh']) : {
      roles: [{ name: 'etl', assumed_by: (options.subjects ?? ['spiffe://prod/ns/etl/*']).map((subject) => ({ issuer: 'mesh', subject })), policies: ['read'] }],
      policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: routes.map((route) => route.id) }] }],
    }),
    upstreams: [{ name: 'api', url: upstreamUrl, ...(options.identityAssertion ? { identity_assertion: true } : {}) }],
    routes: options.open ? [...routes, { id: 'open', path: '/open', upstream: 'api', public: true }] : routes,
  }
}

/** server.tls with the test PKI's server certificate, asking for client certificates (optional) that chain to `clientCa` (default the test CA). */
export function clientCertTls(pki: TestPki, clientCa: string = pki.ca.cert): Record<string, unknown> {
  return { cert: pki.server.cert, key: pki.server.key, client_ca: clientCa, client_auth: 'optional' }
}

/** An in-process gateway of clientCertConfig over TLS (clientCertTls): `clientCa` is server.tls.client_ca. */
export function clientCertGateway(pki: TestPki, upstreamUrl: string, options: ClientCertConfigOptions & { clientCa?: string } = {}): Promise<TestGateway> {
  return startTestGateway(clientCertConfig(upstreamUrl, { ...options, server: { ...options.server, tls: clientCertTls(pki, options.clientCa) } }))
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** YYYYMMDDHHMMSSZ, the date form `openssl ca -startdate/-enddate` takes. */
export function opensslDate(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`
}

const HOUR = 3_600_000

function createCa(dir: string, name: string, parent?: TestCa): TestCa {
  const home = join(dir, name)
  mkdirSync(join(home, 'issued'), { recursive: true })
  writeFileSync(join(home, 'index.txt'), '')
  writeFileSync(join(home, 'serial'), '1000\n')
  writeFileSync(join(home, 'ca.cnf'), [
    '[ ca ]', 'default_ca = test',
    '[ test ]', `dir = ${home}`, 'database = $dir/index.txt', 'new_certs_dir = $dir/issued', 'serial = $dir/serial',
    'default_md = sha256', 'policy = any', 'unique_subject = no', 'email_in_dn = no', 'copy_extensions = none',
    '[ any ]', 'commonName = optional', 'organizationName = optional', 'organizationalUnitName = optional', '',
  ].join('\n'))
  const cert = join(home, 'ca.crt')
  const key = join(home, 'ca.key')
  if (parent) {
    // An intermediate: its CSR signed by the parent CA with a CA's extensions.
    writeFileSync(join(home, 'ca.ext'), 'basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n')
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', join(home, 'ca.csr'), '-subj', `/CN=${name}/O=Bouncer tests`], home)
    openssl([
      'ca', '-batch', '-notext', '-config', join(dirname(parent.cert), 'ca.cnf'), '-cert', parent.cert, '-keyfile', parent.key,
      '-in', join(home, 'ca.csr'), '-out', cert, '-extfile', join(home, 'ca.ext'),
      '-startdate', opensslDate(new Date(Date.now() - HOUR)), '-enddate', opensslDate(new Date(Date.now() + 3650 * 24 * HOUR)),
    ], home)
  } else {
    openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
      '-days', '3650', '-subj', `/CN=${name}/O=Bouncer tests`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ], home)
  }
  return {
    name,
    cert,
    key,
    issue(leaf, options) {
      const base = join(home, leaf)
      const extensions = [
        'basicConstraints = critical,CA:FALSE',
        `keyUsage = critical,${options.keyUsage ?? 'digitalSignature'}`,
        `extendedKeyUsage = ${options.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
      ]
      if (options.san && options.san.length > 0) extensions.push(`subjectAltName = ${options.san.join(',')}`)
      writeFileSync(`${base}.ext`, `${extensions.join('\n')}\n`)
      openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', options.subject ?? `/CN=${leaf}`], home)
      openssl([
        'ca', '-batch', '-notext', '-config', join(home, 'ca.cnf'), '-cert', cert, '-keyfile', key,
        '-in', `${base}.csr`, '-out', `${base}.crt`, '-extfile', `${base}.ext`,
        '-startdate', options.notBefore ?? opensslDate(new Date(Date.now() - HOUR)),
        '-enddate', options.notAfter ?? opensslDate(new Date(Date.now() + 365 * 24 * HOUR)),
      ], home)
      return { cert: `${base}.crt`, key: `${base}.key` }
    },
  }
}

export function createPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-pki-'))
  const ca = createCa(dir, 'Test CA')
  const otherCa = createCa(dir, 'Other CA')
  const server = ca.issue('server', { usage: 'server', san: ['DNS:localhost', 'IP:127.0.0.1'] })
  return {
    dir,
    ca,
    server,
    otherCa,
    newCa: (name, parent) => createCa(dir, name, parent),
    close: () => rmSync(dir, { recursive: true, force: true }),
  }
}
