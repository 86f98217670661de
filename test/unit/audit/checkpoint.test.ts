// Signed checkpoints: what is signed, where the key lives, and the file that keeps them.
import { spawnSync } from 'node:child_process'
import { createPublicKey, createPrivateKey } from 'node:crypto'
import { closeSync, constants, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { CHECKPOINT_KEY, checkpointSigningKey, checkpointVerificationKeys } from '../../../src/audit/checkpoint-key.ts'
import { appendCheckpoint, checkpointPathOf, checkpointProblem, readCheckpointFile, signCheckpoint } from '../../../src/audit/checkpoint.ts'
import type { AuditConfig } from '../../../src/config/index.ts'
import { openEmbeddedStore } from '../../../src/secrets/embedded.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const dir = () => mkdtempSync(join(tmpdir(), 'bouncer-checkpoint-'))
const logs: string[] = []
const logger = createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) }) })
const head = { seq: 20, hash: 'a'.repeat(64), id: '00000000-0000-4000-8000-000000000020' }

function signer(keyFile: string) {
  const key = checkpointSigningKey(null, keyFile, logger)
  return { key, signing: { kid: key.kid, privateKey: createPrivateKey({ key: key.jwk as never, format: 'jwk' }) } }
}

describe('a checkpoint', () => {
  it('signs chain, count, id, hash, time and kid: changing any of them breaks the signature', () => {
    const { key, signing } = signer(join(dir(), 'key'))
    const checkpoint = signCheckpoint('c1', head, signing, new Date('2026-11-26T12:00:00Z'))
    expect(checkpoint).toMatchObject({ chain: 'c1', count: 20, id: head.id, hash: head.hash, time: '2026-11-26T12:00:00.000Z', kid: key.kid })
    const keys = new Map([[key.kid, createPublicKey(signing.privateKey)]])
    expect(checkpointProblem(checkpoint, keys)).toBeNull()
    for (const forged of [{ count: 25 }, { chain: 'c2' }, { hash: 'b'.repeat(64) }, { time: '2026-11-27T12:00:00.000Z' }, { id: 'x' }]) {
      expect(checkpointProblem({ ...checkpoint, ...forged }, keys)).toBe('bad signature')
    }
    expect(checkpointProblem({ ...checkpoint, kid: 'other' }, keys)).toBe('unknown key')
  })

  it('is kept beside the first SQLite log, else in spill_dir, unless a path is configured', () => {
    const config = (sinks: AuditConfig['sinks'], path?: string) => ({ sinks, spill_dir: './spill', checkpoint_path: path }) as AuditConfig
    expect(checkpointPathOf(config([{ type: 'stdout' }, { type: 'sqlite', path: './data/audit.db' }]))).toBe('./data/audit.db.checkpoints')
    expect(checkpointPathOf(config([{ type: 'postgres', url: 'postgres://x', schema: 'b', write_timeout: 2_000, read_timeout: 30_000 }]))).toBe('spill/checkpoints.ndjson')
    expect(checkpointPathOf(config([{ type: 'sqlite', path: './a.db' }], '/worm/bouncer.checkpoints'))).toBe('/worm/bouncer.checkpoints')
  })
})

describe('the checkpoint file', () => {
  it('appends, reads back, counts lines that are not checkpoints, and compacts to the latest genuine one per chain', () => {
    const own = dir()
    const file = join(own, 'audit.db.checkpoints')
    const { key, signing } = signer(join(own, 'key'))
    const keys = new Map([[key.kid, createPublicKey(signing.privateKey)]])
    appendCheckpoint(file, signCheckpoint('c1', { ...head, seq: 1 }, signing), keys)
    writeFileSync(file, `${readFileSync(file, 'utf8')}not a checkpoint\n`)
    expect(readCheckpointFile(file)).toMatchObject({ checkpoints: [{ chain: 'c1', count: 1 }], damaged: 1 })
    expect(readCheckpointFile(join(own, 'none'))).toEqual({ checkpoints: [], damaged: 0 })

    // A forged line with a huge count must not push the genuine latest one out when compacting.
    const genuine = signCheckpoint('c1', { ...head, seq: 2 }, signing)
    appendCheckpoint(file, genuine, keys)
    writeFileSync(file, `${readFileSync(file, 'utf8')}${JSON.stringify({ ...genuine, count: 999 })}\n`)
    const padding = signCheckpoint('c2', { ...head, seq: 1 }, signing)
    writeFileSync(file, `${readFileSync(file, 'utf8')}${`${JSON.stringify(padding)}\n`.repeat(5_000)}`)
    const other = signCheckpoint('c0', { ...head, seq: 7 }, signing)
    appendCheckpoint(file, other, keys) // past 1 MiB: compacted
    expect(readCheckpointFile(file)).toEqual({ checkpoints: [genuine, padding, other], damaged: 0 })
  })

  // A probe: with server.workers every worker's audit thread appends to this one file, and two
  // compactions at once wrote one temporary file. One thread compacts at a time (a lock file); a
  // lock left by a thread that died during one is taken over once stale.
  it('leaves a compaction under way in another thread to it, and takes over a stale one', () => {
    const own = dir()
    const file = join(own, 'audit.db.checkpoints')
    const { key, signing } = signer(join(own, 'key'))
    const keys = new Map([[key.kid, createPublicKey(signing.privateKey)]])
    const padding = signCheckpoint('c2', { ...head, seq: 1 }, signing)
    writeFileSync(file, `${JSON.stringify(padding)}\n`.repeat(5_000))
    writeFileSync(`${file}.compacting`, '') // another thread compacts it now
    const first = signCheckpoint('c1', { ...head, seq: 1 }, signing)
    appendCheckpoint(file, first, keys)
    expect(readCheckpointFile(file).checkpoints).toHaveLength(5_001) // appended, not compacted

    const stale = (Date.now() - 60_000) / 1_000
    utimesSync(`${file}.compacting`, stale, stale) // its thread died a minute ago
    const second = signCheckpoint('c1', { ...head, seq: 2 }, signing)
    appendCheckpoint(file, second, keys)
    expect(readCheckpointFile(file)).toEqual({ checkpoints: [padding, second], damaged: 0 })
    expect(existsSync(`${file}.compacting`)).toBe(false)
  })

  // An operations report: a named pipe at the checkpoint path held the audit worker's plain open
  // for ever (a gateway shows it: audit-integrity.test.ts). Refused without blocking, read or not.
  it('refuses to append to a pipe, with a reader or without, or a device: it is not a regular file', () => {
    const own = dir()
    const { key, signing } = signer(join(own, 'key'))
    const keys = new Map([[key.kid, createPublicKey(signing.privateKey)]])
    const pipe = join(own, 'checkpoints')
    expect(spawnSync('mkfifo', [pipe]).status).toBe(0)
    const checkpoint = signCheckpoint('c1', head, signing)
    const refused = (path: string) => `cannot write ${path}: it is not a regular file (a device, a pipe or a socket)`
    expect(() => appendCheckpoint('/dev/null', checkpoint, keys)).toThrow(refused('/dev/null'))
    const reader = openSync(pipe, constants.O_RDONLY | constants.O_NONBLOCK)
    try {
      expect(() => appendCheckpoint(pipe, checkpoint, keys)).toThrow(refused(pipe))
      expect(readSync(reader, Buffer.alloc(16))).toBe(0) // nothing was written into it
    } finally {
      closeSync(reader)
    }
    // Last: before the fix, this open waited for a reader for ever.
    expect(() => appendCheckpoint(pipe, checkpoint, keys)).toThrow(refused(pipe))
  })
})

describe('the checkpoint key', () => {
  it('without a store: a 0600 key file made once and reused; verify reads it', () => {
    const keyFile = join(dir(), 'sub', 'audit.db.checkpoints.key')
    const first = checkpointSigningKey(null, keyFile, logger)
    expect(first.keptIn).toBe(keyFile)
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    expect(checkpointSigningKey(null, keyFile, logger).kid).toBe(first.kid)
    expect([...checkpointVerificationKeys(null, keyFile).keys()]).toEqual([first.kid])
  })

  it('a damaged key file is set aside (not overwritten) and replaced; an unwritable place keeps it in memory', () => {
    const own = dir()
    const keyFile = join(own, 'key')
    writeFileSync(keyFile, 'garbage')
    const made = checkpointSigningKey(null, keyFile, logger)
    expect(made.keptIn).toBe(keyFile)
    expect(readdirSync(own).filter((f) => f.startsWith('key.damaged-'))).toHaveLength(1)
    expect(checkpointSigningKey(null, '/dev/null/key', logger).keptIn).toBe('memory')
    expect(logs.join('')).toContain('it is kept in memory only')
  })

  // Found by an adversarial probe: the checkpoint file and its key file were read as any file, so a
  // named pipe held the reading thread for ever; /dev/zero was read until the heap gave out.
  it('a checkpoint file or key file that is a pipe or a device is refused unread, as the master key file is', () => {
    const pipe = join(dir(), 'checkpoints')
    expect(spawnSync('mkfifo', [pipe]).status).toBe(0)
    expect(() => readCheckpointFile(pipe)).toThrow(`cannot read the checkpoint file ${pipe}: it is not a regular file (a device, a pipe or a socket)`)
    expect(() => checkpointVerificationKeys(null, pipe)).toThrow(`cannot read the checkpoint key file ${pipe}: it is not a regular file (a device, a pipe or a socket)`)
    expect(() => checkpointVerificationKeys(null, '/dev/zero')).toThrow('cannot read the checkpoint key file /dev/zero: it is not a regular file')
    expect(checkpointSigningKey(null, pipe, logger).keptIn).toBe('memory')
    const large = join(dir(), 'key')
    writeFileSync(large, 'x'.repeat(100_000))
    expect(() => checkpointVerificationKeys(null, large)).toThrow(`cannot read the checkpoint key file ${large}: it holds 100,000 bytes, more than the 65,536 it may`)
  })

  it('with a writable secrets store: made there, no key file; verify reads the store', () => {
    const own = dir()
    const store = openEmbeddedStore(join(own, 'secrets.db'), Buffer.alloc(32, 1))
    try {
      const key = checkpointSigningKey(store, join(own, 'key'), logger)
      expect(key.keptIn).toBe(`secret ${CHECKPOINT_KEY} of the embedded secrets store`)
      expect(existsSync(join(own, 'key'))).toBe(false)
      expect(checkpointSigningKey(store, join(own, 'key'), logger).kid).toBe(key.kid)
      expect([...checkpointVerificationKeys(store, join(own, 'key')).keys()]).toEqual([key.kid])
    } finally {
      store.close()
    }
  })
})
