// `bouncer check` on the mcp section: tools name routes that exist, names are unique and valid,
// the transparent mode has one server, approvers are roles, the endpoint's path is its own.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function check(text: string) {
  const loaded = loadConfigText(text, '/etc/bouncer/bouncer.yaml', {})
  return { loaded, lines: loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

const BASE = [
  'upstreams:\n  - { name: api, url: http://127.0.0.1:9500 }',
  'roles:\n  - { name: ops, assumed_by: [{ issuer: corp }], policies: [] }',
  'issuers:\n  - { name: corp, issuer: https://sso.example.com/, audiences: [api] }',
  'routes:\n  - { id: reports.daily, methods: [GET], path: /reports/:region, upstream: api }',
].join('\n')

describe('mcp checks', () => {
  it('accepts a complete section and fills in the defaults', () => {
    const { loaded, lines } = check(`${BASE}\nmcp:\n  resource: https://gw.example.com/mcp\n  tools: [{ route: reports.daily, name: get_report }]\n  servers: [{ name: tickets, url: http://127.0.0.1:7000/mcp }]\n  approvals: [{ tools: ["tickets__close_*"], approvers: [ops] }]\n`)
    expect(lines).toEqual([])
    expect(loaded.config?.mcp).toMatchObject({
      path: '/mcp', scopes: [], log_arguments: false,
      servers: [{ name: 'tickets', prefix: true, timeout: 60_000, headers: {}, limits: [] }],
      approvals: [{ approvers: ['ops'], ttl: 900_000 }],
      approvals_store: { type: 'sqlite', path: '/etc/bouncer/data/approvals.db' },
    })
  })

  it('refuses unknown routes, duplicate and invalid names, a transparent mode with two servers, unknown approvers and a route on the endpoint\'s path', () => {
    const { loaded, lines } = check(`${BASE}
  - { id: shadow, path: /mcp, upstream: api }
mcp:
  resource: https://gw.example.com/mcp
  tools:
    - { route: nowhere }
    - { route: reports.daily, name: dup }
    - { route: reports.daily, name: dup }
  servers:
    - { name: a, url: http://127.0.0.1:7000/mcp, prefix: false }
    - { name: a, url: http://127.0.0.1:7001/mcp, limits: [no-such-limit] }
  approvals: [{ tools: ["*"], approvers: [nobody] }]
`)
    expect(loaded.config).toBeUndefined()
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringContaining('mcp.tools[0].route: unknown route "nowhere"'),
      expect.stringContaining('mcp.tools[2].name: duplicate tool name "dup"'),
      expect.stringContaining('mcp.servers[0].prefix: prefix: false (the transparent mode) needs exactly one server'),
      expect.stringContaining('mcp.servers[1].name: duplicate MCP server "a"'),
      expect.stringContaining('mcp.servers[1].limits[0]: unknown limit "no-such-limit"'),
      expect.stringContaining('mcp.approvals[0].approvers[0]: unknown role "nobody"'),
      expect.stringContaining('routes[1].path: /mcp is the MCP endpoint\'s path (mcp.path)'),
    ]))
  })

  it('refuses a server URL with user:password@ in it: fetch never sends it, and each try logged the password', () => {
    const { loaded, lines } = check(`${BASE}\nmcp:\n  resource: https://gw.example.com/mcp\n  servers: [{ name: tickets, url: "http://ops:hunter2-literal@127.0.0.1:7000/mcp" }]\n`)
    expect(loaded.config).toBeUndefined()
    expect(lines).toEqual([expect.stringContaining('mcp.servers[0].url: put credentials in headers (with ${secret:NAME}), not in the URL')])
  })

  it('refuses server headers the gateway sets on every request itself (the call\'s trace context, the session), and takes a credential', () => {
    const { lines } = check(`${BASE}\nmcp:\n  resource: https://gw.example.com/mcp\n  servers: [{ name: tickets, url: http://127.0.0.1:7000/mcp, headers: { Authorization: "Bearer x", TraceParent: "00-aa-bb-01", mcp_session_id: abc } }]\n`)
    expect(lines).toEqual([
      expect.stringContaining('mcp.servers[0].headers.TraceParent: the gateway sets TraceParent itself on every request to an MCP server; it cannot be configured'),
      expect.stringContaining('mcp.servers[0].headers.mcp_session_id: the gateway sets mcp_session_id itself'),
    ])
  })

  it('refuses a server name that would make SERVER__TOOL ambiguous, and a tool name MCP does not allow', () => {
    const { lines } = check(`${BASE}\nmcp:\n  resource: https://gw.example.com/mcp\n  tools: [{ route: reports.daily, name: "get report" }]\n  servers: [{ name: a__b, url: http://127.0.0.1:7000/mcp }]\n`)
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringContaining('a tool name is 1-128 letters, digits and _ - .'),
      expect.stringContaining('a server name is letters, digits, - and single _'),
    ]))
  })

  it('needs a resource, and takes `call` as a statement action', () => {
    expect(check(`${BASE}\nmcp:\n  tools: []\n`).lines).toEqual([expect.stringContaining('mcp: missing required key "resource"')])
    const { lines } = check(`${BASE}\npolicies:\n  - { name: p, statements: [{ effect: allow, actions: [call], routes: ["mcp:get_report"] }] }\nmcp:\n  resource: https://gw.example.com/mcp\n  tools: [{ route: reports.daily, name: get_report }]\n`)
    expect(lines).toEqual([])
  })

  it('refuses a tool on a route that takes no bearer token: MCP callers present one, which the route refuses over HTTP', () => {
    const { loaded, lines } = check(`${BASE}
  - { id: keys.only, methods: [GET], path: /keys, upstream: api, accept: [api_key] }
  - { id: both, methods: [GET], path: /both, upstream: api, accept: [api_key, bearer] }
  - { id: open, methods: [GET], path: /open, upstream: api, public: true, accept: [api_key] }
api_keys: { store: sqlite }
mcp:
  resource: https://gw.example.com/mcp
  tools: [{ route: keys.only }, { route: both }, { route: open }]
`)
    expect(loaded.config).toBeUndefined()
    expect(lines).toEqual([expect.stringContaining('mcp.tools[0].route: route "keys.only" does not take bearer tokens (accept: api_key), and MCP callers present one')])
  })

  it('refuses a tool whose method its route does not take: listed, and every call refused with 405', () => {
    const { lines } = check(`${BASE}
  - { id: any, path: /any, upstream: api }
mcp:
  resource: https://gw.example.com/mcp
  tools: [{ route: reports.daily, name: delete_report, method: DELETE }, { route: reports.daily, name: get_report, method: GET }, { route: any, method: POST }]
`)
    expect(lines).toEqual([expect.stringContaining('mcp.tools[0].method: route "reports.daily" takes GET, not DELETE: every call of the tool would be refused (405)')])
  })
})
