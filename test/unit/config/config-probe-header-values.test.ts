// A header value HTTP cannot carry (a line break, a control character, a character above U+00FF):
// `bouncer check` said ok, and then every request to that upstream was answered 502 "Upstream
// "api" failed mid-exchange", blaming the upstream, which was never sent a byte.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function check(text: string, env: NodeJS.ProcessEnv = {}) {
  const loaded = loadConfigText(text, 'bouncer.yaml', env)
  return { config: loaded.config, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

const upstream = (headers: string) => `upstreams:
  - name: api
    url: http://127.0.0.1:9500
    headers: ${headers}
routes:
  - { id: r, path: /api/*, upstream: api, public: true }
`

const WHY = 'an HTTP header value holds tabs and the characters from U+0020 to U+00FF (no line break or other control character)'

describe('an upstream\'s header value', () => {
  it('holding a line break written in the file is refused where it stands', () => {
    expect(check(upstream('{ X-Tenant: "acme\\r\\nX-Evil: 1" }')).lines).toEqual([`bouncer.yaml:4:26: upstreams[0].headers.X-Tenant: ${WHY}`])
  })

  it('holding a line break from the environment is refused', () => {
    expect(check(upstream('{ X-Tenant: "${env:TENANT}" }'), { TENANT: 'acme\nX-Evil: 1' }).lines).toEqual([`bouncer.yaml:4:26: upstreams[0].headers.X-Tenant: ${WHY}`])
  })

  it('holding a character above U+00FF is refused', () => {
    expect(check(upstream('{ X-Price: "10 €" }')).lines).toEqual([`bouncer.yaml:4:25: upstreams[0].headers.X-Price: ${WHY}`])
  })

  it('of an MCP server is held to the same', () => {
    const text = `${upstream('{}')}mcp:\n  resource: https://gw.example/mcp\n  servers:\n    - { name: tickets, url: http://127.0.0.1:7000/mcp, headers: { X-Team: "a\\nb" } }\n`
    expect(check(text).lines).toEqual([`bouncer.yaml:10:75: mcp.servers[0].headers.X-Team: ${WHY}`])
  })

  it('with tabs, Latin-1 and a ${secret:…} reference is still taken', () => {
    const { config, lines } = check(upstream('{ X-A: "a\\tb é", Authorization: "Bearer ${secret:api-token}" }') + 'secrets:\n  store: { type: env }\n', { BOUNCER_SECRET_API_TOKEN: 'x' })
    expect(lines).toEqual([])
    expect(config?.upstreams[0]?.headers).toEqual({ 'X-A': 'a\tb é', Authorization: 'Bearer ${secret:api-token}' })
  })
})
