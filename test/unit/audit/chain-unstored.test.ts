// A process killed after chaining records and before any sink took them (SIGKILL under load, as
// the cluster suite does) leaves a state file ahead of every sink with nothing spilled: the chain
// continues from the newest stored record, so `audit verify` finds no hole.
import { describe, expect, it } from 'vitest'
import { decideHead, type StateRead } from '../../../src/audit/chain-head.ts'
import { chain, GENESIS_HASH, type RecordInput } from '../../../src/audit/record.ts'

const values: RecordInput = {
  id: '00000000-0000-4000-8000-000000000009', time: '2026-12-01T12:00:00.000Z', request_id: 'r9', trace_id: null, method: 'GET',
  path: '/x', route: 'x', status: 200, decision: 'allow', code: null, detail: null, statement: 'S', issuer: null, subject: null,
  client_id: null, roles: [], source_ip: '127.0.0.1', user_agent: null, upstream: 'api', upstream_status: 200, duration_ms: 1,
  bytes_in: 0, bytes_out: 2, limit: null,
}
const stored = chain(values, GENESIS_HASH)
const ahead: StateRead = { kind: 'read', state: { chain: 'c1', seq: 311, hash: 'a'.repeat(64), id: 'gone' } }
const sinkHead = { seq: 309, hash: stored.hash, id: stored.id, problem: null }

describe('records chained but never stored', () => {
  it('continue the chain from the newest record a sink holds, naming the records that never were', () => {
    expect(decideHead(ahead, 'chain.json', [{ sink: 'postgres:bouncer', head: sinkHead }, { sink: 'stdout', head: null }]))
      .toEqual({ kind: 'continue', head: { seq: 309, hash: stored.hash, id: stored.id }, unstored: { from: 310, to: 311 } })
  })

  it('trust the state when a spill file may hold them, or a sink could not be asked', () => {
    expect(decideHead(ahead, 'chain.json', [{ sink: 'postgres:bouncer', head: sinkHead, spilled: true }]))
      .toEqual({ kind: 'continue', head: { seq: 311, hash: 'a'.repeat(64), id: 'gone' } })
    expect(decideHead(ahead, 'chain.json', [{ sink: 'postgres:bouncer', head: sinkHead }, { sink: 'sqlite:x', head: null, unavailable: true }]))
      .toEqual({ kind: 'continue', head: { seq: 311, hash: 'a'.repeat(64), id: 'gone' } })
  })

  it('restart the chain, saying why, when the newest stored record is damaged', () => {
    expect(decideHead(ahead, 'chain.json', [{ sink: 'postgres:bouncer', head: { ...sinkHead, problem: 'does not match its hash (it was damaged or edited)' } }]))
      .toMatchObject({ kind: 'restart', previous: 'c1', reason: expect.stringContaining('record 309 of chain c1 in postgres:bouncer does not match') })
  })
})

describe('a chain none of whose numbered records any sink took', () => {
  const numbered: StateRead = { kind: 'read', state: { chain: 'c1', seq: 3, hash: 'a'.repeat(64), id: 'gone' } }
  const nothing = { sink: 'sqlite:x', head: null, readsBack: true }
  const stateHead = { kind: 'continue', head: { seq: 3, hash: 'a'.repeat(64), id: 'gone' } }

  it('starts a new chain, saying which records were lost, when no checkpoint signed any of them', () => {
    expect(decideHead(numbered, 'chain.json', [nothing, { sink: 'stdout', head: null }])).toEqual({
      kind: 'restart', previous: 'c1',
      reason: 'the records it numbered (1–3) are in no sink and no checkpoint signed one: the audit worker that numbered them stopped before a sink stored them (lost records; under durability: sync their requests were not served), or the log was emptied before the chain\'s first checkpoint',
    })
  })

  it('goes on from the state when a checkpoint signed the chain (the log was emptied), or whether one did is not known', () => {
    expect(decideHead(numbered, 'chain.json', [nothing], { count: 3, hash: 'a'.repeat(64), time: '2026-12-01T12:00:00.000Z' })).toEqual(stateHead)
    expect(decideHead(numbered, 'chain.json', [nothing], 'unreadable')).toEqual(stateHead)
  })

  it('goes on from the state when a sink could not say: spilled, away, or one that reads nothing back (stdout)', () => {
    expect(decideHead(numbered, 'chain.json', [{ ...nothing, spilled: true }])).toEqual(stateHead)
    expect(decideHead(numbered, 'chain.json', [nothing, { sink: 'stdout', head: null, spilled: true }])).toEqual(stateHead)
    expect(decideHead(numbered, 'chain.json', [nothing, { sink: 'postgres:b', head: null, unavailable: true, readsBack: true }])).toEqual(stateHead)
    expect(decideHead(numbered, 'chain.json', [{ sink: 'stdout', head: null }])).toEqual(stateHead)
  })

  it('goes on from the start when nothing was numbered', () => {
    const fresh: StateRead = { kind: 'read', state: { chain: 'c1', seq: 0, hash: GENESIS_HASH, id: null } }
    expect(decideHead(fresh, 'chain.json', [nothing])).toEqual({ kind: 'continue', head: { seq: 0, hash: GENESIS_HASH, id: null } })
  })
})
