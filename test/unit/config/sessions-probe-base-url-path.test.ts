// Found by the sessions probe: sign_in.base_url (and admin.base_url, the console's) with a path,
// a query or credentials (`https://corp.example.com/bouncer`, the gateway behind a path-prefix
// proxy) was accepted, and only its origin was used: the redirect URI sent to the provider was
// `https://corp.example.com/.bouncer/callback`, the path silently dropped, so the provider refused
// the sign-in (redirect_uri mismatch) while the config said what the operator meant. The gateway's
// sign-in endpoints are at its root: base_url is an origin, and anything more is refused at load.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const BASE = `issuers:
  - { name: sso, issuer: "https://sso.example.com", audiences: [api://bouncer] }
roles: [{ name: admins, assumed_by: [{ issuer: sso, claims: { groups: admins } }], policies: [] }]
upstreams: [{ name: app, url: "http://127.0.0.1:9" }]
routes:
  - { id: app, path: /app/*, upstream: app, accept: [session, bearer] }
`

function errors(text: string): string[] {
  const loaded = loadConfigText(`${BASE}${text}`, 'bouncer.yaml', {})
  return loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic('bouncer.yaml', d))
}

describe('base_url is an origin', () => {
  it.each([
    'https://corp.example.com/bouncer',
    'https://corp.example.com/bouncer/',
    'https://corp.example.com/?x=1',
    'https://user:pass@corp.example.com',
  ])('sign_in.base_url %s is refused, saying why', (url) => {
    const lines = errors(`sign_in: { issuer: sso, client_id: bouncer, base_url: "${url}" }\n`)
    expect(lines.some((line) => line.includes('base_url') && line.includes('origin'))).toBe(true)
  })

  it('admin.base_url the same', () => {
    const lines = errors(`sign_in: { issuer: sso, client_id: bouncer }\nadmin: { roles: [admins], base_url: "https://admin.example.com/console" }\n`)
    expect(lines.some((line) => line.includes('admin') && line.includes('base_url') && line.includes('origin'))).toBe(true)
  })

  it.each(['https://corp.example.com', 'https://corp.example.com/', 'http://127.0.0.1:8080'])('%s is taken', (url) => {
    expect(errors(`sign_in: { issuer: sso, client_id: bouncer, base_url: "${url}" }\n`)).toEqual([])
  })
})
