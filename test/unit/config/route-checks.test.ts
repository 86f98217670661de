// `bouncer check` on routes the path and method rules make risky or dead (README "Path rules").
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function check(routes: string, server = '') {
  const text = `${server}upstreams:\n  - { name: api, url: http://127.0.0.1:9500 }\nroutes:\n${routes}`
  const loaded = loadConfigText(text, 'bouncer.yaml', {})
  return { loaded, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

describe('route warnings', () => {
  it('warns about a route that takes TRACE, and one that lists CONNECT', () => {
    const { loaded, lines } = check(
      '  - { id: debug, methods: [GET, TRACE], path: /debug/*, upstream: api, public: true }\n' +
        '  - { id: tunnel, methods: [CONNECT], path: /t, upstream: api, public: true }\n',
    )
    expect(loaded.config).toBeDefined()
    expect(lines).toEqual([
      expect.stringMatching(/^bouncer\.yaml:4:33: warning: routes\[0\]\.methods\[1\]: route "debug" takes TRACE: the upstream echoes the request back to the caller, with the headers the gateway sets for it \(its credentials\)/),
      'bouncer.yaml:5:29: warning: routes[1].methods[0]: route "tunnel" lists CONNECT, which never reaches it: the gateway refuses CONNECT tunnels (400 bad_path)',
    ])
  })

  it('refuses TRACK: no route can take it', () => {
    const { loaded, lines } = check('  - { id: a, methods: [TRACK], path: /a, upstream: api, public: true }\n')
    expect(loaded.config).toBeUndefined()
    expect(lines[0]).toMatch(/routes\[0\]\.methods\[0\]: a method is one of/)
  })

  it('refuses a route that names one limit twice (the memory store counted it once, Redis twice: found by a probe)', () => {
    const limits = 'limits:\n  - { name: q, key: ip, quota: 3/h }\n'
    const { loaded, lines } = check('  - { id: a, path: /a, upstream: api, public: true, limits: [q, q] }\n', limits)
    expect(loaded.config).toBeUndefined()
    expect(lines.join('\n')).toMatch(/routes\[0\]\.limits: names a limit twice/)
  })

  it('refuses a limits_store.max_keys no gateway could allocate (check said ok, serve with workers failed: found by a probe)', () => {
    const { loaded, lines } = check('  - { id: a, path: /a, upstream: api, public: true }\n', 'limits_store: { type: memory, max_keys: 9007199254740991 }\n')
    expect(loaded.config).toBeUndefined()
    expect(lines.join('\n')).toMatch(/limits_store\.max_keys/)
  })

  it('says nothing about the default methods', () => {
    expect(check('  - { id: a, path: /a, upstream: api, public: true }\n').lines).toEqual([])
  })

  it('warns about routes whose paths differ only in letter case', () => {
    const routes =
      '  - { id: admin, path: /api/admin/*, upstream: api, public: true }\n' +
      '  - { id: admin-upper, path: /api/ADMIN/*, upstream: api, public: true }\n' +
      '  - { id: admin-get, methods: [GET], path: /api/admin/*, upstream: api, public: true }\n' +
      '  - { id: user, path: /u/:id, upstream: api, public: true }\n' +
      '  - { id: user-key, path: /u/:key, upstream: api, public: true }\n'
    expect(check(routes).lines).toEqual([
      'bouncer.yaml:5:30: warning: routes[1].path: route "admin-upper" path /api/ADMIN/* differs from route "admin" path /api/admin/* only in letter case: paths match case-insensitively, so both match the same requests (the first in file order wins)',
    ])
    expect(check(routes, 'server: { case_sensitive_paths: true }\n').lines).toEqual([
      'bouncer.yaml:6:30: warning: routes[1].path: route "admin-upper" path /api/ADMIN/* differs from route "admin" path /api/admin/* only in letter case: upstreams that ignore case (Express, ASP.NET) serve both as one path, but the gateway authorizes them apart (server.case_sensitive_paths)',
    ])
  })

  it('warns about literal segments no request can match', () => {
    const { lines } = check(
      '  - { id: semi, path: /a;b/x, upstream: api, public: true }\n' +
        '  - { id: semi-encoded, path: /a%3Bb, upstream: api, public: true }\n' +
        '  - { id: dot, path: /files/report., upstream: api, public: true }\n' +
        '  - { id: space, path: /files/report%20, upstream: api, public: true }\n',
    )
    expect(lines).toEqual([
      'bouncer.yaml:4:23: warning: routes[0].path: segment "a;b" of route "semi" never matches: a ";" in a request path starts path parameters, which are refused or left out of matching',
      'bouncer.yaml:5:31: warning: routes[1].path: segment "a%3Bb" of route "semi-encoded" never matches: a ";" in a request path starts path parameters, which are refused or left out of matching',
      'bouncer.yaml:6:22: warning: routes[2].path: segment "report." of route "dot" never matches: a request path segment ending in "." or whitespace is refused (400 bad_path)',
      'bouncer.yaml:7:24: warning: routes[3].path: segment "report%20" of route "space" never matches: a request path segment ending in "." or whitespace is refused (400 bad_path)',
    ])
  })

  it('accepts the new keys with defaults that keep matching safe', () => {
    const { loaded } = check('  - { id: a, path: /a, upstream: api, path_params: true }\n')
    expect(loaded.config?.routes[0]?.path_params).toBe(true)
    expect(loaded.config?.server.case_sensitive_paths).toBe(false)
    expect(check('  - { id: a, path: /a, upstream: api }\n').loaded.config?.routes[0]?.path_params).toBe(false)
  })
})
