// Two x509 issuers naming one CA: a certificate it signed is the first issuer's (identity/x509.ts
// takes the first issuer whose ca holds the CA its chain ends at), so the second issuer's trust
// rules can never match. A probe found `bouncer check` saying ok to it, and a workload that the
// config plainly granted a role (issuer: mesh2) answered 403 no_role. It is a check error now, as
// is an issuer without ca (all of client_ca) that the issuers before it left no CA; issuers that
// split client_ca pass, a catch-all after them included.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfigText } from '../../src/config/index.ts'
import { createPki, type TestCa, type TestPki } from '../helpers/certs.ts'

let pki: TestPki
let partnerCa: TestCa
let clientCa: string

beforeAll(() => {
  pki = createPki()
  partnerCa = pki.newCa('Partner CA')
  clientCa = join(pki.dir, 'client-ca.pem')
  writeFileSync(clientCa, [pki.ca.cert, partnerCa.cert].map((file) => readFileSync(file, 'utf8')).join(''))
})

afterAll(() => pki?.close())

function errors(issuers: object[]): string[] {
  const config = {
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: clientCa } },
    issuers,
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:1' }],
    routes: [{ id: 'r', path: '/r', upstream: 'api', accept: ['client_cert'] }],
  }
  return loadConfigText(stringify(config), join(pki.dir, 'check.yaml')).diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.path.join('.')}: ${d.message}`)
}

describe('bouncer check: one x509 issuer per client CA', () => {
  it('refuses a CA named by two x509 issuers, naming the issuer that would take its certificates', () => {
    expect(errors([{ name: 'mesh', type: 'x509', ca: pki.ca.cert }, { name: 'mesh2', type: 'x509', ca: pki.ca.cert }])).toEqual([
      'issuers.1.ca: "CN=Test CA, O=Bouncer tests" is already x509 issuer "mesh"\'s: a certificate is its first issuer\'s, so trust rules naming "mesh2" would never match it. Give each issuer its own CAs',
    ])
  })

  // A review: an issuer without ca after specific ones takes what they left of client_ca (a
  // catch-all after a partner's CA worked at run time); it is dead only when they left nothing.
  it('refuses an issuer without ca (all of client_ca) when the issuers before it took every CA, or one that comes after it', () => {
    expect(errors([{ name: 'mesh', type: 'x509', ca: pki.ca.cert }, { name: 'partner', type: 'x509', ca: partnerCa.cert }, { name: 'rest', type: 'x509' }])).toEqual([
      'issuers.2.type: "CN=Test CA, O=Bouncer tests", "CN=Partner CA, O=Bouncer tests" are already x509 issuer "mesh"\'s (without ca, this issuer takes all of server.tls.client_ca): a certificate is its first issuer\'s, so trust rules naming "rest" would never match it. Give each issuer its own CAs',
    ])
    expect(errors([{ name: 'mesh', type: 'x509' }, { name: 'partner', type: 'x509', ca: partnerCa.cert }])).toEqual([
      'issuers.1.ca: "CN=Partner CA, O=Bouncer tests" is already x509 issuer "mesh"\'s: a certificate is its first issuer\'s, so trust rules naming "partner" would never match it. Give each issuer its own CAs',
    ])
  })

  it('takes a catch-all issuer without ca after issuers that leave it a CA', () => {
    expect(errors([{ name: 'partner', type: 'x509', ca: partnerCa.cert }, { name: 'mesh', type: 'x509' }])).toEqual([])
  })

  it('takes issuers that split client_ca between them', () => {
    expect(errors([{ name: 'mesh', type: 'x509', ca: pki.ca.cert }, { name: 'partner', type: 'x509', ca: partnerCa.cert }])).toEqual([])
    expect(errors([{ name: 'mesh', type: 'x509' }])).toEqual([])
  })
})
