// Found by an adversarial probe (helper): a handler posting its own message on its worker's port (postMessage(null), a log line with an unknown level or no text) made the gateway's thread throw and the gateway exit; a `result` it posted itself skipped the response checks.
// The gateway runs as `bouncer serve` in a child process, so a crash shows as its exit.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { waitForText } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
const MODES = ['post-null', 'post-bad-log', 'post-log-notext']
let dir: string
let serve: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-fn-port-'))
  const file = join(dir, 'bouncer.yaml')
  // One function per mode: each worker says once that it posted a stray message.
  const functions = [...MODES, 'forger'].map((name) => ({ name, module: join(FIXTURES, 'hostile.mjs'), concurrency: 1, timeout: '5s' }))
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0' },
    audit: { sinks: [], spill_dir: join(dir, 'spill') },
    functions: [...functions, { name: 'echo', module: join(FIXTURES, 'echo.ts'), concurrency: 1 }],
    routes: [...functions.map(({ name }) => ({ id: name, path: `/${name}`, function: name, public: true })), { id: 'echo', path: '/echo', function: 'echo', public: true }],
  }))
  serve = await startServe(['--config', file], { cwd: dir })
})
afterAll(async () => {
  await serve?.stop('SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

async function get(path: string): Promise<{ status: number; body: string }> {
  const res = await request(`${serve.url}${path}`)
  return { status: res.statusCode, body: await res.body.text() }
}

/** The stray message's log line, or the gateway's exit, whichever comes first. */
function strayLogged(name: string): Promise<unknown> {
  const exit = serve.exited.then((code) => Promise.reject(new Error(`the gateway exited with ${code}: ${serve.stderr().slice(-2000)}`)))
  return Promise.race([waitForText(serve.stderr, new RegExp(`"function":"${name}".*posted a message that is not the gateway's`)), exit])
}

describe('a message the handler posts on its worker port', () => {
  for (const mode of MODES) {
    it(`${mode}: dropped with a log line; the invocation answers and the gateway serves on`, async () => {
      expect((await get(`/${mode}?mode=${mode}`)).status).toBe(200)
      await strayLogged(mode)
      expect((await get('/echo')).status).toBe(200)
      expect(serve.child.exitCode).toBeNull()
    })
  }

  const forged: Array<[string, string]> = [
    ['a status out of range', 'status=99'],
    ['a header name writeHead refuses', 'name=x%20a'],
    ['a header value with CRLF', 'value=a%0D%0Ax-injected%3A%201'],
    ['a hop-by-hop header', 'name=transfer-encoding&value=chunked'],
  ]
  for (const [what, query] of forged) {
    it(`a \`result\` it posts itself with ${what} is 502 function_error, as one it returned would be`, async () => {
      const { status, body } = await get(`/forger?mode=post-bad-result&${query}`)
      expect(status).toBe(502)
      expect(body).toContain('function_error')
      expect((await get('/echo')).status).toBe(200)
    })
  }

  it('held up: a well-formed `result` it posts itself is its answer', async () => {
    const { status, body } = await get('/forger?mode=post-bad-result')
    expect({ status, body }).toEqual({ status: 200, body: 'forged' })
  })
})
