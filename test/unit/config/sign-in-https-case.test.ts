// A base_url's scheme is case-insensitive (RFC 3986 §3.1): `HTTPS://gw.example.com` was read as not
// https, and the session cookies (the console's too) went without Secure (the sessions probe's
// left item).
import { expect, it } from 'vitest'
import { cookieSecureByDefault, loadConfigText, reachedOverHttps } from '../../../src/config/index.ts'

it('takes an https base_url in any case as https', () => {
  for (const url of ['https://gw.example.com', 'HTTPS://gw.example.com', 'Https://gw.example.com']) expect(reachedOverHttps(url), url).toBe(true)
  for (const url of ['http://gw.example.com', 'HTTP://gw.example.com', undefined]) expect(reachedOverHttps(url), String(url)).toBe(false)
})

it('makes the sign-in cookie Secure by default for an upper-case HTTPS base_url', () => {
  const text = `issuers:
  - { name: sso, issuer: "https://sso.example.com", audiences: [api://bouncer] }
upstreams: [{ name: app, url: "http://127.0.0.1:9" }]
routes:
  - { id: app, path: /app/*, upstream: app, accept: [session] }
sign_in: { issuer: sso, client_id: bouncer, base_url: "HTTPS://gw.example.com", session: { store: memory } }
`
  const loaded = loadConfigText(text, 'bouncer.yaml', {})
  expect(loaded.diagnostics.filter((d) => d.severity === 'error')).toEqual([])
  expect(cookieSecureByDefault(loaded.config!)).toBe(true)
})
