// A value that is one whole ${env:…} takes the type it spells, so a number can come from the
// environment (`max_body_bytes: ${env:MAX}`). Where the config asks for text, a variable that
// reads as a number or a boolean (a tenant id 0042, an all-digit token, "true") was refused with
// "expected string, received number", quoted or not: no way to write it but in the file itself.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const FILE = `server:
  max_body_bytes: \${env:MAX}
admin:
  token: \${env:ADMIN_TOKEN}
upstreams:
  - name: api
    url: http://127.0.0.1:9500
    headers:
      X-Tenant: \${env:TENANT}
      X-Flag: "\${env:FLAG}"
routes:
  - { id: r, path: /api/*, upstream: api, public: true }
`

function check(env: NodeJS.ProcessEnv) {
  const loaded = loadConfigText(FILE, 'bouncer.yaml', env)
  return { config: loaded.config, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

describe('a whole ${env:…} where the config asks for text', () => {
  it('keeps the variable\'s text, leading zeros and all, while a number place still takes a number', () => {
    const { config, lines } = check({ MAX: '2048', ADMIN_TOKEN: '01234567890123456789012345678901', TENANT: '0042', FLAG: 'true' })
    expect(lines).toEqual([])
    expect(config?.admin.token).toBe('01234567890123456789012345678901')
    expect(config?.upstreams[0]?.headers).toEqual({ 'X-Tenant': '0042', 'X-Flag': 'true' })
    expect(config?.server.max_body_bytes).toBe(2048)
  })

  it('a number place given text still says what is wrong', () => {
    const { lines } = check({ MAX: 'lots', ADMIN_TOKEN: 'abcdefabcdefabcdefabcdefabcdef12', TENANT: '1', FLAG: '1' })
    expect(lines).toEqual(['bouncer.yaml:2:19: server.max_body_bytes: expected number, received string'])
  })
})
