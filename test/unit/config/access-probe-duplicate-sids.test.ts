// Found by the access probe (helper): two statements of one sid — repeated within a policy or across
// two, or an explicit sid spelled as another statement's POLICY#INDEX — were taken without a word,
// though the audit record, the 403's detail, explain and the console's trace name a statement by its
// sid alone: a record then did not say which statement decided.
import { expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function sidWarnings(policies: string): string[] {
  const text = `issuers:
  - { name: idp, issuer: https://idp.example, jwks_uri: https://idp.example/jwks, audiences: [api] }
roles:
  - { name: reader, assumed_by: [{ issuer: idp }], policies: [a, b] }
policies:
${policies}
upstreams:
  - { name: api, url: http://127.0.0.1:9 }
routes:
  - { id: api, path: /api/*, upstream: api, methods: [GET] }
  - { id: other, path: /other, upstream: api, methods: [GET] }
`
  const loaded = loadConfigText(text, 'bouncer.yaml', {})
  expect(loaded.config).toBeDefined()
  return loaded.diagnostics.filter((d) => d.message.includes('names a statement of policy')).map((d) => formatDiagnostic('bouncer.yaml', d))
}

it('warns of a sid two statements share, across policies or within one, naming the later one\'s place', () => {
  expect(sidWarnings(`  - name: a
    statements:
      - { sid: Read, effect: allow, actions: [GET], routes: [api] }
  - name: b
    statements:
      - { sid: Read, effect: deny, actions: [GET], routes: [other] }
      - { sid: Read, effect: allow, actions: [GET], routes: [other] }`)).toEqual([
    'bouncer.yaml:11:16: warning: policies[1].statements[0].sid: sid "Read" names a statement of policy "a" already: the audit record, the 403\'s detail and explain name a statement by its sid, so they would not say which of the two decided; give each its own',
    'bouncer.yaml:12:16: warning: policies[1].statements[1].sid: sid "Read" names a statement of policy "a" already: the audit record, the 403\'s detail and explain name a statement by its sid, so they would not say which of the two decided; give each its own',
  ])
})

it('warns of a sid spelled as another statement\'s POLICY#INDEX', () => {
  expect(sidWarnings(`  - name: a
    statements:
      - { effect: allow, actions: [GET], routes: [api] }
  - name: b
    statements:
      - { sid: "a#0", effect: deny, actions: [GET], routes: [other] }`)).toHaveLength(1)
})

it('says nothing where every sid is its own', () => {
  expect(sidWarnings(`  - name: a
    statements:
      - { sid: Read, effect: allow, actions: [GET], routes: [api] }
      - { effect: allow, actions: [GET], routes: [other] }
  - name: b
    statements:
      - { effect: deny, actions: [GET], routes: [other] }`)).toEqual([])
})
