// The upstream keys of SPEC "Upstreams, added" as bouncer check reads them.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function check(upstream: string): string[] {
  const loaded = loadConfigText(`upstreams:\n  - name: api\n${upstream}\nroutes: []\n`, 'bouncer.yaml', {})
  return loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))
}

describe('upstreams with several targets', () => {
  it('takes SPEC\'s example, with its defaults filled in', () => {
    const loaded = loadConfigText([
      'upstreams:',
      '  - name: sales-api',
      '    targets: [http://10.0.0.5:9500, http://10.0.0.6:9500]',
      '    balance: least_request',
      '    health_check: { path: /healthz, interval: 5s, timeout: 1s, unhealthy_after: 2, healthy_after: 2 }',
      '    eject: { after: 5, for: 30s }',
      '    retries: { attempts: 2, on: [connect_failure, "503"], budget: 20% }',
    ].join('\n'), 'bouncer.yaml', {})
    expect(loaded.diagnostics).toEqual([])
    expect(loaded.config?.upstreams[0]).toMatchObject({
      balance: 'least_request',
      health_check: { path: '/healthz', interval: 5000, timeout: 1000, unhealthy_after: 2, healthy_after: 2 },
      eject: { after: 5, for: 30_000 },
      retries: { attempts: 2, on: ['connect_failure', '503'], budget: 0.2 },
    })
    const defaults = loadConfigText('upstreams:\n  - name: a\n    url: http://127.0.0.1:1\n    retries: {}\n    eject: {}\n', 'b.yaml', {}).config?.upstreams[0]
    expect(defaults).toMatchObject({ balance: 'round_robin', retries: { attempts: 2, on: ['connect_failure', '503'], budget: 0.2 }, eject: { after: 5, for: 30_000 } })
  })

  it('refuses targets that are not copies of one service, and values out of range', () => {
    expect(check('    targets: [http://127.0.0.1:1/api, http://127.0.0.1:2/v2, http://127.0.0.1:1/api]\n    eject: {}')).toEqual([
      'bouncer.yaml:3:39: upstreams[0].targets[1]: every target of an upstream has the same path (the first has "/api"): they are copies of one service',
      'bouncer.yaml:3:62: upstreams[0].targets[2]: target http://127.0.0.1:1 is listed twice',
    ])
    expect(check('    url: http://127.0.0.1:1\n    retries: { budget: 120%, on: [teapot] }')).toEqual([
      'bouncer.yaml:4:24: upstreams[0].retries.budget: invalid percentage "120%": write it like 20% (0% to 100%)',
      'bouncer.yaml:4:35: upstreams[0].retries.on[0]: a retry condition is connect_failure, reset, timeout or a 5xx status ("503")',
    ])
    expect(check('    url: http://127.0.0.1:1\n    balance: random')[0]).toMatch(/upstreams\[0\]\.balance: /)
    expect(check('    url: http://127.0.0.1:1\n    health_check: { path: healthz, interval: 0s }')).toEqual([
      expect.stringMatching(/health_check\.path: a path on the target, starting with \//),
      expect.stringMatching(/health_check\.interval: must be more than 0/),
    ])
    expect(check('    url: https://127.0.0.1:1\n    tls: { cert: ./client.pem }')).toEqual(['bouncer.yaml:4:18: upstreams[0].tls.cert: a client certificate needs both cert and key'])
  })

  it('warns about several targets with nothing to notice that one died', () => {
    expect(check('    targets: [http://127.0.0.1:1, http://127.0.0.1:2]')).toEqual([
      'bouncer.yaml:3:14: warning: upstreams[0].targets: upstream "api" has several targets but neither health_check nor eject: a target that dies keeps getting its share of requests',
    ])
  })
})
