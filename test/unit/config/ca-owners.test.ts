// caOwners (src/config/server-tls.ts): the one rule for which x509 issuer a CA belongs to, read by
// the verifier (identity/x509.ts), `bouncer check` (tls-checks.ts) and explain alike.
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { caOwners } from '../../../src/config/index.ts'

const [, intermediate, root] = (readFileSync(new URL('../../fixtures/rfc9440/chain.pem', import.meta.url), 'latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [])
  .map((pem) => new X509Certificate(pem)) as [X509Certificate, X509Certificate, X509Certificate]

describe('caOwners', () => {
  it('gives a CA two issuers name to the first, in the issuers\' order and then their CAs\'', () => {
    const first = { name: 'first', cas: [root] }
    const second = { name: 'second', cas: [intermediate, root] }
    const owners = caOwners([first, second])
    expect([...owners.entries()].map(([print, { issuer, ca }]) => [print, issuer.name, ca])).toEqual([
      [root.fingerprint256, 'first', root],
      [intermediate.fingerprint256, 'second', intermediate],
    ])
  })

  it('keeps a CA listed twice by one issuer once, and owns nothing without issuers', () => {
    expect(caOwners([{ name: 'only', cas: [root, root] }]).size).toBe(1)
    expect(caOwners([]).size).toBe(0)
  })
})
