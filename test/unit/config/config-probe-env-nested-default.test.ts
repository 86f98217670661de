// A default that holds another reference, as a shell or docker compose nests them
// (`${env:A:-${env:B}}`): the reference ends at the first `}`, so the value was the text
// "${env:B}" (A unset) or A's value with a stray "}" (A set), sent as it was, and check said ok.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const FILE = `upstreams:
  - name: api
    url: http://127.0.0.1:9500
    headers:
      X-Region: "\${env:REGION:-\${env:DEFAULT_REGION}}"
routes:
  - { id: r, path: /api/*, upstream: api, public: true }
`

function check(env: NodeJS.ProcessEnv) {
  const loaded = loadConfigText(FILE, 'bouncer.yaml', env)
  return { headers: loaded.config?.upstreams[0]?.headers, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

const NESTED = 'bouncer.yaml:5:17: upstreams[0].headers.X-Region: the default of ${env:REGION} holds another reference: references do not nest (the first "}" ends this one), so write the default out'

describe('a ${env:…} whose default holds another reference', () => {
  it('is refused when the variable is unset, not taken as the text "${env:…}"', () => {
    const { headers, lines } = check({ DEFAULT_REGION: 'eu' })
    expect(headers).toBeUndefined()
    expect(lines).toEqual([NESTED])
  })

  it('is refused when the variable is set, not given a stray "}"', () => {
    const { headers, lines } = check({ REGION: 'us' })
    expect(headers).toBeUndefined()
    expect(lines).toEqual([NESTED])
  })

  it('is refused in a key (a header name) too', () => {
    const loaded = loadConfigText(FILE.replace('X-Region: "${env:REGION:-${env:DEFAULT_REGION}}"', '"${env:NAME:-${env:OTHER}}": eu'), 'bouncer.yaml', { NAME: 'X-Region' })
    expect(loaded.config).toBeUndefined()
    expect(loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))).toEqual(['bouncer.yaml:5:7: upstreams[0].headers.${env:NAME:-${env:OTHER}}: the default of ${env:NAME} holds another reference: references do not nest (the first "}" ends this one), so write the default out'])
  })

  it('a plain default is still taken', () => {
    const loaded = loadConfigText(FILE.replace('${env:DEFAULT_REGION}', 'eu'), 'bouncer.yaml', {})
    expect(loaded.diagnostics).toEqual([])
    expect(loaded.config?.upstreams[0]?.headers).toEqual({ 'X-Region': 'eu' })
  })
})
