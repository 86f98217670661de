// The batches a dead audit worker left unconfirmed: each is answered by what its replacement says
// every sink holds, once; those it never numbered are lost at once; and none waits past the bound.
import { describe, expect, it } from 'vitest'
import { unconfirmedBatches, type InFlightBatch, type Settled } from '../../../src/audit/unconfirmed.ts'
import { waitFor } from '../../helpers/wait.ts'

function batch(count: number, last?: number | null): InFlightBatch & { heard: boolean[] } {
  const heard: boolean[] = []
  return { count, last, heard, waiters: [(committed) => heard.push(committed)] }
}

describe('unconfirmed audit batches', () => {
  it('a batch whose last record every sink holds is committed; a later one, an unnumbered or a dropped one is lost', () => {
    const outcomes: Settled[] = []
    const unconfirmed = unconfirmedBatches(60_000, (outcome) => outcomes.push(outcome))
    const stored = batch(2, 10)
    const after = batch(3, 13)
    const unnumbered = batch(4)
    const dropped = batch(5, null)
    expect(unconfirmed.hold([stored, after, unnumbered, dropped])).toBe(9)
    expect([unnumbered.heard, dropped.heard]).toEqual([[false], [false]])
    expect(unconfirmed.records).toBe(5)
    expect([stored.heard, after.heard]).toEqual([[], []]) // waiting for the replacement

    unconfirmed.settle(12, 'replacement')
    expect([stored.heard, after.heard]).toEqual([[true], [false]])
    expect(outcomes).toEqual([{ stored: 2, lost: 3, by: 'replacement' }])
    expect(unconfirmed.records).toBe(0)
    unconfirmed.settle(100, 'replacement') // nothing held: no second answer
    expect(outcomes).toHaveLength(1)
    expect(stored.heard).toEqual([true])
  })

  it('a replacement that cannot say (null) confirms nothing', () => {
    const outcomes: Settled[] = []
    const held = batch(1, 1)
    const unconfirmed = unconfirmedBatches(60_000, (outcome) => outcomes.push(outcome))
    unconfirmed.hold([held])
    unconfirmed.settle(null, 'no replacement')
    expect(held.heard).toEqual([false])
    expect(outcomes).toEqual([{ stored: 0, lost: 1, by: 'no replacement' }])
  })

  it('held batches are lost at the bound when no replacement says anything', async () => {
    const outcomes: Settled[] = []
    const held = batch(1, 7)
    unconfirmedBatches(50, (outcome) => outcomes.push(outcome)).hold([held])
    await waitFor(() => outcomes.length === 1, 'the bound')
    expect(held.heard).toEqual([false])
    expect(outcomes).toEqual([{ stored: 0, lost: 1, by: 'timeout' }])
  })
})
