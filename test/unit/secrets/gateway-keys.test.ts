// secrets.rotation refuses a schedule for a key the gateway makes (secrets/open.ts): the list the
// secrets layer holds is the names the keys' own modules keep them under.
import { describe, expect, it } from 'vitest'
import { EXCHANGE_KEY } from '../../../src/agents/index.ts'
import { CHECKPOINT_KEY } from '../../../src/audit/index.ts'
import { GATEWAY_KEYS } from '../../../src/secrets/index.ts'
import { ASSERTION_KEY } from '../../../src/upstream/index.ts'

describe('GATEWAY_KEYS', () => {
  it('names every key the gateway makes', () => {
    expect([...GATEWAY_KEYS].sort()).toEqual([ASSERTION_KEY, CHECKPOINT_KEY, EXCHANGE_KEY].sort())
  })
})
