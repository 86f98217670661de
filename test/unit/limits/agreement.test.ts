// What instances sharing a Redis limits store compare (limits/agreement.ts): each limit as it is
// enforced, in words an operator reads in the warning. The gateways themselves: instances.test.ts.
import { describe, expect, it } from 'vitest'
import { loadConfigText } from '../../../src/config/index.ts'
import { describeLimits, disagreementOf } from '../../../src/limits/agreement.ts'

const limitsOf = (yaml: string) => describeLimits(loadConfigText(`limits:\n${yaml}`, 'bouncer.yaml').config?.limits ?? [])

describe('the limits instances compare', () => {
  it('are each limit\'s key, rate, burst (the rate\'s count when not set), quota, and the IPv6 prefix of an ip key', () => {
    expect(limitsOf('  - { name: per-ip, key: ip, rate: 10/s, burst: 30, quota: 1000/d }\n  - { name: per-principal, key: principal, rate: 5/m }\n')).toEqual({
      'per-ip': 'key ip, rate 10/second, burst 30, quota 1000/day, ip_prefix_v6 64',
      'per-principal': 'key principal, rate 5/minute, burst 5',
    })
  })

  it('differ by any of them, or by a limit one instance has and another lacks; instances that agree are not named', () => {
    const own = limitsOf('  - { name: a, key: role, rate: 10/m }\n  - { name: b, key: principal, quota: 100/h }\n')
    const others = new Map([
      ['gw-3', own],
      ['gw-2', limitsOf('  - { name: a, key: role, rate: 10/m, burst: 20 }\n  - { name: b, key: principal, quota: 100/h }\n  - { name: c, key: route, rate: 1/s }\n')],
      ['gw-1', limitsOf('  - { name: b, key: principal, quota: 100/h }\n')],
    ])
    expect(disagreementOf(own, others)).toEqual({
      instances: ['gw-1', 'gw-2'],
      differences: [
        'a: key role, rate 10/minute, burst 10 here; not configured on gw-1',
        'a: key role, rate 10/minute, burst 10 here; key role, rate 10/minute, burst 20 on gw-2',
        'c: not configured here; key route, rate 1/second, burst 1 on gw-2',
      ],
    })
    expect(disagreementOf(own, new Map([['gw-3', own]]))).toEqual({ instances: [], differences: [] })
  })

  // Found by the limits probe (helper): on a public route a principal, actor, role or claim: limit
  // counts callers by their address, by ip_prefix_v6; instances at /64 and /128 counted an IPv6
  // caller under different keys, each a budget of its own, and compared equal.
  it('differ by the IPv6 prefix of an identity key, which counts callers on public routes', () => {
    const own = limitsOf('  - { name: per-principal, key: principal, rate: 5/m, ip_prefix_v6: 128 }\n')
    expect(own).toEqual({ 'per-principal': 'key principal, rate 5/minute, burst 5, ip_prefix_v6 128' })
    const others = new Map([['gw-2', limitsOf('  - { name: per-principal, key: principal, rate: 5/m }\n')]])
    expect(disagreementOf(own, others)).toEqual({
      instances: ['gw-2'],
      differences: ['per-principal: key principal, rate 5/minute, burst 5, ip_prefix_v6 128 here; key principal, rate 5/minute, burst 5 on gw-2'],
    })
    // The default is not spelled out: an instance of an earlier version describes it so too.
    expect(limitsOf('  - { name: t, key: claim:tenant, quota: 9/h, ip_prefix_v6: 64 }\n')).toEqual({ t: 'key claim:tenant, quota 9/hour' })
  })

  it('are named up to twenty differences, then counted', () => {
    const own = limitsOf(Array.from({ length: 25 }, (_, i) => `  - { name: l${String(i).padStart(2, '0')}, key: ip, rate: 1/s }\n`).join(''))
    const { instances, differences } = disagreementOf(own, new Map([['gw-2', {}]]))
    expect(instances).toEqual(['gw-2'])
    expect(differences).toHaveLength(21)
    expect(differences.at(-1)).toBe('and 5 more')
  })
})
