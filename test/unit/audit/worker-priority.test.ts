// The audit worker yields to the request thread only while it keeps up (worker-priority.ts): a
// late batch puts it back at full priority until batches arrive fresh, a drain does for good. The
// nice values are those of a real thread of this process (Linux), read back from /proc.
import { readFileSync, readlinkSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { CAUGHT_UP_MS, FALLEN_BEHIND_MS, workerPriority, YIELD_NICE, type SetNice } from '../../../src/audit/worker-priority.ts'

/** Records the offsets asked for; `refuse` makes the setter fail (no permission, no /proc). */
function recorder(refuse = false): { setNice: SetNice; asked: number[] } {
  const asked: number[] = []
  return { asked, setNice: (offset) => (asked.push(offset), !refuse) }
}

describe('the audit worker priority', () => {
  it('yields from the start, takes full priority once a batch arrives late, and yields again when they arrive fresh', () => {
    const { setNice, asked } = recorder()
    const priority = workerPriority(setNice)
    expect(priority.yielding).toBe(true)
    priority.observeLag(FALLEN_BEHIND_MS - 1)
    expect(priority.yielding).toBe(true)
    priority.observeLag(FALLEN_BEHIND_MS)
    expect(priority.yielding).toBe(false)
    priority.observeLag(CAUGHT_UP_MS + 1) // between the two: still catching up
    expect(priority.yielding).toBe(false)
    priority.observeLag(CAUGHT_UP_MS)
    expect(priority.yielding).toBe(true)
    expect(asked).toEqual([YIELD_NICE, 0, YIELD_NICE])
  })

  it('stays at full priority after a drain, whatever the lag', () => {
    const { setNice, asked } = recorder()
    const priority = workerPriority(setNice)
    priority.restore()
    priority.observeLag(0)
    expect(priority.yielding).toBe(false)
    expect(asked).toEqual([YIELD_NICE, 0])
  })

  it('without a way to set it (sync durability, not Linux) or when refused, never claims to yield', () => {
    expect(workerPriority(null).yielding).toBe(false)
    const refused = workerPriority(recorder(true).setNice)
    refused.observeLag(0)
    expect(refused.yielding).toBe(false)
  })

  it.runIf(process.platform === 'linux')('sets the nice value of its own thread only', async () => {
    const script = `
      const { parentPort } = require('node:worker_threads')
      import(${JSON.stringify(new URL('../../../src/audit/worker-priority.ts', import.meta.url).href)}).then((m) => {
        const priority = m.workerPriority(m.ownThreadNice())
        const tid = require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()
        parentPort.postMessage({ tid, yielding: priority.yielding })
        // on, not once: a listener kept holds the thread up until terminate, so its /proc entry is
        // there to read after its answer (with once it could exit first: ENOENT in CI).
        parentPort.on('message', (lag) => { priority.observeLag(lag); parentPort.postMessage(priority.yielding) })
      })`
    const niceOf = (tid: string) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]?.split(' ')[16])
    const ownTid = readlinkSync('/proc/thread-self').split('/').pop() as string
    const before = niceOf(ownTid)
    const worker = new Worker(script, { eval: true })
    try {
      const next = () => new Promise<unknown>((resolve) => worker.once('message', resolve))
      const { tid, yielding } = (await next()) as { tid: string; yielding: boolean }
      expect(yielding).toBe(true)
      expect(niceOf(tid)).toBe(Math.min(19, before + YIELD_NICE))
      expect(niceOf(ownTid)).toBe(before)
      worker.postMessage(FALLEN_BEHIND_MS)
      expect(await next()).toBe(false)
      expect(niceOf(tid)).toBe(before)
    } finally {
      await worker.terminate()
    }
  })
})
