// Found by the identity probe (a careless operator): `issuer: sso.example.com` — the provider's
// host without its scheme, and no jwks_uri — passed `bouncer check`; serve then tried discovery at
// "sso.example.com/.well-known/openid-configuration", which fetch cannot parse, retrying for good,
// and every token for the issuer was 503 identity_provider_unavailable. An issuer whose keys are
// found through discovery must be a URL discovery can read; with jwks_uri, or introspection alone,
// the iss may be any string.
import { expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const BASE = `upstreams:
  - { name: api, url: "http://127.0.0.1:9500" }
routes:
  - { id: data, path: /data, upstream: api }
issuers:
`

function lines(issuer: string): string[] {
  const loaded = loadConfigText(`${BASE}  - ${issuer}\n`, 'bouncer.yaml', {})
  return loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic('bouncer.yaml', d))
}

it('refuses an issuer found through discovery that is no http(s) URL, naming it at its line', () => {
  expect(lines('{ name: corp, issuer: sso.example.com, audiences: [api] }')).toEqual([
    'bouncer.yaml:6:27: issuers[0].issuer: issuer "sso.example.com" is no http(s) URL without query or fragment, so its keys cannot be found through discovery ({issuer}/.well-known/openid-configuration): write the iss its tokens carry, with its scheme, or give jwks_uri',
  ])
  expect(lines('{ name: corp, issuer: "https://sso.example.com/?tenant=a", audiences: [api] }')).toHaveLength(1)
})

it('takes a discoverable URL, and any iss where jwks_uri or introspection alone says where to check', () => {
  expect(lines('{ name: corp, issuer: "https://sso.example.com/realms/corp", audiences: [api] }')).toEqual([])
  expect(lines('{ name: corp, issuer: sso.example.com, audiences: [api], jwks_uri: "https://sso.example.com/keys" }')).toEqual([])
  expect(lines('{ name: corp, issuer: legacy-idp, audiences: [api], introspection: { url: "https://idp/introspect", client_id: b, client_secret: s } }')).toEqual([])
})
