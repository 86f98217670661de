import { describe, expect, it } from 'vitest'
import { createSharedResources } from '../../../src/collections/index.ts'

function pools(failClose: string[] = []) {
  const closed: string[] = []
  const registry = createSharedResources({
    fingerprint: (config: { name: string; size: number }) => JSON.stringify(config),
    create: (config) => ({ ...config, id: Symbol(config.name) }),
    close: async (pool) => {
      closed.push(pool.name)
      if (failClose.includes(pool.name)) throw new Error(`closing ${pool.name} failed`)
    },
  })
  return { registry, closed }
}

describe('shared resources (pools, key sets, limits stores)', () => {
  it('gives the same resource back for unchanged settings, and a new one for changed settings', () => {
    const { registry } = pools()
    const a = registry.acquire({ name: 'a', size: 1 })
    expect(registry.acquire({ name: 'a', size: 1 })).toBe(a)
    expect(registry.acquire({ name: 'a', size: 2 })).not.toBe(a)
  })

  it('a reload retires what the new config does not use, and keeps the rest', async () => {
    const { registry, closed } = pools()
    const a = registry.acquire({ name: 'a', size: 1 })
    registry.acquire({ name: 'b', size: 1 })
    const next = [a, registry.acquire({ name: 'c', size: 1 })]
    await registry.retire(next)
    expect(closed).toEqual(['b'])
    expect(registry.acquire({ name: 'a', size: 1 })).toBe(a)
    await registry.closeAll()
    expect(closed.sort()).toEqual(['a', 'b', 'c'])
  })

  it('a close that fails does not stop the others or the reload', async () => {
    const { registry, closed } = pools(['a'])
    registry.acquire({ name: 'a', size: 1 })
    registry.acquire({ name: 'b', size: 1 })
    await expect(registry.retire([])).resolves.toBeUndefined()
    expect(closed.sort()).toEqual(['a', 'b'])
  })
})
