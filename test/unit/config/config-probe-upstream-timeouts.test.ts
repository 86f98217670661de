// An upstream's timeout and connect_timeout were any duration: `timeout: 30d` passed check, and a
// request waiting for one of the upstream's max_connections was answered 504 at once (Node runs a
// timer over 2^31 - 1 ms after 1 ms), its detail saying the connections "stayed busy for
// 2592000000 ms"; `timeout: 0s` did the same. They are timers, held to what every other one is.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function lines(timeouts: string): string[] {
  const text = `upstreams:\n  - name: api\n    url: http://127.0.0.1:9500\n${timeouts}routes:\n  - { id: r, path: /api/*, upstream: api, public: true }\n`
  return loadConfigText(text, 'bouncer.yaml', {}).diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))
}

describe('an upstream\'s timeouts', () => {
  it('longer than 24d are refused', () => {
    expect(lines('    timeout: 30d\n    connect_timeout: 25d\n')).toEqual([
      'bouncer.yaml:4:14: upstreams[0].timeout: at most 24d: Node runs a longer timer at once',
      'bouncer.yaml:5:22: upstreams[0].connect_timeout: at most 24d: Node runs a longer timer at once',
    ])
  })

  it('of 0 are refused', () => {
    expect(lines('    timeout: 0s\n    connect_timeout: 0ms\n')).toEqual([
      'bouncer.yaml:4:14: upstreams[0].timeout: must be more than 0',
      'bouncer.yaml:5:22: upstreams[0].connect_timeout: must be more than 0',
    ])
  })

  it('up to 24d are taken', () => {
    expect(lines('    timeout: 24d\n    connect_timeout: 1ms\n')).toEqual([])
  })
})
