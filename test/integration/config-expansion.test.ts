// Found by an adversarial probe (helper). POST /api/replay reads a draft config the caller pastes (admin only). A draft far under the admin
// API's 1 MB body limit must be answered (422 with its errors) in bounded time and memory: a YAML
// alias repeats a wide node 99 times (under the loader's alias cap of 100), and every copy is
// validated and reported again.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const TOKEN = 'config-expansion-admin-token-0123456789abcdef'
let dir: string
let upstream: TestUpstream
let serve: ServeProcess | undefined

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-config-expansion-'))
  upstream = await startUpstream((_req, res) => void res.end('ok'))
})
afterEach(async () => {
  await serve?.stop('SIGKILL')
  serve = undefined
})
afterAll(async () => {
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

async function start(nodeArgs: string[] = []): Promise<ServeProcess> {
  const file = join(dir, `bouncer-${Math.random()}.yaml`)
  await writeFile(file, `server:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n  token: ${TOKEN}\naudit:\n  sinks:\n    - {type: sqlite, path: ${join(dir, `audit-${Math.random()}.db`)}}\n  spill_dir: ${join(dir, 'spill')}\nupstreams:\n  - name: api\n    url: ${upstream.url}\nroutes:\n  - id: r\n    path: /x\n    upstream: api\n    public: true\n`)
  return startServe(['--config', file], { nodeArgs })
}

function draft(width: number): string {
  const wide = `[${Array.from({ length: width }, () => '1').join(',')}]`
  return `upstreams:\n  - {name: api, url: "http://127.0.0.1:9"}\nroutes:\n  - &r {id: r, path: /x, upstream: api, public: true, methods: ${wide}}\n${'  - *r\n'.repeat(99)}`
}

async function replay(gw: ServeProcess, config: string, timeoutMs: number) {
  const res = await request(new URL("/api/replay", gw.adminUrl), {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ config }),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  })
  return { status: res.statusCode, body: await res.body.text() }
}

describe('POST /api/replay with a hostile draft', () => {
  it('a 40 KB draft of aliases does not hold the gateway up: /x answers within 2 s meanwhile', async () => {
    serve = await start()
    const body = draft(20_000)
    expect(Buffer.byteLength(JSON.stringify({ config: body }))).toBeLessThan(64 * 1024)
    const replaying = replay(serve, body, 120_000).catch((err: unknown) => ({ status: 0, body: String(err) }))
    await new Promise((r) => setTimeout(r, 300))
    const started = performance.now()
    const res = await request(new URL("/x", serve.url), { headersTimeout: 60_000 })
    await res.body.text()
    const waited = performance.now() - started
    const answer = await replaying
    expect({ dataPlaneMs: Math.round(waited), replayStatus: answer.status }).toMatchObject({ replayStatus: 422 })
    expect(waited).toBeLessThan(2_000)
  }, 120_000)

  it('a 100 KB draft is answered 422 and the gateway survives (run with a 1 GB heap)', async () => {
    serve = await start(['--max-old-space-size=1024'])
    const body = draft(50_000)
    expect(Buffer.byteLength(JSON.stringify({ config: body }))).toBeLessThan(1_000_000)
    const answer = await replay(serve, body, 100_000).catch((err: unknown) => ({ status: 0, body: String(err) }))
    const alive = await request(new URL("/x", serve.url)).then(async (r) => (await r.body.text(), r.statusCode), () => 0)
    expect({ replayStatus: answer.status, gatewayAfter: alive, exited: serve.child.exitCode, signal: serve.child.signalCode, stderrTail: serve.stderr().slice(-300) }).toMatchObject({ replayStatus: 422, gatewayAfter: 200 })
  }, 150_000)
})
