// `bouncer check` on how callers get in (SPEC "Callers, added"): api_keys, issuers[].introspection,
// routes[].cors. What cannot work or would open a hole is an error at its line and column.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const UPSTREAM = 'upstreams: [{ name: api, url: "http://127.0.0.1:9" }]\n'

function check(text: string) {
  const loaded = loadConfigText(`${UPSTREAM}${text}`, 'bouncer.yaml', {})
  return { config: loaded.config, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)), refs: loaded.secretRefs }
}

describe('api_keys', () => {
  it('defaults to a SQLite store beside the config, the X-API-Key header and a 500 ms cache', () => {
    const { config, lines } = check('api_keys: { store: sqlite }\n')
    expect(lines).toEqual([])
    expect(config?.api_keys).toMatchObject({ store: { type: 'sqlite', path: expect.stringMatching(/\/data\/api-keys\.db$/) }, header: 'X-API-Key', cache: 500 })
  })

  it('takes a PostgreSQL store with its url, as the audit sink does', () => {
    expect(check('api_keys: { store: { type: postgres, url: "postgres://db/bouncer" } }\n').config?.api_keys?.store).toEqual({ type: 'postgres', url: 'postgres://db/bouncer', schema: 'bouncer' })
    expect(check('api_keys: { store: postgres }\n').lines).toEqual([
      'bouncer.yaml:2:20: api_keys.store: api_keys.store is sqlite, {type: sqlite, path}, or {type: postgres, url, schema} (PostgreSQL needs its url)',
    ])
  })

  it('keeps a revocation within a second: the cache is at most 1s', () => {
    expect(check('api_keys: { cache: 2s }\n').lines).toEqual(['bouncer.yaml:2:20: api_keys.cache: at most 1s: a revoked key must be refused within a second on every instance'])
  })

  it('is what a route accepting api_key, and a trust rule naming issuer api-keys, need', () => {
    const text = 'routes: [{ id: r, path: /r, upstream: api, accept: [api_key] }]\nroles: [{ name: bi, assumed_by: [{ issuer: api-keys }] }]\n'
    expect(check(text).lines.filter((l) => !l.includes('warning'))).toEqual([
      'bouncer.yaml:2:53: routes[0].accept[0]: accepting api_key credentials needs api_keys (e.g. api_keys: { store: sqlite })',
      'bouncer.yaml:3:44: roles[0].assumed_by[0].issuer: issuer "api-keys" is the gateway\'s API keys: configure api_keys to use them',
    ])
    expect(check(`${text}api_keys: {}\n`).lines.filter((l) => !l.includes('warning'))).toEqual([])
  })

  it('reserves the issuer name api-keys, and refuses a header the gateway manages', () => {
    expect(check('issuers: [{ name: api-keys, issuer: "https://x/", audiences: [a] }]\n').lines).toContain(
      'bouncer.yaml:2:19: issuers[0].name: the issuer name "api-keys" is reserved: trust rules name the gateway\'s API keys with it',
    )
    expect(check('api_keys: { header: Authorization }\n').lines).toEqual([
      'bouncer.yaml:2:21: api_keys.header: the gateway manages authorization itself; it cannot carry API keys: Authorization: Bearer bk_… is accepted anyway',
    ])
    expect(check('api_keys: { header: X-Forwarded-Key }\n').lines).toHaveLength(1)
  })
})

describe('issuers[].introspection', () => {
  const issuer = (name: string, extra = '') => `  - { name: ${name}, issuer: "https://${name}/", audiences: [a], introspection: { url: "https://${name}/introspect", client_id: bouncer, client_secret: s${extra} } }\n`

  it('has defaults: a 60 s cache, refusals kept 5 s, a 5 s timeout', () => {
    expect((check(`issuers:\n${issuer('legacy')}`).config?.issuers[0] as { introspection?: unknown } | undefined)?.introspection).toEqual({ url: 'https://legacy/introspect', client_id: 'bouncer', client_secret: 's', cache: 60_000, negative_cache: 5_000, timeout: 5_000 })
  })

  it('is one issuer\'s at most: an opaque token does not say whose it is', () => {
    expect(check(`issuers:\n${issuer('one')}${issuer('two')}`).lines).toEqual([
      'bouncer.yaml:4:58: issuers[1].introspection: issuers[0] introspects already: an opaque token names no issuer, so one issuer may introspect (a token is never sent to a provider that did not issue it)',
    ])
  })

  it('takes its client secret from the secrets store', () => {
    const { lines, refs } = check(`secrets: { store: { type: env } }\nissuers:\n  - { name: l, issuer: "https://l/", audiences: [a], introspection: { url: "https://l/i", client_id: b, client_secret: "\${secret:idp}" } }\n`)
    expect(lines).toEqual([])
    expect(refs).toEqual([{ name: 'idp', path: ['issuers', 0, 'introspection', 'client_secret'] }])
    expect(check('issuers:\n  - { name: l, issuer: "https://l/", audiences: [a], introspection: { url: "https://l/i", client_id: "${secret:idp}", client_secret: s } }\n').lines[0]).toMatch(/introspection\.client_id: \$\{secret:idp\} may only stand in/)
  })
})

describe('routes[].cors', () => {
  const route = (cors: string, extra = '') => check(`routes: [{ id: r, path: /r, upstream: api, methods: [GET]${extra}, cors: ${cors} }]\n`)

  it('takes origins as browsers send them, never null', () => {
    expect(route('{ origins: ["https://lookerstudio.google.com"] }').config?.routes[0]?.cors).toEqual({
      origins: ['https://lookerstudio.google.com'], methods: ['GET'], headers: [], expose_headers: [], credentials: false, max_age: 600_000,
    })
    expect(route('{ origins: ["https://lookerstudio.google.com/"] }').lines[0]).toMatch(/would never match: browsers send "https:\/\/lookerstudio.google.com"/)
    expect(route('{ origins: ["https://Example.com:443"] }').lines[0]).toMatch(/browsers send "https:\/\/example.com"/)
    expect(route('{ origins: ["null"] }').lines[0]).toMatch(/origin "null" is what sandboxed frames and local files send/)
  })

  it('refuses credentials with any origin, and warns of a method the route does not take', () => {
    expect(route('{ origins: ["*"], credentials: true }', ', public: true').lines).toEqual([
      'bouncer.yaml:2:111: routes[0].cors.credentials: credentials: true with origins ["*"] would let every web page send its visitors\' cookies here and read the answer: list the origins',
    ])
    expect(route('{ origins: ["https://a.example"], methods: [GET, POST] }', ', public: true').lines).toEqual([
      'bouncer.yaml:2:129: warning: routes[0].cors.methods[1]: route "r" does not take POST: a preflight for it gets 405 before CORS applies',
    ])
  })
})
