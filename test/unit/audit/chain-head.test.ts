// Where the chain goes on at start: the state file and the sinks must agree on a sound last record.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkedHead, decideHead, readChainState, restartRecord, writeChainState, type StateRead } from '../../../src/audit/chain-head.ts'
import { chain, GENESIS_HASH, hashOf, type RecordInput } from '../../../src/audit/record.ts'

const values: RecordInput = {
  id: '00000000-0000-4000-8000-000000000001', time: '2026-11-26T12:00:00.000Z', request_id: 'r1', trace_id: null, method: 'GET',
  path: '/x', route: 'x', status: 200, decision: 'allow', code: null, detail: null, statement: 'S', issuer: null, subject: null,
  client_id: null, roles: [], source_ip: '127.0.0.1', user_agent: null, upstream: 'api', upstream_status: 200, duration_ms: 1.5,
  bytes_in: 0, bytes_out: 2, limit: null,
}
const record = chain(values, GENESIS_HASH)
const state: StateRead = { kind: 'read', state: { chain: 'c1', seq: 3, hash: record.hash, id: record.id } }

describe('the chain state file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-chain-head-'))

  it('is absent on a first start, read back when written, unreadable when damaged', () => {
    const path = join(dir, 'chain.json')
    expect(readChainState(path)).toEqual({ kind: 'none' })
    writeChainState(path, { chain: 'c1', seq: 3, hash: record.hash, id: record.id })
    expect(readChainState(path)).toEqual(state)
    writeFileSync(path, '{"chain":"c1","seq":3,"hash":"short"}')
    expect(readChainState(path)).toMatchObject({ kind: 'unreadable', reason: 'it does not hold a chain id, a sequence number and a hash' })
    writeFileSync(path, '{"chain":')
    expect(readChainState(path)).toMatchObject({ kind: 'unreadable', reason: expect.stringMatching(/^not JSON/) })
  })
})

describe('a sink\'s last record', () => {
  it('is sound when it hashes to its hash, damaged when not, unreadable when it cannot be read', () => {
    expect(checkedHead(3, () => record)).toEqual({ seq: 3, hash: record.hash, id: record.id, problem: null })
    expect(checkedHead(3, () => ({ ...record, status: 500 })).problem).toBe('does not match its hash (it was damaged or edited)')
    expect(checkedHead(3, () => ({ ...record, hash: 'x' })).problem).toBe('has no valid hash')
    expect(checkedHead(3, () => JSON.parse('{') as never).problem).toMatch(/^cannot be read \(/)
  })
})

describe('deciding where the chain goes on', () => {
  const sound = { seq: 3, hash: record.hash, id: record.id, problem: null }

  it('continues when the sinks agree with the state, or are only behind it', () => {
    expect(decideHead(state, 'chain.json', [{ sink: 'sqlite:a', head: sound }, { sink: 'postgres:b', head: { ...sound, seq: 1, hash: 'f'.repeat(64) } }, { sink: 'stdout', head: null }]))
      .toEqual({ kind: 'continue', head: { seq: 3, hash: record.hash, id: record.id } })
  })

  it('starts a new chain on a first start, and restarts (saying why) when the head cannot be trusted', () => {
    expect(decideHead({ kind: 'none' }, 'chain.json', [])).toEqual({ kind: 'new' })
    expect(decideHead({ kind: 'unreadable', reason: 'EIO' }, '/s/chain.json', [])).toEqual({ kind: 'restart', previous: null, reason: 'the chain state /s/chain.json cannot be read (EIO)' })
    expect(decideHead(state, 'chain.json', [{ sink: 'sqlite:a', head: { ...sound, problem: 'has no valid hash' } }]))
      .toEqual({ kind: 'restart', previous: 'c1', reason: 'record 3 of chain c1 in sqlite:a has no valid hash' })
    expect(decideHead(state, 'chain.json', [{ sink: 'sqlite:a', head: { ...sound, hash: 'e'.repeat(64) } }]))
      .toMatchObject({ kind: 'restart', reason: expect.stringContaining('is not the record the chain state names') })
  })

  it('restarts when the chain would go on from before its latest signed checkpoint, or from a record it did not sign', () => {
    const signedAt = '2026-11-26T12:01:00.000Z'
    expect(decideHead(state, 'chain.json', [{ sink: 'sqlite:a', head: sound }], { count: 3, hash: record.hash, time: signedAt }))
      .toEqual({ kind: 'continue', head: { seq: 3, hash: record.hash, id: record.id } })
    expect(decideHead(state, 'chain.json', [{ sink: 'sqlite:a', head: sound }], { count: 5, hash: 'a'.repeat(64), time: signedAt })).toEqual({
      kind: 'restart', previous: 'c1',
      reason: `chain c1 ends at record 3 in its state file and sinks, but the checkpoint signed at ${signedAt} vouches for 5: its newest records were deleted or lost, or the log was replaced by an older copy`,
    })
    expect(decideHead(state, 'chain.json', [{ sink: 'sqlite:a', head: sound }], { count: 3, hash: 'a'.repeat(64), time: signedAt }))
      .toMatchObject({ kind: 'restart', reason: expect.stringContaining(`record 3 of chain c1 is not the one the checkpoint signed at ${signedAt} vouches for`) })
  })

  it('writes the break as an ordinary record, first of its chain', () => {
    const first = restartRecord('c1', 'record 3 of chain c1 in sqlite:a has no valid hash', 'gw-1')
    expect(first).toMatchObject({ code: 'chain_restarted', decision: 'error', prev_hash: GENESIS_HASH, detail: expect.stringContaining('Chain c1 cannot be continued: record 3'), instance: 'gw-1' })
    const { hash, ...rest } = first
    expect(hashOf(rest)).toBe(hash)
  })
})
