// sign_in: the provider it names, its paths and cookie settings are checked with line and column.
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const BASE = `issuers:
  - { name: sso, issuer: "https://sso.example.com", audiences: [api://bouncer] }
upstreams: [{ name: app, url: "http://127.0.0.1:9" }]
routes:
  - { id: app, path: /app/*, upstream: app, accept: [session, bearer] }
`

function load(signIn: string, base = BASE) {
  const loaded = loadConfigText(`${base}sign_in:\n${signIn}`, 'bouncer.yaml', {})
  const format = (severity: string) => loaded.diagnostics.filter((d) => d.severity === severity).map((d) => formatDiagnostic('bouncer.yaml', d))
  return { config: loaded.config, lines: format('error'), warnings: format('warning') }
}

describe('sign_in', () => {
  it('takes SPEC\'s example and fills in the defaults', () => {
    const { config, lines } = load(`  issuer: sso
  client_id: bouncer
  client_secret: s3cret-value
  scopes: [openid, email, profile, groups]
  callback_path: /.bouncer/callback
  sign_out_path: /.bouncer/sign_out
  cookie: { name: bouncer_session, secure: true, same_site: lax }
  session: { ttl: 8h, idle: 1h, store: sqlite }
`)
    expect(lines).toEqual([])
    expect(config?.sign_in).toMatchObject({
      sign_in_path: '/.bouncer/sign_in',
      // Relative to the config file's folder, as every path in the config (the file here: ./bouncer.yaml).
      session: { ttl: 8 * 3_600_000, idle: 3_600_000, store: { type: 'sqlite', path: resolve('data/sessions.db') } },
      cookie: { name: 'bouncer_session', secure: true, same_site: 'lax' },
    })
  })

  // A docs probe: the session store (default or named) was opened from the working directory, so
  // `bouncer serve` and `bouncer sessions` run from elsewhere made and read another file.
  it('keeps the session store, and the audit checkpoint file, next to the config file', () => {
    const text = `${BASE}audit: { sinks: [{ type: stdout }], checkpoint_path: ./data/checkpoints.ndjson }
sign_in:
  issuer: sso
  client_id: bouncer
  client_secret: s3cret-value
  session: { store: { type: sqlite, path: ./state/sessions.db } }
`
    const loaded = loadConfigText(text, '/etc/bouncer/bouncer.yaml', {})
    expect(loaded.config?.sign_in?.session.store).toEqual({ type: 'sqlite', path: '/etc/bouncer/state/sessions.db' })
    expect(loaded.config?.audit.checkpoint_path).toBe('/etc/bouncer/data/checkpoints.ndjson')
  })

  it('a route accepting session needs sign_in', () => {
    const loaded = loadConfigText(BASE, 'bouncer.yaml', {})
    expect(loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))).toContain(
      'bouncer.yaml:5:54: routes[0].accept[0]: accepting session credentials needs sign_in (the OpenID provider people sign in at)',
    )
  })

  it('refuses an unknown issuer, an x509 issuer, and scopes without openid', () => {
    expect(load('  issuer: nope\n  client_id: c\n').lines).toEqual(['bouncer.yaml:7:11: sign_in.issuer: unknown issuer "nope"'])
    const withX509 = BASE.replace('issuers:\n', 'issuers:\n  - { name: mesh, type: x509, ca: /dev/null }\n')
    expect(load('  issuer: mesh\n  client_id: c\n', withX509).lines).toContainEqual(expect.stringMatching(/sign_in\.issuer: issuer "mesh" is of type x509/))
    expect(load('  issuer: sso\n  client_id: c\n  scopes: [email]\n').lines).toEqual(['bouncer.yaml:9:11: sign_in.scopes: the scopes must include openid: sign-in needs an ID token'])
  })

  it('refuses paths that are not paths on this gateway, or that collide', () => {
    expect(load('  issuer: sso\n  client_id: c\n  callback_path: https://evil.example/cb\n').lines[0]).toMatch(/sign_in\.callback_path: a path on this gateway/)
    expect(load('  issuer: sso\n  client_id: c\n  callback_path: //evil.example\n').lines[0]).toMatch(/sign_in\.callback_path: a path on this gateway/)
    expect(load('  issuer: sso\n  client_id: c\n  sign_out_path: /.bouncer/callback\n').lines[0]).toMatch(/sign_out_path is the same path as callback_path/)
  })

  it('refuses SameSite=None without Secure, and a store it does not know', () => {
    expect(load('  issuer: sso\n  client_id: c\n  cookie: { same_site: none }\n').lines[0]).toMatch(/same_site: none needs a Secure cookie/)
    expect(load('  issuer: sso\n  client_id: c\n  cookie: { same_site: none, secure: true }\n').lines).toEqual([])
    expect(load('  issuer: sso\n  client_id: c\n  session: { store: postgres }\n').lines[0]).toMatch(/sign_in\.session\.store is memory, sqlite, redis/)
  })

  it('refuses a prefixed cookie name without Secure, the prefix in any case (browsers match it so)', () => {
    for (const name of ['__Host-s', '__host-s', '__Secure-s', '__SECURE-s']) {
      expect(load(`  issuer: sso\n  client_id: c\n  cookie: { name: ${name} }\n`).lines[0]).toMatch(/cookie must be Secure/)
      expect(load(`  issuer: sso\n  client_id: c\n  cookie: { name: ${name}, secure: true }\n`).lines).toEqual([])
    }
  })

  it('behind trusted proxies, a prefixed cookie name is a warning, not an error (the browser may arrive over https)', () => {
    const proxied = `server:\n  trusted_proxies: [10.0.0.0/8]\n${BASE}`
    const result = load('  issuer: sso\n  client_id: c\n  cookie: { name: __Secure-s }\n', proxied)
    expect(result.lines).toEqual([])
    expect(result.warnings.join('\n')).toMatch(/cookie must be Secure.*trusted_proxies/)
    expect(load('  issuer: sso\n  client_id: c\n  cookie: { name: __Secure-s, secure: false }\n', proxied).lines[0]).toMatch(/cookie must be Secure/)
  })

  it('takes the client secret from the secrets store', () => {
    const lines = load('  issuer: sso\n  client_id: c\n  client_secret: ${secret:sso-client}\n').lines
    expect(lines).toEqual(['bouncer.yaml:9:18: sign_in.client_secret: ${secret:sso-client} is used but no secrets store is configured (secrets.store)'])
  })

  it('admin.roles and admin.read_roles name roles, and need sign_in', () => {
    const roles = 'roles:\n  - { name: ops, assumed_by: [{ issuer: sso }], policies: [] }\n'
    const admin = (text: string) => `admin:\n${text}`
    expect(load('  issuer: sso\n  client_id: c\n', `${BASE}${roles}${admin('  roles: [ops]\n  read_roles: [viewers]\n')}`).lines)
      .toEqual(['bouncer.yaml:10:16: admin.read_roles[0]: unknown role "viewers"'])
    const withoutSignIn = loadConfigText(`${BASE}${roles}${admin('  roles: [ops]\n')}`, 'bouncer.yaml', {})
    expect(withoutSignIn.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))).toContain(
      'bouncer.yaml:9:10: admin.roles: admin.roles signs people in to the console through sign_in: configure sign_in (or use admin.token / admin.read_token)',
    )
  })
})

// Found by an adversarial probe (helper "browser"): browsers keep cookies by host name, not port, so
// a gateway cookie named as the console's (on the admin listener, the same host) replaced the
// console's session and the console's replaced the gateway's, each sign-in refusing the other's.
describe('sign_in.cookie.name beside the console\'s sign-in', () => {
  const withConsole = `${BASE}roles: [{ name: ops, assumed_by: [{ issuer: sso }], policies: [] }]
admin: { roles: [ops] }
`
  const message = (name: string) => `bouncer.yaml:13:11: sign_in.cookie.name: ${name} is the admin console's own cookie (admin.roles signs people in to it): browsers keep cookies by host, not port, so the two sign-ins would replace each other's session; choose another name`

  it('is refused when it is the console\'s cookie, or its state cookie', () => {
    for (const name of ['bouncer_console', 'bouncer_console_state']) {
      const { lines } = load(`  issuer: sso\n  client_id: bouncer\n  client_secret: s3cret-value\n  cookie:\n    name: ${name}\n`, withConsole)
      expect(lines).toEqual([message(name)])
    }
  })

  it('is taken without admin.roles (no console sign-in), and any other name with them', () => {
    expect(load('  issuer: sso\n  client_id: bouncer\n  client_secret: s3cret-value\n  cookie:\n    name: bouncer_console\n').lines).toEqual([])
    expect(load('  issuer: sso\n  client_id: bouncer\n  client_secret: s3cret-value\n  cookie:\n    name: bouncer_session\n', withConsole).lines).toEqual([])
  })
})

// Found by an adversarial probe: after a rename, browsers' old-named session cookies went to the
// upstreams; previous_names lists the names to withhold (sign-in-probe-cookie-rename).
describe('sign_in.cookie.previous_names', () => {
  it('takes cookie names, and refuses the cookie\'s name now or its state cookie\'s', () => {
    const ok = load('  issuer: sso\n  client_id: bouncer\n  cookie: { name: app_session, previous_names: [bouncer_session] }\n')
    expect(ok.lines).toEqual([])
    expect(ok.config?.sign_in?.cookie.previous_names).toEqual(['bouncer_session'])
    expect(load('  issuer: sso\n  client_id: bouncer\n').config?.sign_in?.cookie.previous_names).toEqual([])
    const own = load('  issuer: sso\n  client_id: bouncer\n  cookie: { name: app_session, previous_names: [old, app_session_state] }\n')
    expect(own.lines).toEqual([expect.stringContaining('sign_in.cookie.previous_names[1]: app_session_state is the session cookie\'s name now')])
    expect(load('  issuer: sso\n  client_id: bouncer\n  cookie: { previous_names: ["a b"] }\n').lines).toEqual([expect.stringContaining('a cookie name is a token')])
  })
})
