// The JWKS endpoint's signers: a retired runtime's stays published for its assertion ttl, then goes.
import { expect, it } from 'vitest'
import { signersToPublish, type Live } from '../../../src/instance/live.ts'
import type { AssertionSigner } from '../../../src/upstream/index.ts'

const signer = (name: string) => ({ name }) as unknown as AssertionSigner
const runtimeWith = (assertions: AssertionSigner | null) => ({ signing: { assertions, exchangeKeys: null } })

it('publishes the current, the replaced and the recently retired signers, and forgets a retired one at its deadline', () => {
  const current = signer('current')
  const draining = signer('draining')
  const retired = signer('retired')
  const live = {
    state: { runtime: runtimeWith(current) },
    replaced: new Map([[runtimeWith(draining), 0]]),
    retiredSigners: new Map([[retired, 1_000]]),
  } as unknown as Live
  expect(signersToPublish(live, 999)).toEqual([current, draining, retired])
  expect(signersToPublish(live, 1_000)).toEqual([current, draining])
  expect(live.retiredSigners.size).toBe(0)
})
