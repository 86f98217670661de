// An admin token holding a character no HTTP header can carry: `bouncer check` said ok, and every
// admin call was refused 401 (found by the admin probe). Node reads a header's bytes as Latin-1, so
// a character beyond U+00FF (`€`, any CJK or emoji) arrives as other characters (curl sends its
// UTF-8 bytes), and fetch and undici refuse to send it at all; a control character makes the request
// itself a 400. As a token with white space (load.test.ts), refused with its line and column, and
// never quoted: it is a secret.
import { expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const BASE = `upstreams: [{ name: api, url: http://127.0.0.1:9500 }]
routes: [{ id: r, path: /r, upstream: api, public: true }]
`

function check(admin: string, env: NodeJS.ProcessEnv) {
  const loaded = loadConfigText(`${BASE}admin:\n${admin}`, 'bouncer.yaml', env)
  return { config: loaded.config, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

it('refuses an admin token with a character beyond U+00FF or a control character, without quoting it', () => {
  const env = { ADMIN_TOKEN: 'admin-token-0123-€uro', READ_TOKEN: 'read-token-0123\u0001' }
  const { config, lines } = check('  token: ${env:ADMIN_TOKEN}\n  read_token: ${env:READ_TOKEN}\n', env)
  expect(config).toBeUndefined()
  expect(lines).toEqual([
    'bouncer.yaml:4:10: admin.token: admin.token holds a character no HTTP header can carry (a control character, or one beyond U+00FF): no request could present it',
    'bouncer.yaml:5:15: admin.read_token: admin.read_token holds a character no HTTP header can carry (a control character, or one beyond U+00FF): no request could present it',
  ])
  expect(lines.join('\n')).not.toContain('€uro')
})

it('takes a Latin-1 token, which browsers and undici send as the bytes Node reads back', () => {
  expect(check('  token: ${env:ADMIN_TOKEN}\n', { ADMIN_TOKEN: 'pässwörd-0123-!$%&' }).lines).toEqual([])
})
