// `bouncer check` on token_exchange (SPEC "Agents: MCP and token exchange"): what cannot work is an
// error at its line and column; limits may count by the acting agent (key: actor).
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const BASE = [
  'issuers: [{ name: corp, issuer: "https://idp.example.com", audiences: [api] }]',
  'roles:',
  '  - { name: analyst, assumed_by: [{ issuer: corp }], policies: [p] }',
  '  - { name: agent, assumed_by: [{ issuer: corp, subject: "bot-*" }], policies: [p] }',
  'policies: [{ name: p, statements: [{ effect: allow, actions: [GET] }] }]',
  '',
].join('\n')

function check(text: string) {
  const loaded = loadConfigText(`${BASE}${text}`, 'bouncer.yaml', {})
  // The policy's `*` matches no route in most of these files: not what is tested here.
  const lines = loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)).filter((line) => !line.includes('matches no route'))
  return { config: loaded.config, lines, refs: loaded.secretRefs }
}

describe('token_exchange', () => {
  it('takes an issuer, actors with the roles they may act with, and defaults the rest', () => {
    const { config, lines } = check('token_exchange: { issuer: "https://gw.example.com", actors: [{ role: agent, delegated_roles: [analyst] }] }\n')
    expect(lines).toEqual([])
    expect(config?.token_exchange).toEqual({
      enabled: true,
      issuer: 'https://gw.example.com',
      lifetime: 900_000,
      require_actor: true,
      actors: [{ role: 'agent', delegated_roles: ['analyst'] }],
      signing: { rotate_every: 30 * 86_400_000 },
    })
  })

  it('refuses roles that do not exist, in actors and in delegated_roles', () => {
    expect(check('token_exchange: { issuer: "https://gw.example.com", actors: [{ role: bots, delegated_roles: [analyst, "*", admin] }] }\n').lines).toEqual([
      'bouncer.yaml:6:70: token_exchange.actors[0].role: unknown role "bots"',
      'bouncer.yaml:6:108: token_exchange.actors[0].delegated_roles[2]: unknown role "admin"',
    ])
  })

  it('wants the issuer to be an origin, its own, and not a name taken by a configured issuer', () => {
    expect(check('token_exchange: { issuer: "https://gw.example.com/oauth", actors: [{ role: agent, delegated_roles: ["*"] }] }\n').lines).toEqual([
      'bouncer.yaml:6:27: token_exchange.issuer: the issuer is the gateway\'s origin as clients reach it (https://gw.example.com): no path, query or credentials (RFC 8414 §2)',
    ])
    expect(check('token_exchange: { issuer: "https://idp.example.com/", actors: [{ role: agent, delegated_roles: ["*"] }] }\n').lines).toEqual([
      'bouncer.yaml:6:27: token_exchange.issuer: issuers[0] ("corp") has this issuer already: the gateway\'s own tokens need an iss of their own',
    ])
    const reserved = loadConfigText('issuers: [{ name: token-exchange, issuer: "https://a.example.com", audiences: [x] }]\n', 'bouncer.yaml', {})
    expect(reserved.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))).toEqual([
      'bouncer.yaml:1:19: issuers[0].name: the issuer name "token-exchange" is reserved for the tokens the gateway issues by token exchange',
    ])
    expect(check('token_exchange: { issuer: "ftp://gw", actors: [] }\n').lines[0]).toMatch(/token_exchange\.issuer: must be an http:\/\/ or https:\/\/ URL/)
  })

  it('takes its signing key as one whole ${secret:NAME}, which needs a secrets store', () => {
    const { lines, refs } = check('token_exchange: { issuer: "https://gw.example.com", actors: [{ role: agent, delegated_roles: ["*"] }], signing: { key: "${secret:sts-signing-key}" } }\n')
    expect(refs.map((r) => r.name)).toEqual(['sts-signing-key'])
    expect(lines).toEqual(['bouncer.yaml:6:120: token_exchange.signing.key: ${secret:sts-signing-key} is used but no secrets store is configured (secrets.store)'])
    expect(check('token_exchange: { issuer: "https://gw.example.com", actors: [{ role: agent, delegated_roles: ["*"] }], signing: { key: "-----BEGIN EC PRIVATE KEY-----" } }\n').lines).toEqual([
      'bouncer.yaml:6:120: token_exchange.signing.key: the signing key is a whole ${secret:NAME} reference (an EC P-256 private key in the secrets store), or left out for a key the gateway makes',
    ])
  })

  it('warns that no exchange can succeed without actors, and bounds the lifetime', () => {
    expect(check('token_exchange: { issuer: "https://gw.example.com" }\n').lines).toEqual([
      'bouncer.yaml:6:17: warning: token_exchange.actors: no actors are listed: every exchange is refused (unauthorized_client) until an agent\'s role is',
    ])
    expect(check('token_exchange: { issuer: "https://gw.example.com", require_actor: false }\n').lines).toEqual([])
    expect(check('token_exchange: { issuer: "https://gw.example.com", require_actor: false, lifetime: 2d }\n').lines).toEqual(['bouncer.yaml:6:85: token_exchange.lifetime: lifetime is 1s to 1d'])
  })
})

describe('limits keyed by actor', () => {
  it('is a key like principal, and warned about on a public route as principal is', () => {
    const text = [
      'upstreams: [{ name: api, url: "http://127.0.0.1:9" }]',
      'limits: [{ name: per-agent, key: actor, rate: 10/s }, { name: bad, key: agent, rate: 1/s }]',
      'routes: [{ id: open, path: /open, upstream: api, public: true, limits: [per-agent] }]',
      '',
    ].join('\n')
    expect(check(text).lines).toEqual([
      'bouncer.yaml:7:73: limits[1].key: key is principal, actor, role, route, ip, claim:NAME or header:NAME',
    ])
    const valid = check(text.replace(', { name: bad, key: agent, rate: 1/s }', ''))
    expect(valid.lines).toEqual(['bouncer.yaml:8:73: warning: routes[0].limits[0]: limit "per-agent" is keyed by actor, but public route "open" has no identity: it is keyed by client IP there'])
  })
})
