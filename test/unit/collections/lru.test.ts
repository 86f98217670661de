import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createLru } from '../../../src/collections/index.ts'

describe('the LRU (verified tokens, signed assertions)', () => {
  it('returns an entry until it expires, then forgets it', () => {
    const cache = createLru<string>(10)
    cache.set('t1', 'alice', 1_000)
    expect(cache.get('t1', 999)).toBe('alice')
    expect(cache.get('t1', 1_000)).toBeUndefined()
    expect(cache.size).toBe(0)
  })

  it('stays within its bound, evicting the least recently used', () => {
    const cache = createLru<string>(2)
    cache.set('a', 'A', 10_000)
    cache.set('b', 'B', 10_000)
    expect(cache.get('a', 0)).toBe('A') // a is now the most recent
    cache.set('c', 'C', 10_000)
    expect(cache.size).toBe(2)
    expect(cache.get('b', 0)).toBeUndefined()
    expect(cache.get('a', 0)).toBe('A')
    expect(cache.get('c', 0)).toBe('C')
  })

  it('setting a key again replaces its value and expiry and makes it the most recent', () => {
    const cache = createLru<string>(2)
    cache.set('a', 'A', 10)
    cache.set('b', 'B', 10_000)
    cache.set('a', 'A2', 10_000)
    cache.set('c', 'C', 10_000)
    expect(cache.get('b', 0)).toBeUndefined()
    expect(cache.get('a', 100)).toBe('A2')
    expect(cache.size).toBe(2)
  })

  it('agrees with a plain list, most recent first, over any sequence of gets, sets, deletes and clears', () => {
    type Op = { kind: 'get' | 'set' | 'delete'; key: string; at: number } | { kind: 'clear' }
    const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f')
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constantFrom('get' as const, 'set' as const, 'delete' as const), key, at: fc.integer({ min: 0, max: 20 }) }),
      fc.constant({ kind: 'clear' as const }),
    )
    fc.assert(fc.property(fc.integer({ min: 0, max: 4 }), fc.array(op, { maxLength: 60 }), (max, ops) => {
      const cache = createLru<number>(max)
      let model: Array<{ key: string; value: number; expiresAt: number }> = [] // most recent first
      ops.forEach((o, i) => {
        if (o.kind === 'clear') {
          cache.clear()
          model = []
        } else if (o.kind === 'set') {
          cache.set(o.key, i, o.at + 10)
          if (max === 0) return
          model = [{ key: o.key, value: i, expiresAt: o.at + 10 }, ...model.filter((e) => e.key !== o.key)].slice(0, max)
        } else if (o.kind === 'delete') {
          cache.delete(o.key)
          model = model.filter((e) => e.key !== o.key)
        } else {
          const entry = model.find((e) => e.key === o.key)
          const live = entry !== undefined && entry.expiresAt > o.at
          expect(cache.get(o.key, o.at)).toBe(live ? entry.value : undefined)
          model = model.filter((e) => e.key !== o.key)
          if (live) model.unshift(entry)
        }
        expect(cache.size).toBe(model.length)
      })
    }))
  })

  it('matches whole keys only', () => {
    const cache = createLru<string>(10)
    cache.set('header.payload.signature', 'alice', 10_000)
    expect(cache.get('header.payload.signatur', 0)).toBeUndefined()
    expect(cache.get('header.payload2.signature', 0)).toBeUndefined()
  })

  it('stores nothing with a size of 0', () => {
    const cache = createLru<string>(0)
    cache.set('a', 'A', 10_000)
    expect(cache.get('a', 0)).toBeUndefined()
  })
})
