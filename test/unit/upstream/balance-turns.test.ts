// Round robin's turn moves with first picks only: a retry's pick (found by a probe), and a retry's
// pick among targets all tried already (found by review), moved it, so a dead target's successor's
// turn went back to the dead one and every request tried it first.
import { describe, expect, it } from 'vitest'
import { pickTarget, type Balanced } from '../../../src/upstream/balance.ts'
import type { Target } from '../../../src/upstream/targets.ts'

const target = (name: string) => ({ url: name, available: true, inFlight: 0, seed: name.length }) as unknown as Target
const request = { identity: null, clientIp: '127.0.0.1' }

describe.each(['round_robin', 'least_request'] as const)('%s', (balance) => {
  it('a retry, among untried targets or all tried ones, leaves the turn where the first pick put it', () => {
    const [a, b] = [target('a'), target('b')]
    const upstream: Balanced = { targets: [a, b], balance, next: 0 }
    expect(pickTarget(upstream, request, null)).toBe(a)
    const turn = upstream.next
    expect(pickTarget(upstream, request, [a])).toBe(b)
    expect(upstream.next).toBe(turn)
    pickTarget(upstream, request, [a, b]) // a third attempt: every target tried
    expect(upstream.next).toBe(turn)
    expect(pickTarget(upstream, request, null)).toBe(b)
  })
})
