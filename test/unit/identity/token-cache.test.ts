import { describe, expect, it } from 'vitest'
import { createTokenCache } from '../../../src/identity/token-cache.ts'

describe('the verified-token cache', () => {
  it('returns an entry until it expires', () => {
    const cache = createTokenCache<string>(10)
    cache.set('t1', 'alice', 1_000)
    expect(cache.get('t1', 999)).toBe('alice')
    expect(cache.get('t1', 1_000)).toBeUndefined()
    expect(cache.size).toBe(0)
  })

  it('stays within its bound, evicting the least recently used', () => {
    const cache = createTokenCache<string>(2)
    cache.set('a', 'A', 10_000)
    cache.set('b', 'B', 10_000)
    expect(cache.get('a', 0)).toBe('A') // a is now the most recent
    cache.set('c', 'C', 10_000)
    expect(cache.size).toBe(2)
    expect(cache.get('b', 0)).toBeUndefined()
    expect(cache.get('a', 0)).toBe('A')
    expect(cache.get('c', 0)).toBe('C')
  })

  it('matches whole tokens only', () => {
    const cache = createTokenCache<string>(10)
    cache.set('header.payload.signature', 'alice', 10_000)
    expect(cache.get('header.payload.signatur', 0)).toBeUndefined()
    expect(cache.get('header.payload2.signature', 0)).toBeUndefined()
  })

  it('caches nothing with a size of 0', () => {
    const cache = createTokenCache<string>(0)
    cache.set('a', 'A', 10_000)
    expect(cache.get('a', 0)).toBeUndefined()
  })
})
