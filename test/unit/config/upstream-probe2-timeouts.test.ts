// An upstream's `timeout` and `connect_timeout` are timers the gateway runs itself (a try waiting
// for a pool connection, a WebSocket handshake's connect and head): a value Node cannot run as a
// timer must be refused by bouncer check, not accepted and then misread. A probe: `timeout: 30d`
// (Node runs a timer over 24.8 days after 1 ms) and `timeout: 0s` were both accepted, and with
// max_connections 1 a second request got 504 upstream_timeout within 36 ms ("stayed busy for
// 2592000000 ms"), while the one before it was still being answered.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function check(upstream: string): string[] {
  const loaded = loadConfigText(`upstreams:\n  - name: api\n    url: http://127.0.0.1:1\n${upstream}\nroutes: []\n`, 'bouncer.yaml', {})
  return loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))
}

describe('an upstream timeout Node cannot run as a timer', () => {
  it('timeout over 24 days is refused at its line', () => {
    expect(check('    timeout: 30d')).toEqual(['bouncer.yaml:4:14: upstreams[0].timeout: at most 24d: Node runs a longer timer at once'])
  })

  it('timeout 0s is refused: it would time every queued try out at once, and never a hung answer', () => {
    expect(check('    timeout: 0s')).toEqual(['bouncer.yaml:4:14: upstreams[0].timeout: must be more than 0'])
  })

  it('connect_timeout over 24 days, or 0s, is refused too', () => {
    expect(check('    connect_timeout: 25d')).toEqual(['bouncer.yaml:4:22: upstreams[0].connect_timeout: at most 24d: Node runs a longer timer at once'])
    expect(check('    connect_timeout: 0ms')).toEqual(['bouncer.yaml:4:22: upstreams[0].connect_timeout: must be more than 0'])
  })

  it('control: 24 days, and 1 ms, are taken', () => {
    expect(check('    timeout: 24d\n    connect_timeout: 1ms')).toEqual([])
  })
})
