// One header listed twice under two spellings (`Authorization` and `authorization`, or a look-alike
// `X_Api_Key` beside `X-Api-Key`): YAML sees two keys, check said ok, and every request reached the
// upstream with both headers, two credentials, which an upstream reads as it pleases (Node keeps
// the first Authorization, others the last, or refuse it).
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function lines(text: string): string[] {
  return loadConfigText(text, 'bouncer.yaml', {}).diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))
}

const upstream = (headers: string) => `upstreams:
  - name: api
    url: http://127.0.0.1:9500
    headers:
${headers}
routes:
  - { id: r, path: /api/*, upstream: api, public: true }
`

describe('a header an upstream lists twice under two spellings', () => {
  it('in another case is refused at the second', () => {
    expect(lines(upstream('      Authorization: Bearer one\n      authorization: Bearer two'))).toEqual([
      'bouncer.yaml:6:7: upstreams[0].headers.authorization: this is the header Authorization again (header names are read without case, and _ or . as -): list it once',
    ])
  })

  it('as a look-alike is refused at the second', () => {
    expect(lines(upstream('      X-Api-Key: one\n      X_API_KEY: two'))).toEqual([
      'bouncer.yaml:6:7: upstreams[0].headers.X_API_KEY: this is the header X-Api-Key again (header names are read without case, and _ or . as -): list it once',
    ])
  })

  it('of an MCP server is refused the same way', () => {
    const text = `${upstream('      X-A: a')}mcp:\n  resource: https://gw.example/mcp\n  servers:\n    - name: tickets\n      url: http://127.0.0.1:7000/mcp\n      headers: { Authorization: Bearer one, AUTHORIZATION: Bearer two }\n`
    expect(lines(text)).toEqual([
      'bouncer.yaml:13:45: mcp.servers[0].headers.AUTHORIZATION: this is the header Authorization again (header names are read without case, and _ or . as -): list it once',
    ])
  })

  it('distinct headers are taken', () => {
    expect(lines(upstream('      X-Api-Key: one\n      X-Api-Keys: two'))).toEqual([])
  })
})
