// A server name ending in "_" made SERVER__TOOL ambiguous across servers, as "__" inside one does:
// server `tickets_`'s tool `close` is `tickets___close`, which starts with `tickets__`, so a
// statement or approval rule meant for server `tickets` (`mcp:tickets__*`) also allowed, denied or
// held every tool of `tickets_`; and `tickets`'s tool `_close` bore the very same name (a probe).
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../src/config/index.ts'

const BASE = [
  'upstreams:\n  - { name: api, url: http://127.0.0.1:9500 }',
  'roles:\n  - { name: ops, assumed_by: [{ issuer: corp }], policies: [] }',
  'issuers:\n  - { name: corp, issuer: https://sso.example.com/, audiences: [api] }',
].join('\n')

function errors(servers: string): string[] {
  const loaded = loadConfigText(`${BASE}\nmcp:\n  resource: https://gw.example.com/mcp\n  servers:\n${servers}`, '/etc/bouncer/bouncer.yaml', {})
  return loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic('bouncer.yaml', d))
}

describe('mcp.servers[].name and the SERVER__ prefix', () => {
  it('refuses a server name ending in "_", whose prefix another server\'s tools would share', () => {
    const lines = errors('    - { name: tickets, url: http://127.0.0.1:7000/mcp }\n    - { name: tickets_, url: http://127.0.0.1:7001/mcp }\n')
    expect(lines).toEqual([expect.stringMatching(/mcp\.servers\[1\]\.name: a server name is letters, digits, - and single _ not at its end/)])
  })

  it('still takes single "_" and "-" inside a name, and "-" at its end', () => {
    expect(errors('    - { name: ops_tickets, url: http://127.0.0.1:7000/mcp }\n    - { name: a_b-c-, url: http://127.0.0.1:7001/mcp }\n    - { name: x1, url: http://127.0.0.1:7002/mcp }\n')).toEqual([])
  })
})
