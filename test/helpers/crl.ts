// Certificate revocation lists of the test CAs (test/helpers/certs.ts), made with `openssl ca`: each
// CA's directory holds the ca.cnf and index.txt its certificates were issued with, so `-revoke`
// marks one of them revoked and `-gencrl` writes the CRL listing every one revoked so far.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { opensslDate, type Issued, type TestCa } from './certs.ts'

const HOUR = 3_600_000

function opensslCa(ca: TestCa, args: string[]): void {
  execFileSync('openssl', ['ca', '-batch', '-config', join(dirname(ca.cert), 'ca.cnf'), '-cert', ca.cert, '-keyfile', ca.key, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
}

/** Marks a certificate `ca` issued (a leaf, or an intermediate CA's certificate) as revoked in `ca`'s database. */
export function revoke(ca: TestCa, issued: Pick<Issued, 'cert'>): void {
  opensslCa(ca, ['-revoke', issued.cert])
}

export interface CrlOptions {
  /** thisUpdate; default an hour ago. */
  thisUpdate?: Date
  /** nextUpdate; default a day from now. */
  nextUpdate?: Date
}

/** `ca`'s CRL as of now (every certificate revoked so far), written to `out`; returns its PEM. */
export function writeCrl(ca: TestCa, out: string, options: CrlOptions = {}): string {
  opensslCa(ca, [
    '-gencrl', '-out', out,
    '-crl_lastupdate', opensslDate(options.thisUpdate ?? new Date(Date.now() - HOUR)),
    '-crl_nextupdate', opensslDate(options.nextUpdate ?? new Date(Date.now() + 24 * HOUR)),
  ])
  return readFileSync(out, 'latin1')
}

/** One PEM file of several CRLs, as server.tls.client_crl takes them. */
export function writeCrlBundle(out: string, pems: readonly string[]): string {
  writeFileSync(out, pems.join(''))
  return out
}
