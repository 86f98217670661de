// A scheduled rotation's hook that fails has the end of its output logged (its last 2,000
// characters), with the new value taken out. The value was taken out of what was kept, after the
// cut: a hook that printed the value and then a page of text had the cut fall inside the value, and
// the part after the cut was no longer the whole value, so it was logged as it was (20 characters
// of a 32-character credential here).
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'

let gateway: TestGateway
let saw: string

beforeAll(async () => {
  gateway = await startTestGateway((dir) => {
    saw = join(dir, 'hook-saw')
    return {
      upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
      routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
      secrets: {
        store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:HDRPROBE_MASTER_KEY' },
        refresh_interval: '200ms',
        // Prints the value, then 1,980 characters more, and fails: the last 2,000 hold the value's last 20.
        rotation: { 'partner-key': { every: '1s', generate: 24, hook: `v=$(cat); printf '%s' "$v" > ${saw}; printf 'installing %s' "$v"; head -c 1980 /dev/zero | tr '\\000' y; exit 1` } },
      },
    }
  }, { env: { HDRPROBE_MASTER_KEY: randomBytes(32).toString('base64') } })
})

afterAll(() => gateway?.close())

describe('a failed rotation hook whose output is longer than what is logged', () => {
  it('logs no part of the new value, whatever falls at the cut', { timeout: 20_000 }, async () => {
    await waitFor(() => gateway.logs.some((line) => line.includes('secret rotation hook failed')), 'the hook to fail', 15_000)
    const value = await readFile(saw, 'utf8')
    expect(value).toHaveLength(32)
    const logged = gateway.logs.find((line) => line.includes('secret rotation hook failed')) as string
    expect(logged).toContain('yyyy') // the output is logged…
    expect(logged).not.toContain(value.slice(-20)) // …without the part of the value left after the cut
    expect(logged).toContain('"output":"[redacted]yyy') // the cut moved back to the value's start
  })
})
