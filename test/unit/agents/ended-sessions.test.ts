import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { endedSessions } from '../../../src/agents/mcp/ended-sessions.ts'

/** A sealed id's form (sessions.ts): a v4 UUID and its MAC; the table reads the UUID only. */
const sealed = (uuid: string = randomUUID()) => `${uuid}.AAAAAAAAAAAAAAAAAAAAAA`

describe('the table of ended MCP sessions', () => {
  it('is one table for every thread that opens its buffer, written by any of them', async () => {
    const table = endedSessions()
    const here = sealed()
    const there = sealed()
    table.add(here)
    // Another thread adds to the same buffer, as another worker does.
    const worker = new Worker(`
      const { workerData } = require('node:worker_threads')
      require(workerData.module).endedSessions(workerData.buffer).add(workerData.id)
    `, { eval: true, workerData: { module: fileURLToPath(new URL('../../../src/agents/mcp/ended-sessions.ts', import.meta.url)), buffer: table.buffer, id: there } })
    expect(await new Promise((resolve, reject) => worker.on('exit', resolve).on('error', reject))).toBe(0)
    const opened = endedSessions(table.buffer)
    expect([opened.has(here), opened.has(there), table.has(there), opened.has(sealed())]).toEqual([true, true, true, false])
  })

  it('keeps the newest eight of a bucket: a ninth DELETE in it lets the oldest go', () => {
    const table = endedSessions()
    // The same first four hex digits: one bucket.
    const ids = Array.from({ length: 9 }, (_, i) => sealed(`abcd${randomUUID().slice(4, 24)}${String(i).padStart(12, '0')}`))
    for (const id of ids) table.add(id)
    expect(ids.map((id) => table.has(id))).toEqual([false, true, true, true, true, true, true, true, true])
    // A DELETE told twice (its worker's, then the message) takes one slot.
    table.add(ids[8] as string)
    expect(table.has(ids[1] as string)).toBe(true)
  })
})
