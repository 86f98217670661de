// The address a limit counts by (issue 22, point 5): an IPv6 caller by its /64 (or ip_prefix_v6),
// in any spelling; an IPv4-mapped address as its IPv4 address. Checked against Node's BlockList.
import { BlockList } from 'node:net'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { loadConfigText } from '../../../src/config/index.ts'
import { addressKey } from '../../../src/limits/address-key.ts'

describe('addressKey', () => {
  it('keeps an IPv4 address as it is', () => {
    expect(addressKey('198.51.100.7', 64)).toBe('198.51.100.7')
  })

  it('counts IPv6 addresses by their /64 by default: a client rotating inside it stays one key', () => {
    const key = addressKey('2001:db8:1:2::1', 64)
    expect(key).toBe('2001:db8:1:2/64')
    expect(addressKey('2001:db8:1:2:ffff:ffff:ffff:ffff', 64)).toBe(key)
    expect(addressKey('2001:db8:1:3::1', 64)).not.toBe(key)
  })

  it('one address is one key however it is spelled', () => {
    const key = addressKey('2001:db8::1', 128)
    for (const spelling of ['2001:DB8::1', '2001:0db8:0:0::1', '2001:db8:0:0:0:0:0:1', '2001:db8::0:1', '2001:db8::1%eth0']) {
      expect(addressKey(spelling, 128)).toBe(key)
    }
  })

  it('an IPv4-mapped IPv6 address is its IPv4 address, in every spelling', () => {
    for (const mapped of ['::ffff:198.51.100.7', '::FFFF:198.51.100.7', '::ffff:c633:6407', '0:0:0:0:0:ffff:c633:6407', '0::FfFf:198.51.100.7']) {
      expect(addressKey(mapped, 64)).toBe('198.51.100.7')
    }
  })

  it('prefixes that do not fall on a group boundary mask the partial group', () => {
    expect(addressKey('2001:db8:1:2f::1', 60)).toBe('2001:db8:1:20/60')
    expect(addressKey('2001:db8:1:2f::1', 56)).toBe('2001:db8:1:0/56')
    expect(addressKey('2001:db8:1:2f::1', 0)).toBe('/0')
  })

  it('two addresses share a key exactly when they are in the same prefix (BlockList agrees)', () => {
    const prefix = fc.integer({ min: 1, max: 128 })
    fc.assert(fc.property(fc.ipV6(), fc.ipV6(), prefix, (a, b, bits) => {
      if (addressKey(a, bits).includes('.') || addressKey(b, bits).includes('.')) return // IPv4-mapped: the IPv4 rule
      const list = new BlockList()
      list.addSubnet(a, bits, 'ipv6')
      expect(addressKey(a, bits) === addressKey(b, bits)).toBe(list.check(b, 'ipv6'))
    }), { numRuns: 2_000 })
  })

  it('a neighbour in the same prefix shares the key (BlockList agrees)', () => {
    fc.assert(fc.property(fc.ipV6(), fc.integer({ min: 1, max: 127 }), fc.integer({ min: 0, max: 0xffff }), (a, bits, noise) => {
      if (addressKey(a, 128).includes('.')) return
      const groups = addressKey(a, 128).replace('/128', '').split(':').map((g) => Number.parseInt(g, 16))
      const last = groups.length - 1
      groups[last] = (groups[last] as number) ^ (noise & ((1 << Math.min(16, 128 - bits)) - 1))
      const b = groups.map((g) => g.toString(16)).join(':')
      const list = new BlockList()
      list.addSubnet(a, bits, 'ipv6')
      expect(list.check(b, 'ipv6')).toBe(true)
      expect(addressKey(b, bits)).toBe(addressKey(a, bits))
    }), { numRuns: 2_000 })
  })

  it('leaves text that is not an address alone instead of throwing', () => {
    for (const text of ['1:::2', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '::1.2.3', '::1.2.3.256']) {
      expect(addressKey(text, 64)).toBe(text)
    }
  })
})

describe('limits[].ip_prefix_v6', () => {
  const config = (extra: string) => loadConfigText(`limits:\n  - { name: per-ip, key: ip, rate: 1/s${extra} }\n`, 'bouncer.yaml')

  it('defaults to 64 and takes 0 to 128', () => {
    expect(config('').config?.limits[0]?.ip_prefix_v6).toBe(64)
    expect(config(', ip_prefix_v6: 128').config?.limits[0]?.ip_prefix_v6).toBe(128)
    expect(config(', ip_prefix_v6: 129').diagnostics.map((d) => d.severity)).toContain('error')
    expect(config(', ip_prefix_v6: 56.5').diagnostics.map((d) => d.severity)).toContain('error')
  })
})
