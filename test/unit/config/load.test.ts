import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function check(text: string, env: NodeJS.ProcessEnv = {}) {
  const loaded = loadConfigText(text, 'bouncer.yaml', env)
  return { loaded, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

const BASE = `upstreams:
  - name: sales-api
    url: http://127.0.0.1:9500
routes:
  - id: sales.daily
    path: /sales/daily/:region
    upstream: sales-api
    public: true
`

describe('loading bouncer.yaml', () => {
  it('accepts a valid file and fills in the defaults', () => {
    const { loaded, lines } = check(BASE)
    expect(lines).toEqual([])
    expect(loaded.config?.server.listen).toMatchObject({ host: '127.0.0.1', port: 8080 })
    expect(loaded.config?.server.max_header_bytes).toBe(16_384)
    expect(loaded.config?.upstreams[0]?.timeout).toBe(30_000)
    expect(loaded.config?.routes[0]?.methods).toEqual(['*'])
    expect(loaded.config?.audit.durability).toBe('batched')
  })

  it('points at an unknown upstream with its line and column (the SPEC example)', () => {
    const { loaded, lines } = check(BASE.replace('upstream: sales-api', 'upstream: sales'))
    expect(loaded.config).toBeUndefined()
    expect(lines).toEqual(['bouncer.yaml:7:15: routes[0].upstream: unknown upstream "sales"'])
  })

  it('reports an unknown key at the key, even deep down', () => {
    const { lines } = check(`${BASE}    retries: 3\n`)
    expect(lines).toEqual(['bouncer.yaml:9:5: routes[0].retries: unknown key "retries"'])
  })

  it('reports every problem, not just the first', () => {
    const { lines } = check(`server:\n  request_timeout: 10x\n  max_body_bytes: -1\nbogus: true\n${BASE}`)
    expect(lines).toEqual([
      'bouncer.yaml:2:20: server.request_timeout: invalid duration "10x": write it like 500ms, 30s, 5m, 1h or 1d',
      'bouncer.yaml:3:19: server.max_body_bytes: Too small: expected number to be >=0',
      'bouncer.yaml:4:1: bogus: unknown key "bogus"',
    ])
  })

  it('names a missing required key at its parent', () => {
    const { lines } = check('routes:\n  - id: a\n    upstream: x\n')
    expect(lines).toEqual(['bouncer.yaml:2:5: routes[0]: missing required key "path"'])
  })

  it('an upstream names its target: url, or targets', () => {
    expect(check('upstreams:\n  - name: a\n').lines).toEqual(['bouncer.yaml:2:5: upstreams[0]: an upstream needs url (one target) or targets (several)'])
    expect(check('upstreams:\n  - name: a\n    url: http://127.0.0.1:1\n    targets: [http://127.0.0.1:2]\n').lines).toEqual([
      expect.stringMatching(/^bouncer\.yaml:4:\d+: upstreams\[0\]\.targets: give url or targets, not both$/),
    ])
  })

  it('reports YAML syntax errors with their position', () => {
    const { lines } = check('routes:\n  - id: a\n   path: /x\n')
    expect(lines[0]).toMatch(/^bouncer\.yaml:3:\d+: /)
  })

  it('refuses a second YAML document at its "---", in words for the one who wrote the file', () => {
    expect(check(`${BASE}---\nserver: { listen: 127.0.0.1:1 }\n`).lines).toEqual([
      'bouncer.yaml:9:1: a second YAML document starts here (a line "---" after the first): a config is one document, so remove the line or split the file',
    ])
    // A "---" that starts the only document, and "..." that ends it, are one document.
    expect(check(`---\n${BASE}...\n`).lines).toEqual([])
  })

  it('refuses a YAML tag it does not understand, rather than taking the value as plain text', () => {
    // `!env NAME` (another tool's syntax) was the admin token "NAME", and check said ok.
    const why = 'is not understood here (its value would be taken as plain text): a value from elsewhere is written ${env:NAME} or ${secret:NAME}'
    expect(check(`admin: { token: !env ADMIN_TOKEN }\n${BASE}`).lines).toEqual([`bouncer.yaml:1:17: the YAML tag !env ${why}`])
    expect(check(`${BASE}server:\n  request_timeout: !!js/function "x"\n  max_body_bytes: !!float lots\n`).lines).toEqual([
      `bouncer.yaml:10:20: the YAML tag !!js/function ${why}`,
      `bouncer.yaml:11:19: the YAML tag !!float ${why}`,
    ])
    // The tags of YAML's own core schema, where the value fits, are read as before.
    expect(check(`${BASE}server:\n  request_timeout: !!str 30s\n  max_body_bytes: !!int "1024"\n`).loaded.config?.server).toMatchObject({ request_timeout: 30_000, max_body_bytes: 1024 })
  })

  it('counts columns after a byte order mark as an editor does', () => {
    expect(check('\uFEFFserver: { listen: nowhere }\r\n').lines).toEqual(['bouncer.yaml:1:19: server.listen: invalid listen address "nowhere": write it like 127.0.0.1:8080 or [::1]:8080'])
  })

  it('refuses duplicate keys', () => {
    const { lines } = check('server:\n  listen: 127.0.0.1:1\n  listen: 127.0.0.1:2\n')
    expect(lines[0]).toMatch(/^bouncer\.yaml:3:3: .*[Uu]nique/)
  })

  it('interpolates ${env:NAME}, typed when the value is the whole scalar', () => {
    const { loaded } = check(`${BASE}server:\n  listen: \${env:LISTEN}\n  max_body_bytes: \${env:MAX}\nadmin:\n  token: "t-\${env:TOKEN}"\n`, {
      LISTEN: '127.0.0.1:7000', MAX: '1024', TOKEN: 'abc',
    })
    expect(loaded.diagnostics).toEqual([])
    expect(loaded.config?.server.listen.port).toBe(7000)
    expect(loaded.config?.server.max_body_bytes).toBe(1024)
    expect(loaded.config?.admin.token).toBe('t-abc')
  })

  it('uses ${env:NAME:-default} and reports a missing variable where it is used', () => {
    expect(check(`${BASE}admin:\n  token: \${env:NOPE:-fallback-token}\n`).loaded.config?.admin.token).toBe('fallback-token')
    expect(check(`${BASE}admin:\n  token: \${env:NOPE}\n`).lines).toEqual(['bouncer.yaml:10:10: admin.token: environment variable NOPE is not set'])
  })

  it('takes a value from the environment as it is: a ${secret:…} in it (or in a default) is refused, never substituted', () => {
    // The runtime put the admin token in the upstream's header, and check said ok.
    const text = `${BASE.replace('    url: http://127.0.0.1:9500', '    url: http://127.0.0.1:9500\n    headers: { X-From-Env: "${env:FROM_ENV}", X-Default: "${env:NOPE:-${secret:admin-token}}" }')}admin:\n  token: \${secret:admin-token}\nsecrets:\n  store: { type: env }\n`
    expect(check(text, { FROM_ENV: 'Bearer ${secret:admin-token}' }).lines).toEqual([
      'bouncer.yaml:4:28: upstreams[0].headers.X-From-Env: environment variable FROM_ENV holds a ${secret:…} reference: a value from the environment is taken as it is, so write ${secret:NAME} in the file itself',
      'bouncer.yaml:4:58: upstreams[0].headers.X-Default: the default of ${env:NOPE} holds a ${secret:…} reference: a value from the environment is taken as it is, so write ${secret:NAME} in the file itself',
    ])
    expect(check(text.replace('${env:NOPE:-${secret:admin-token}}', 'plain'), { FROM_ENV: 'Bearer $' + '{not-a-secret}' }).loaded.config?.upstreams[0]?.headers).toEqual({ 'X-From-Env': 'Bearer ${not-a-secret}', 'X-Default': 'plain' })
  })

  it('takes ${env:NAME} in a key (a header name), says its problems at the key, and refuses keys alike once replaced', () => {
    const text = BASE.replace('    url: http://127.0.0.1:9500', '    url: http://127.0.0.1:9500\n    headers:\n      "${env:H1}": one\n      "${env:H2}": two\n      "${secret:s}": three')
    expect(check(text, { H1: 'X-A', H2: 'X-A' }).lines).toEqual([
      'bouncer.yaml:6:7: Map keys must be unique: this key is an earlier one once its ${env:…} is replaced',
      'bouncer.yaml:7:7: upstreams[0].headers.${secret:s}: a key cannot hold ${secret:s}: only ${env:NAME} stands in a key (a secret stands in a value)',
    ])
    expect(check(text, {}).lines).toEqual([
      'bouncer.yaml:5:7: upstreams[0].headers.${env:H1}: environment variable H1 is not set',
      'bouncer.yaml:6:7: upstreams[0].headers.${env:H2}: environment variable H2 is not set',
      'bouncer.yaml:7:7: upstreams[0].headers.${secret:s}: a key cannot hold ${secret:s}: only ${env:NAME} stands in a key (a secret stands in a value)',
    ])
    const fine = check(text.replace(/\n {6}"\$\{secret:s\}": three/, ''), { H1: 'X-A', H2: 'X-B' })
    expect(fine.lines).toEqual([])
    expect(fine.loaded.config?.upstreams[0]?.headers).toEqual({ 'X-A': 'one', 'X-B': 'two' })
  })

  it("allows ${secret:NAME} only in an upstream's headers and admin.token, and needs a secrets store", () => {
    const { lines } = check(`${BASE.replace('    url: http://127.0.0.1:9500', '    url: http://127.0.0.1:9500/?key=${secret:k}\n    headers: { Authorization: "Bearer ${secret:tok}" }')}telemetry:\n  service_name: \${secret:x}\n`)
    expect(lines).toEqual([
      "bouncer.yaml:3:10: upstreams[0].url: ${secret:k} may only stand in one of: an upstream's headers, admin.token, admin.read_token, an issuer's introspection.client_secret, sign_in.client_secret, token_exchange.signing.key, a datasource's url, a datasource's key, an MCP server's headers, a function's environment",
      'bouncer.yaml:3:10: upstreams[0].url: an upstream URL cannot hold a query or a fragment',
      'bouncer.yaml:4:31: upstreams[0].headers.Authorization: ${secret:tok} is used but no secrets store is configured (secrets.store)',
      "bouncer.yaml:11:17: telemetry.service_name: ${secret:x} may only stand in one of: an upstream's headers, admin.token, admin.read_token, an issuer's introspection.client_secret, sign_in.client_secret, token_exchange.signing.key, a datasource's url, a datasource's key, an MCP server's headers, a function's environment",
    ])
  })

  it('checks references between sections', () => {
    const { lines } = check(`${BASE}    limits: [nope]
issuers:
  - { name: corp, issuer: "https://sso.example.com/", audiences: [api] }
roles:
  - name: reports
    assumed_by: [{ issuer: corp }, { issuer: other }]
    policies: [missing]
`)
    expect(lines).toEqual([
      'bouncer.yaml:9:14: routes[0].limits[0]: unknown limit "nope"',
      'bouncer.yaml:14:46: roles[0].assumed_by[1].issuer: unknown issuer "other"',
      'bouncer.yaml:15:16: roles[0].policies[0]: unknown policy "missing"',
    ])
  })

  it('refuses admin.roles without sign_in: people sign in to the console through it', () => {
    const { lines } = check(`${BASE}admin:\n  roles: [reports]\n`)
    expect(lines).toContainEqual('bouncer.yaml:10:10: admin.roles: admin.roles signs people in to the console through sign_in: configure sign_in (or use admin.token / admin.read_token)')
  })

  // Found by an adversarial probe (a confused operator): `bouncer check` said ok to a read_token
  // equal to the admin token (checked first: the "read-only" token reloaded and revoked), and to a
  // token with white space, which no Authorization: Bearer header can carry (every call 401).
  it('refuses an admin.read_token that is admin.token, and admin tokens no bearer header can carry', () => {
    const same = check(`${BASE}admin:\n  token: same-admin-token-0123\n  read_token: same-admin-token-0123\n`)
    expect(same.loaded.config).toBeUndefined()
    expect(same.lines).toEqual(['bouncer.yaml:11:15: admin.read_token: admin.read_token is the same as admin.token, which is checked first: whoever holds it may do everything; give the read-only token a value of its own'])
    const env = { ADMIN_TOKEN: 'admin-token-0123\n', READ_TOKEN: 'read token 0123' }
    expect(check(`${BASE}admin:\n  token: \${env:ADMIN_TOKEN}\n  read_token: \${env:READ_TOKEN}\n`, env).lines).toEqual([
      'bouncer.yaml:10:10: admin.token: admin.token holds white space, which no bearer token can (Authorization: Bearer <token>): no request could present it',
      'bouncer.yaml:11:15: admin.read_token: admin.read_token holds white space, which no bearer token can (Authorization: Bearer <token>): no request could present it',
    ])
    expect(check(`${BASE}admin:\n  token: admin-token-0123\n  read_token: read-token-0123\n`).lines).toEqual([])
  })

  // Found by an adversarial probe: a jwks_uri with user:password@ passed `bouncer check`, then
  // fetch refused it at every retry (no keys, every token 401), with the password in each log line
  // and in GET /api/catalog, which the read-only token reads. A query (Azure B2C's ?p=) stays allowed.
  it('refuses a jwks_uri with credentials in it', () => {
    const issuer = (uri: string) => check(`${BASE}issuers:\n  - { name: corp, issuer: "https://sso.example.com/", audiences: [api], jwks_uri: "${uri}" }\n`).lines
    expect(issuer('https://keys:s3cret-pass@sso.example.com/keys')).toEqual([
      'bouncer.yaml:10:83: issuers[0].jwks_uri: a jwks_uri cannot hold credentials (user:password@): a key set is public, and fetch refuses such a URL',
    ])
    expect(issuer('https://sso.example.com/keys?p=b2c_1_signin')).toEqual([])
  })

  // Walking the BI guide: a config of API keys alone was told every request to its routes gets 401,
  // while its key requests were answered 200.
  it('warns of routes no identity reaches, but not of routes that take API keys', () => {
    const keysOnly = (accept: string) => check(`api_keys: { store: sqlite }
upstreams:
  - { name: sales-api, url: "http://127.0.0.1:9500" }
routes:
  - { id: sales.daily, path: /sales, upstream: sales-api, accept: ${accept} }
`).lines
    expect(keysOnly('[bearer, api_key]')).toEqual([])
    expect(keysOnly('[bearer]')).toEqual([
      'bouncer.yaml:5:3: warning: routes: routes that are not public need an identity, but no issuers are configured: every request to them gets 401',
    ])
  })

  it('refuses duplicate names and bad route syntax', () => {
    const { lines } = check(`${BASE}  - id: sales.daily
    path: /a/*/b
    upstream: sales-api
    upstream_path: /v1/:nope
`)
    expect(lines).toEqual([
      'bouncer.yaml:5:3: warning: routes: routes that are not public need an identity, but no issuers are configured: every request to them gets 401',
      'bouncer.yaml:9:9: routes[1].id: duplicate route "sales.daily"',
      'bouncer.yaml:10:11: routes[1].path: "*" may only end a path: "/a/*/b"',
    ])
  })

  // Found by an adversarial probe: the segment check was one regex with an alternation per
  // character, which overflowed the stack on a 10 MB path, reported as "the file nests too deeply".
  it('checks a route path of 10 MB without calling it nesting, and still checks its escapes', () => {
    const long = `/${'a'.repeat(10_000_000)}`
    expect(check(BASE.replace('/sales/daily/:region', `"${long}"`)).lines).toEqual([])
    expect(check(BASE.replace('/sales/daily/:region', '/sales/100%/x%2g/%41')).lines).toEqual(['bouncer.yaml:6:11: routes[0].path: invalid characters in segment "100%"'])
    expect(check(BASE.replace('/sales/daily/:region', '/sales/x%2g')).lines).toEqual(['bouncer.yaml:6:11: routes[0].path: invalid characters in segment "x%2g"'])
    expect(check(BASE.replace('/sales/daily/:region', '/sales/%41%2F%zz')).lines).toEqual(['bouncer.yaml:6:11: routes[0].path: invalid characters in segment "%41%2F%zz"'])
    expect(check(BASE.replace('/sales/daily/:region', '/sales/%41b%7E')).lines).toEqual([])
  })

  // Only the YAML parser's overflow is the file's depth: past it, zod spreading 150,000 problems of
  // one upstream's headers into the list's overflowed the stack on a flat file, and check said the
  // file "nests too deeply".
  it('calls an overflow of the stack nesting only when the file nests too deeply', { timeout: 60_000 }, () => {
    const keys = Array.from({ length: 150_000 }, (_, i) => `"bad header ${i}": v`).join(', ')
    const flat = check(`upstreams:\n  - { name: api, url: "http://127.0.0.1:9", headers: { ${keys} } }\n`)
    expect(flat.loaded.config).toBeUndefined()
    expect(flat.lines).toEqual(["bouncer.yaml:1:1: bouncer ran out of stack while checking the file, a limit of its own and not the file's nesting: please report it"])
    expect(check(`${'- '.repeat(5_000)}}`).lines).toEqual(['bouncer.yaml:1:1: the file nests too deeply to be read (a config nests a few levels)'])
    // Deep enough for yaml's composer on some stacks (1,000 levels alone; not within the whole unit
    // run, whose stack goes further): it said "Maximum call stack size exceeded" as the file's
    // problem, once for every level it unwound (37 lines in CI). Said as nesting, once, or not at all.
    for (const depth of [1_000, 2_000, 3_000]) {
      for (const deep of [`routes: ${'['.repeat(depth)}${']'.repeat(depth)}\n`, `routes:\n  ${'- '.repeat(depth)}x\n`]) {
        const lines = check(deep).lines.map((line) => line.replace(/^bouncer\.yaml:\d+:\d+: /, ''))
        expect(lines.join('\n')).not.toMatch(/call stack/i)
        expect(lines.filter((line) => line === 'the file nests too deeply to be read (a config nests a few levels)').length).toBeLessThanOrEqual(1)
      }
    }
  })

  // Found by fuzzing: a list or map as a key was read as its text ('unknown key "[ a, b ]"' at 1:1),
  // and yaml's warning to a programmer ("Set mapAsMap: true") went to stderr beside it.
  it('says where a key is a list, a map or a typed value, and prints no warning of yaml\'s', () => {
    const warnings: string[] = []
    const onWarning = (warning: Error) => warnings.push(warning.message)
    process.on('warning', onWarning)
    try {
      expect(check(`${BASE}? [a, b]\n: 1\n`).lines).toEqual(['bouncer.yaml:9:3: a key is a name, not a list, a map or a typed value (YAML\'s "? [a, b]", "{a: 1}: x" or "!!binary aGk=: x"): write the key as plain text'])
      expect(check(`${BASE}    ? {x: 1}\n    : 2\n`).lines).toEqual(['bouncer.yaml:9:7: a key is a name, not a list, a map or a typed value (YAML\'s "? [a, b]", "{a: 1}: x" or "!!binary aGk=: x"): write the key as plain text'])
      // An alias standing for a list (found by fuzzing again: yaml warned once more).
      expect(check(`${BASE}x-list: &names [a, b]\n*names : 1\n`).lines).toContain('bouncer.yaml:10:1: a key is a name, not a list, a map or a typed value (YAML\'s "? [a, b]", "{a: 1}: x" or "!!binary aGk=: x"): write the key as plain text')
      // A scalar key that reads as an object (found by fuzzing: yaml warned once more), or an alias to
      // one. Pointed at its value, after the tag.
      expect(check(`${BASE}!!binary aGk= : 1\n`).lines).toEqual(['bouncer.yaml:9:10: a key is a name, not a list, a map or a typed value (YAML\'s "? [a, b]", "{a: 1}: x" or "!!binary aGk=: x"): write the key as plain text'])
      expect(check(`${BASE}!!timestamp 2001-12-14 : 1\n`).lines).toEqual(['bouncer.yaml:9:13: a key is a name, not a list, a map or a typed value (YAML\'s "? [a, b]", "{a: 1}: x" or "!!binary aGk=: x"): write the key as plain text'])
      expect(check(`${BASE}x-when: &when !!timestamp 2001-12-14\n*when : 1\n`).lines).toContain('bouncer.yaml:10:1: a key is a name, not a list, a map or a typed value (YAML\'s "? [a, b]", "{a: 1}: x" or "!!binary aGk=: x"): write the key as plain text')
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings).toEqual([])
  })

  // Found by an adversarial probe: a merge key was read as a key named "<<", and check said
  // 'unknown key "<<"' beside "an upstream needs url", the url it was to bring in being missing.
  it('says merge keys are not supported, and only that', () => {
    const merged = `upstreams:
  - &api { name: sales-api, url: http://127.0.0.1:9500 }
  - { <<: *api, name: other-api }
routes:
  - { id: a, path: /a, upstream: sales-api, public: true }
`
    expect(check(merged).lines).toEqual([
      'bouncer.yaml:3:7: YAML merge keys ("<<: *name") are not supported: write the keys out in full (an alias may still stand for a whole value, e.g. "headers: *common")',
    ])
    // A quoted "<<" is an ordinary key.
    expect(check(`${BASE}    "<<": 1\n`).lines).toEqual(['bouncer.yaml:9:5: routes[0].<<: unknown key "<<"'])
    // An alias for a whole value is fine.
    expect(check(`upstreams:
  - name: sales-api
    url: http://127.0.0.1:9500
    headers: &common { X-Team: sales }
  - { name: other-api, url: http://127.0.0.1:9501, headers: *common }
routes:
  - { id: a, path: /a, upstream: other-api, public: true }
`).lines).toEqual([])
  })

  it('refuses none and HMAC algorithms for issuers', () => {
    const { lines } = check('issuers:\n  - { name: a, issuer: "https://x/", audiences: [b], algorithms: [none, HS256] }\n')
    expect(lines).toHaveLength(2)
    expect(lines[0]).toContain('algorithm "none" is not allowed')
    expect(lines[1]).toContain('algorithm "HS256" is not allowed')
  })

  it('refuses a jwks_refresh_interval under 1s: 0s refetched the keys in a loop', () => {
    const issuer = (interval: string) => `issuers:\n  - { name: a, issuer: "https://x/", audiences: [b], jwks_refresh_interval: ${interval} }\n`
    expect(check(issuer('0s')).lines).toEqual(['bouncer.yaml:2:77: issuers[0].jwks_refresh_interval: at least 1s: each refresh fetches the keys from the provider'])
    expect(check(issuer('500ms')).loaded.config).toBeUndefined()
    expect(check(issuer('1s')).lines).toEqual([])
  })

  // Found by a probe of the spill cap: with both, 1,784 requests got 200 and their records were dropped.
  it('refuses durability: sync with on_spill_full: drop: a sync response has its record', () => {
    const audit = (durability: string, onFull: string) => `${BASE}audit:\n  durability: ${durability}\n  on_spill_full: ${onFull}\n`
    expect(check(audit('sync', 'drop')).lines).toEqual([
      'bouncer.yaml:11:18: audit.on_spill_full: drop answers requests whose records the full spill cannot take, and durability: sync answers only recorded ones: use on_spill_full: refuse (503 audit_unavailable at the cap), or durability: batched',
    ])
    expect(check(audit('sync', 'drop')).loaded.config).toBeUndefined()
    expect(check(audit('sync', 'refuse')).lines).toEqual([])
    expect(check(audit('batched', 'drop')).lines).toEqual([])
    expect(check(`${audit('sync', 'drop')}  sinks: []\n`).lines).toEqual([])
  })

  // Found by the audit probe: retention 0 (read by many as "keep forever") deleted every record within a second.
  it('refuses an audit retention under 1s', () => {
    const audit = (retention: string) => `${BASE}audit:\n  retention: ${retention}\n`
    expect(check(audit('0d')).lines).toEqual(['bouncer.yaml:10:14: audit.retention: at least 1s: 0 does not keep records forever, it deletes each as soon as it is written'])
    expect(check(audit('0s')).loaded.config).toBeUndefined()
    expect(check(audit('1s')).lines).toEqual([])
  })

  it('refuses upstream headers the gateway owns', () => {
    const { lines } = check(BASE.replace('    url: http://127.0.0.1:9500', '    url: http://127.0.0.1:9500\n    headers: { X-Forwarded-For: 1.2.3.4, X-Bouncer-Assertion: x }'))
    expect(lines).toEqual([
      'bouncer.yaml:4:16: upstreams[0].headers.X-Forwarded-For: the gateway sets X-Forwarded-For itself; it cannot be configured',
      'bouncer.yaml:4:42: upstreams[0].headers.X-Bouncer-Assertion: the gateway sets X-Bouncer-Assertion itself; it cannot be configured',
    ])
  })

  it('warns (without failing) about a public route keyed by principal', () => {
    const { loaded, lines } = check(`${BASE}    limits: [pp]\nlimits:\n  - { name: pp, key: principal, rate: 1/s }\n`)
    expect(loaded.config).toBeDefined()
    expect(lines).toEqual([
      'bouncer.yaml:9:14: warning: routes[0].limits[0]: limit "pp" is keyed by principal, but public route "sales.daily" has no identity: it is keyed by client IP there',
    ])
  })
})
