// Two more durations the gateway runs as timers took any length: an issuer's introspection.timeout
// of 30d aborted every introspection after 1 ms (Node runs a timer past 2^31 - 1 ms at once), so
// every opaque token was refused, and an audit.checkpoint_interval of 30d signed a checkpoint every
// millisecond. check said ok to both.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function lines(text: string): string[] {
  return loadConfigText(text, 'bouncer.yaml', {}).diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))
}

const INTROSPECTING = (timeout: string) => `issuers:
  - name: legacy
    issuer: https://idp.example
    audiences: [api]
    introspection: { url: https://idp.example/introspect, client_id: bouncer, client_secret: s3cret-value, timeout: ${timeout} }
`

describe('durations run as timers', () => {
  it('an introspection timeout over 24d is refused', () => {
    expect(lines(INTROSPECTING('30d'))).toEqual(['bouncer.yaml:5:117: issuers[0].introspection.timeout: at most 24d: Node runs a longer timer at once'])
    expect(lines(INTROSPECTING('24d'))).toEqual([])
  })

  it('an audit checkpoint_interval over 24d is refused', () => {
    expect(lines('audit:\n  checkpoint_interval: 30d\n')).toEqual(['bouncer.yaml:2:24: audit.checkpoint_interval: at most 24d: Node runs a longer timer at once'])
    expect(lines('audit:\n  checkpoint_interval: 24d\n')).toEqual([])
  })
})
