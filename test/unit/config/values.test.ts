import { describe, expect, it } from 'vitest'
import { addressSet, parseCidr, parseDuration, parseGlob, parseListen, parseRate, type Cidr } from '../../../src/config/index.ts'

describe('durations', () => {
  it.each([['500ms', 500], ['30s', 30_000], ['5m', 300_000], ['1h', 3_600_000], ['1d', 86_400_000]])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, value: ms })
  })
  it.each(['30', '1.5s', '10x', '', 's', '-1s'])('"%s" is refused with an example', (text) => {
    const result = parseDuration(text)
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.message).toContain('500ms, 30s')
  })
})

describe('rates', () => {
  it('parses N/unit', () => {
    expect(parseRate('10/s')).toEqual({ ok: true, value: { count: 10, periodMs: 1000, per: 'second', text: '10/s' } })
    expect(parseRate('10000/d')).toMatchObject({ ok: true, value: { count: 10_000, periodMs: 86_400_000, per: 'day' } })
  })
  it.each(['0/s', '10/w', '10', '10/ s', 'x/s'])('"%s" is refused', (text) => {
    expect(parseRate(text).ok).toBe(false)
  })
})

describe('CIDRs and address sets', () => {
  const cidrs = ['10.0.0.0/8', '127.0.0.1', '2001:db8::/32'].map((text) => (parseCidr(text) as { value: Cidr }).value)
  const set = addressSet(cidrs)
  it.each([
    ['10.1.2.3', true], ['11.0.0.1', false], ['127.0.0.1', true], ['127.0.0.2', false],
    ['::ffff:10.9.9.9', true], ['2001:db8::1', true], ['2001:db9::1', false], ['not-an-ip', false],
  ])('%s in the set: %s', (address, expected) => {
    expect(set.contains(address)).toBe(expected)
  })
  it.each(['10.0.0.0/33', '2001:db8::/129', '300.1.1.1/8', '10.0.0.0/8/1', 'ten/8', '10.0.0.0/x'])('"%s" is refused', (text) => {
    expect(parseCidr(text).ok).toBe(false)
  })
})

describe('globs', () => {
  const glob = (text: string) => {
    const parsed = parseGlob(text)
    if (!parsed.ok) throw new Error(parsed.message)
    return parsed.value
  }
  it('matches * and ? and nothing else', () => {
    expect(glob('sales.*').matches('sales.daily')).toBe(true)
    expect(glob('sales.*').matches('salesXdaily')).toBe(false)
    expect(glob('svc-?-x').matches('svc-a-x')).toBe(true)
    expect(glob('*-prod').matches('looker-prod')).toBe(true)
    expect(glob('a(b)+').matches('a(b)+')).toBe(true)
    expect(glob('exact').literal).toBe(true)
  })
  it.each(['', 'a[bc]', '{a,b}'])('"%s" is refused', (text) => {
    expect(parseGlob(text).ok).toBe(false)
  })
})

describe('listen addresses', () => {
  it('parses IPv4, IPv6 and names', () => {
    expect(parseListen('127.0.0.1:8080')).toMatchObject({ ok: true, value: { host: '127.0.0.1', port: 8080 } })
    expect(parseListen('[::1]:0')).toMatchObject({ ok: true, value: { host: '::1', port: 0 } })
    expect(parseListen('localhost:9090')).toMatchObject({ ok: true, value: { host: 'localhost', port: 9090 } })
  })
  it.each(['8080', '127.0.0.1', '127.0.0.1:99999', '::1:80'])('"%s" is refused', (text) => {
    expect(parseListen(text).ok).toBe(false)
  })
})
