// The JWKS endpoint's signers: a retired runtime's stays published for its assertion ttl, then goes.
import { expect, it } from 'vitest'
import { retireSigner, signersToPublish, type Live } from '../../../src/instance/live.ts'
import type { AssertionSigner } from '../../../src/upstream/index.ts'

const signer = (name: string) => ({ name }) as unknown as AssertionSigner
const runtimeWith = (assertions: AssertionSigner | null) => ({ signing: { assertions, exchangeKeys: null } })

it('publishes the current, the replaced and the recently retired signers; a retired one until its deadline', () => {
  const current = signer('current')
  const draining = signer('draining')
  const retired = signer('retired')
  const live = {
    state: { runtime: runtimeWith(current) },
    replaced: new Map([[runtimeWith(draining), 0]]),
    retiredSigners: new Map(),
  } as unknown as Live
  retireSigner(live, retired, 1_000, 0)
  expect(signersToPublish(live, 999)).toEqual([current, draining, retired])
  expect(signersToPublish(live, 1_000)).toEqual([current, draining])
})

it('forgets the retired signers past their deadline when another retires, whether or not the JWKS was read', () => {
  const live = { retiredSigners: new Map() } as unknown as Live
  for (let i = 0; i < 100; i++) retireSigner(live, signer(`reload ${i}`), i * 10 + 300, i * 10)
  expect(live.retiredSigners.size).toBe(30) // those of the last ttl (300) only
  retireSigner(live, null, 0, 10_000) // a runtime without assertions retiring
  expect(live.retiredSigners.size).toBe(0)
})
