// A spill file that cannot be written (a full disk; here the file is /dev/full, which the gateway
// refuses to write, as the kernel refuses a full disk's writes) while the one sink is away. The
// records were numbered, then dropped: a sync answer went out as if recorded, the gateway served on
// under on_spill_full: refuse, and the chain had a gap verify failed for good as records deleted.
// Now the answer is refused, the gateway refuses until the file can be written, and the chain goes
// back over what was lost, its next record saying how many (records_lost).
import { symlinkSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spillFileName } from '../../src/audit/spill.ts'
import { closedPort } from '../helpers/faults.ts'
import { publicCatchAll, readyz, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: TestUpstream
let gw: TestGateway
let spillFile = ''

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => {
    res.end('ok')
  })
  const url = `postgres://127.0.0.1:${await closedPort()}/test`
  gw = await startTestGateway((dir) => {
    const spillDir = join(dir, 'spill')
    spillFile = join(spillDir, spillFileName('postgres:au3_full'))
    return { ...publicCatchAll(upstream.url), audit: { sinks: [{ type: 'postgres', url, schema: 'au3_full' }], spill_dir: spillDir, durability: 'sync' } }
  })
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
})

async function get(path: string): Promise<{ status: number; body: string }> {
  const res = await request(`${gw.url}${path}`)
  return { status: res.statusCode, body: await res.body.text() }
}

describe('a spill file that cannot be written, every sink away', () => {
  it('refuses the answers it cannot record, then keeps a whole chain that says what was lost', async () => {
    await waitFor(() => gw.logs.some((l) => l.includes('audit sink unavailable at start')), 'the sink to be away')
    symlinkSync('/dev/full', spillFile)
    const lost = await get('/lost')
    expect(lost.status).toBe(503)
    expect(JSON.parse(lost.body)).toMatchObject({ code: 'audit_unavailable' })
    // Refused while the file cannot be written, as at the spill cap.
    expect((await readyz(gw)).status).toBe(503)
    expect((await get('/refused')).status).toBe(503)

    await rm(spillFile)
    let kept = await get('/kept')
    await waitFor(async () => kept.status === 200 || (kept = await get('/kept')).status === 200, 'an answer once the file can be written', 15_000)
    const rows = (await readFile(spillFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { seq: number; record: { code: string | null; path: string; detail: string | null } })
    // No gap: the chain went back over the records that were lost.
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1))
    expect(rows[0]?.record.code).toBe('records_lost')
    expect(rows[0]?.record.detail).toMatch(/^\d+ audit records? (was|were) lost from .*: every sink was away and the spill files could not be written/)
    expect(rows.at(-1)?.record.path).toBe('/kept')
    expect(rows.some((r) => r.record.path === '/lost')).toBe(false)
  })
})
