// The process's store of the keys the gateway makes (src/secrets/shared-memory.ts): versions as the
// embedded store keeps them (current and previous), and one store for every thread given its buffer.
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { KEY_STORE_HEADER_BYTES, releaseKeyStoreLockOf, sharedKeyStore } from '../../../src/secrets/index.ts'

describe('the shared key store', () => {
  it('keeps a current and a previous version, with markers that move on each put', () => {
    const store = sharedKeyStore()
    expect(store.get('k')).toBeUndefined()
    expect(store.marker('k')).toBeUndefined()
    expect(store.put('k', 'one')).toBe(1)
    const first = store.marker('k')
    expect(store.put('k', 'two')).toBe(2)
    expect(store.marker('k')).not.toBe(first)
    expect([store.get('k'), store.get('k', 'previous')]).toEqual(['two', 'one'])
    expect(store.versions('k').map((v) => [v.version, v.label])).toEqual([[2, 'current'], [1, 'previous']])
    expect(store.list()).toEqual(['k'])
    expect(store.delete('k')).toBe(true)
    expect(store.get('k')).toBeUndefined()
    expect(store.delete('k')).toBe(false)
  })

  it('is one store for every thread that opens its buffer', async () => {
    const store = sharedKeyStore()
    store.put('from-main', 'main value')
    const code = `
      const { workerData, parentPort } = require('node:worker_threads')
      const header = new Int32Array(workerData, 0, 3)
      const bytes = new Uint8Array(workerData, ${KEY_STORE_HEADER_BYTES})
      // Another thread's view of the document: what the main thread put is there.
      const seen = JSON.parse(new TextDecoder().decode(bytes.slice(0, header[2])))
      parentPort.postMessage(seen['from-main'].current)
    `
    const worker = new Worker(code, { eval: true, workerData: store.buffer })
    const seen = await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject))
    await worker.terminate()
    expect(seen).toBe('main value')
    const again = sharedKeyStore(store.buffer)
    again.put('from-main', 'newer')
    expect([store.get('from-main'), store.get('from-main', 'previous')]).toEqual(['newer', 'main value'])
  })

  it('refuses a value larger than it holds, and keeps what it had', () => {
    const store = sharedKeyStore()
    store.put('k', 'small')
    expect(() => store.put('big', 'x'.repeat(70_000))).toThrow('holds at most')
    expect(store.get('k')).toBe('small')
    expect(store.put('k', 'after')).toBe(2) // the lock was released
  })

  it('a thread that ends holding the lock does not hold the others for ever: the primary releases it', async () => {
    const store = sharedKeyStore()
    store.put('k', 'before')
    // A worker takes the lock as takeLock does (the lock word, then its thread id) and is stopped inside.
    const code = `
      const { workerData, parentPort, threadId } = require('node:worker_threads')
      const header = new Int32Array(workerData, 0, 3)
      Atomics.compareExchange(header, 0, 0, 1)
      header[1] = threadId
      parentPort.postMessage('holding')
      for (;;) {}
    `
    const worker = new Worker(code, { eval: true, workerData: store.buffer })
    await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject))
    const thread = worker.threadId
    await worker.terminate()
    expect(Atomics.load(new Int32Array(store.buffer, 0, 1), 0)).toBe(1) // still held: a read here would wait for ever
    expect(releaseKeyStoreLockOf(store.buffer, thread + 1)).toBe(false) // not that thread's
    expect(releaseKeyStoreLockOf(store.buffer, thread)).toBe(true)
    expect(store.get('k')).toBe('before')
    expect(store.put('k', 'after')).toBe(2)
  })
})
