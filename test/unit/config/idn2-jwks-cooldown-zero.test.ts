// Found by the identity probe (a careless operator): `jwks_cooldown: 0s` passed `bouncer check`
// without a word, yet it turns off what README promises of the cool-down ("a flood of bogus kids
// cannot hammer" the provider): every token naming an unknown kid fetches the issuer's keys again,
// so any caller, unauthenticated, has the gateway fetch them as fast as it sends such tokens (with
// 0s, 20 bogus kids in a row were 20 fetches). Allowed (a test bed may want it), but warned of.
import { expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const BASE = `upstreams:
  - { name: api, url: "http://127.0.0.1:9500" }
routes:
  - { id: data, path: /data, upstream: api }
issuers:
`

function warnings(issuer: string): string[] {
  const loaded = loadConfigText(`${BASE}  - ${issuer}\n`, 'bouncer.yaml', {})
  expect(loaded.diagnostics.filter((d) => d.severity === 'error')).toEqual([])
  return loaded.diagnostics.filter((d) => d.severity === 'warning').map((d) => formatDiagnostic('bouncer.yaml', d))
}

it('warns of a 0s jwks_cooldown at its line', () => {
  expect(warnings('{ name: corp, issuer: "https://sso.example.com", audiences: [api], jwks_cooldown: 0s }')).toEqual([
    expect.stringMatching(/^bouncer\.yaml:6:\d+: warning: issuers\[0\]\.jwks_cooldown: 0s: every token naming a kid issuer "corp" does not publish fetches its keys again/),
  ])
})

it('says nothing of a cool-down, or of an issuer that only introspects', () => {
  expect(warnings('{ name: corp, issuer: "https://sso.example.com", audiences: [api] }')).toEqual([])
  expect(warnings('{ name: corp, issuer: "https://sso.example.com", audiences: [api], jwks_cooldown: 1s }')).toEqual([])
  expect(warnings('{ name: corp, issuer: legacy, audiences: [api], jwks_cooldown: 0s, introspection: { url: "https://idp/introspect", client_id: b, client_secret: s } }')).toEqual([])
})
