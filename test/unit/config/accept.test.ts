// routes[].accept: which credentials a route takes, in order (SPEC "Callers, added").
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function load(accept: string) {
  const text = `upstreams: [{ name: api, url: "http://127.0.0.1:9" }]
routes:
  - id: r
    path: /r
    upstream: api
    accept: ${accept}
`
  const loaded = loadConfigText(text, 'bouncer.yaml', {})
  return { config: loaded.config, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

describe('routes[].accept', () => {
  it('defaults to bearer tokens', () => {
    const loaded = loadConfigText('upstreams: [{ name: api, url: "http://127.0.0.1:9" }]\nroutes: [{ id: r, path: /r, upstream: api }]\n', 'bouncer.yaml', {})
    expect(loaded.config?.routes[0]?.accept).toEqual(['bearer'])
  })

  it('refuses a kind that does not exist, and one listed twice', () => {
    expect(load('[bearer, password]').lines[0]).toMatch(/^bouncer\.yaml:6:22: routes\[0\]\.accept\[1\]: /)
    expect(load('[bearer, bearer]').lines).toEqual(['bouncer.yaml:6:13: routes[0].accept: list each credential kind once'])
  })
})
