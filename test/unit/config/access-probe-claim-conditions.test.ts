// Found by the access probe (helper): `bouncer check` said only "Invalid input" of a claim condition
// it refused — YAML's `email_verified: true` or `level: 1` (a boolean, a number, the natural way to
// write them), and an invalid glob, whose own reason the union of a glob and a list of globs lost.
import { expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function claimProblems(claims: string): string[] {
  const text = `issuers:
  - { name: idp, issuer: https://idp.example, jwks_uri: https://idp.example/jwks, audiences: [api] }
roles:
  - { name: reader, assumed_by: [{ issuer: idp, claims: ${claims} }], policies: [p] }
policies:
  - name: p
    statements:
      - { sid: All, effect: allow, actions: [GET], routes: [api], conditions: { claims: ${claims} } }
upstreams:
  - { name: api, url: http://127.0.0.1:9 }
routes:
  - { id: api, path: /api/*, upstream: api }
`
  const loaded = loadConfigText(text, 'bouncer.yaml', {})
  return loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic('bouncer.yaml', d).replace(/^(bouncer\.yaml:\d+):\d+/, '$1'))
}

it('says to quote a boolean or a number, in a trust rule and in a statement condition', () => {
  expect(claimProblems('{ email_verified: true }')).toEqual([
    'bouncer.yaml:4: roles[0].assumed_by[0].claims.email_verified: a claim condition is a glob (a string) or a list of them: write true quoted, "true", which matches the claim\'s true as well as the string',
    'bouncer.yaml:8: policies[0].statements[0].conditions.claims.email_verified: a claim condition is a glob (a string) or a list of them: write true quoted, "true", which matches the claim\'s true as well as the string',
  ])
  expect(claimProblems('{ level: [1, admins] }')[0]).toBe(
    'bouncer.yaml:4: roles[0].assumed_by[0].claims.level: list item 1: a claim condition\'s list holds globs (strings): write 1 quoted, "1", which matches the claim\'s 1 as well as the string',
  )
})

it('gives an invalid glob\'s own reason, alone or in a list', () => {
  expect(claimProblems('{ groups: "[admins]" }')[0]).toBe('bouncer.yaml:4: roles[0].assumed_by[0].claims.groups: invalid glob "[admins]": only * and ? are wildcards ([ ] { } are not supported)')
  expect(claimProblems('{ groups: [readers, "{a,b}"] }')[0]).toBe('bouncer.yaml:4: roles[0].assumed_by[0].claims.groups: list item 2: invalid glob "{a,b}": only * and ? are wildcards ([ ] { } are not supported)')
})

it('takes quoted values and globs as before', () => {
  expect(claimProblems('{ email_verified: "true", level: ["1", "2"], groups: "sec-*" }')).toEqual([])
})
