// RFC 9440's fields, read as a TLS-terminating proxy writes them: the RFC's own example (Appendix A)
// parsed and its chain verified; hostile or careless values (a PEM, URL-encoded, two certificates,
// bad base64, a forged signature, a flood of chain entries) refused with a reason, never thrown past
// the verifier (a 500).
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { CredentialRefused, type CredentialInput } from '../../../src/identity/authenticate.ts'
import { verifyCertificatePath } from '../../../src/identity/certificate-path.ts'
import { ClientCertFieldError, parseClientCertChainField, parseClientCertField } from '../../../src/identity/client-cert-field.ts'
import { clientCertVerifier } from '../../../src/identity/x509.ts'
import { GatewayError } from '../../../src/errors/index.ts'

const FIXTURES = new URL('../../fixtures/rfc9440/', import.meta.url)
const [leaf, intermediate, root] = (readFileSync(new URL('chain.pem', FIXTURES), 'latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [])
  .map((pem) => new X509Certificate(pem)) as [X509Certificate, X509Certificate, X509Certificate]

/** Figures 2 and 3 as sent: the RFC's display line breaks (a newline and a space) removed. */
const FIELDS = Object.fromEntries(readFileSync(new URL('fields.txt', FIXTURES), 'latin1').replace(/\n /g, '').trim().split('\n').map((line) => {
  const colon = line.indexOf(': ')
  return [line.slice(0, colon), line.slice(colon + 2)]
})) as { 'Client-Cert': string; 'Client-Cert-Chain': string }

const CERT = 'Client-Cert'
const CHAIN = 'Client-Cert-Chain'

function refusalOf(parse: () => unknown): string {
  try {
    parse()
  } catch (err) {
    expect(err).toBeInstanceOf(ClientCertFieldError)
    return (err as Error).message
  }
  throw new Error('parsed')
}

describe('RFC 9440 fields', () => {
  it("read the RFC's example: the certificate, and its chain as a list", () => {
    expect(parseClientCertField([FIELDS['Client-Cert']], CERT)).toEqual(leaf.raw)
    expect(parseClientCertChainField([FIELDS['Client-Cert-Chain']], CHAIN)).toEqual([intermediate.raw, root.raw])
  })

  it('take the chain split over field lines, spaces around the commas, parameters, and base64 without padding', () => {
    const [first, second] = FIELDS['Client-Cert-Chain'].split(', ') as [string, string]
    expect(parseClientCertChainField([first, second], CHAIN)).toEqual([intermediate.raw, root.raw])
    expect(parseClientCertChainField([`  ${first} ,\t${second}`], CHAIN)).toEqual([intermediate.raw, root.raw])
    expect(parseClientCertField([`${FIELDS['Client-Cert']};proxy=haproxy;v=1;ok=?1`], CERT)).toEqual(leaf.raw)
    const unpadded = `:${leaf.raw.toString('base64').replace(/=+$/, '')}:`
    expect(parseClientCertField([unpadded], CERT)).toEqual(leaf.raw)
    expect(parseClientCertChainField([], CHAIN)).toEqual([])
  })

  it('refuse what is not one Byte Sequence of base64, saying what it is', () => {
    const pem = readFileSync(new URL('chain.pem', FIXTURES), 'latin1').split('-----END CERTIFICATE-----')[0] as string
    expect(refusalOf(() => parseClientCertField([pem.replace(/\n/g, ' ')], CERT))).toMatch(/holds a PEM certificate: send the DER in base64 between colons/)
    expect(refusalOf(() => parseClientCertField([encodeURIComponent(pem)], CERT))).toMatch(/holds a PEM certificate/)
    expect(refusalOf(() => parseClientCertField([leaf.raw.toString('base64')], CERT))).toMatch(/is not an RFC 9440 certificate/)
    expect(refusalOf(() => parseClientCertField([FIELDS['Client-Cert'], FIELDS['Client-Cert']], CERT))).toBe('Client-Cert came 2 times: RFC 9440 sends one certificate, once.')
    expect(refusalOf(() => parseClientCertField([FIELDS['Client-Cert-Chain']], CERT))).toMatch(/holds a list of 2/)
    expect(refusalOf(() => parseClientCertField([':AAA!BBB:'], CERT))).toMatch(/is not base64 between its colons/)
    expect(refusalOf(() => parseClientCertField([':A:'], CERT))).toMatch(/is not base64/)
    expect(refusalOf(() => parseClientCertField(['::'], CERT))).toMatch(/an empty certificate/)
    expect(refusalOf(() => parseClientCertField([':==:'], CERT))).toMatch(/an empty certificate/)
    expect(refusalOf(() => parseClientCertChainField([`${FIELDS['Client-Cert']}, :A=:`], CHAIN))).toMatch(/an empty certificate/)
    expect(refusalOf(() => parseClientCertField([''], CERT))).toMatch(/holds no certificate/)
    expect(refusalOf(() => parseClientCertField([`${FIELDS['Client-Cert']}junk`], CERT))).toMatch(/after a certificate/)
    expect(refusalOf(() => parseClientCertField([`${FIELDS['Client-Cert']};=1`], CERT))).toMatch(/parameter without a valid key/)
    expect(refusalOf(() => parseClientCertChainField([`${FIELDS['Client-Cert']},`], CHAIN))).toMatch(/ends with a comma/)
    expect(refusalOf(() => parseClientCertField([':AAAA'], CERT))).toMatch(/is not an RFC 9440 certificate/)
  })
})

describe('a forwarded chain', () => {
  it("links the RFC's example leaf through its intermediate to the trusted root", () => {
    const verdict = verifyCertificatePath(leaf, [intermediate, root], [root])
    expect(verdict).toMatchObject({ ok: true })
    expect((verdict as { path: readonly X509Certificate[] }).path.map((c) => c.subject)).toEqual([leaf.subject, intermediate.subject, root.subject])
    // The root may be left out (RFC 9440 §2.3), and a trusted intermediate is an anchor of its own.
    expect(verifyCertificatePath(leaf, [intermediate], [root])).toMatchObject({ ok: true })
    expect(verifyCertificatePath(leaf, [], [intermediate])).toMatchObject({ ok: true })
  })

  it('is refused without the intermediate, under an untrusted root, and with a forged signature', () => {
    expect(verifyCertificatePath(leaf, [], [root])).toEqual({ ok: false, code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' })
    const other = new X509Certificate(readFileSync(new URL('../../../examples/tls/certs/mesh-ca.crt', import.meta.url)))
    expect(verifyCertificatePath(leaf, [intermediate, root], [other])).toEqual({ ok: false, code: 'SELF_SIGNED_CERT_IN_CHAIN' })
    const forged = Buffer.from(leaf.raw)
    forged[forged.length - 3] = (forged[forged.length - 3] as number) ^ 0x01 // a byte of the signature
    expect(verifyCertificatePath(new X509Certificate(forged), [intermediate], [root])).toMatchObject({ ok: false })
  })
})

describe('the client_cert verifier, from a trusted proxy', () => {
  const fields = { header: 'Client-Cert', chainHeader: 'Client-Cert-Chain' }
  const issuers = [{ name: 'partners', cas: [root] }]
  const input = (rawHeaders: string[], viaTrustedProxy = true): CredentialInput => ({ headers: null, rawHeaders, query: '', socket: {} as Socket, viaTrustedProxy })
  const rfcFields = [CERT, FIELDS['Client-Cert'], CHAIN, FIELDS['Client-Cert-Chain']]

  it("takes the RFC's example as the identity a handshake's certificate gives (its CN, no URI SAN)", async () => {
    const verifier = clientCertVerifier(issuers, () => Date.parse('2020-06-01T00:00:00Z'), fields)
    expect(verifier.presentIn(input(rfcFields))).toBe(true)
    const { identity, credential } = await verifier.authenticate(input(rfcFields))
    expect(credential).toBe('client_cert')
    expect(identity).toMatchObject({ issuerName: 'partners', sub: 'BC', iss: "C=US, O=Let's Authenticate, CN=Let's Authenticate Root Authority", clientId: null })
    expect(identity.claims).toMatchObject({ subject_dn: 'CN=BC', issuer_dn: "O=Let's Authenticate, CN=LA Intermediate CA", serial: '07' })
  })

  it('refuses it once expired, naming whose it was (the audit record does)', async () => {
    const verifier = clientCertVerifier(issuers, () => Date.parse('2026-01-01T00:00:00Z'), fields)
    const refused = await verifier.authenticate(input(rfcFields)).catch((err: unknown) => err)
    expect(refused).toBeInstanceOf(CredentialRefused)
    expect(refused).toMatchObject({ code: 'client_cert_required', detail: 'The client certificate "CN=BC" expired at 2021-01-23T22:55:33.000Z.', caller: { identity: { sub: 'BC' }, credential: 'client_cert' } })
  })

  it('ignores the fields from a peer that is not a trusted proxy', () => {
    const verifier = clientCertVerifier(issuers, () => Date.parse('2020-06-01T00:00:00Z'), fields)
    expect(verifier.presentIn(input(rfcFields, false))).toBe(false)
  })

  it('answers a hostile field with a 401 that says why, never a throw of another kind', async () => {
    const verifier = clientCertVerifier(issuers, () => Date.parse('2020-06-01T00:00:00Z'), fields)
    const cases: Array<[string[], RegExp]> = [
      [[CERT, ':bm90IGEgY2VydGlmaWNhdGU=:'], /Client-Cert is not a DER X\.509 certificate/],
      [[CERT, FIELDS['Client-Cert']], /is signed by another CA \("O=Let's Authenticate, CN=LA Intermediate CA"\), not one of the x509 issuers' ca/],
      [[CERT, FIELDS['Client-Cert'], CHAIN, Array.from({ length: 12 }, () => `:${intermediate.raw.toString('base64')}:`).join(', ')], /holds 12 certificates: a chain is at most 9/],
      [[CERT, `:${'A'.repeat(40_000)}:`], /is not a DER X\.509 certificate/],
      [[CERT, 'garbage'], /is not an RFC 9440 certificate/],
    ]
    for (const [rawHeaders, detail] of cases) {
      const refused = await verifier.authenticate(input(rawHeaders)).catch((err: unknown) => err)
      expect(refused).toBeInstanceOf(GatewayError)
      expect(refused).toMatchObject({ code: 'client_cert_required', status: 401, detail: expect.stringMatching(detail) })
    }
  })
})
