// A function whose handler is held in a system call (a synchronous read of a hung network file
// system; a named pipe nobody writes here). Its invocation times out and its worker is terminated
// and replaced, but terminate() cannot stop a system call: the thread stays. A SIGTERM then drained
// the gateway and the process never exited (Node's exit waits to join every thread, and the pool's
// close awaited terminate(), which never settles). Now it ends by SIGKILL with a warning once the
// drain is done, the timed-out request's audit record written before.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { waitFor, waitForText } from '../helpers/wait.ts'

let gateway: ServeProcess & { dir: string }

beforeAll(async () => {
  gateway = await serveConfig((dir) => {
    execFileSync('mkfifo', [join(dir, 'hung.fifo')])
    writeFileSync(join(dir, 'reader.mjs'), `import { readFileSync } from 'node:fs'\nexport async function handler() { readFileSync(${JSON.stringify(join(dir, 'hung.fifo'))}); return { statusCode: 200, body: 'read' } }\n`)
    return {
      server: { listen: '127.0.0.1:0', shutdown_timeout: '1s' },
      admin: { listen: '127.0.0.1:0', token: 'functions-held-shutdown-admin-token' },
      audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
      // 3 s: on a loaded machine a 1 s timeout could fire before the handler reached its read (its
      // worker then ended at terminate(), held by nothing: the test waited for a line never written).
      functions: [{ name: 'reader', module: join(dir, 'reader.mjs'), timeout: '3s', concurrency: 1 }],
      routes: [{ id: 'reader', path: '/reader', function: 'reader', public: true }],
    }
  }, { startTimeout: 60_000 })
}, 90_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
})

it('a function held in a read does not hold the process: SIGTERM ends it after the drain, the request audited', async () => {
  const res = await request(`${gateway.url}/reader`, { headers: { 'x-request-id': 'held-function-call' } })
  const body = (await res.body.json()) as { code: string }
  expect({ status: res.statusCode, code: body.code }).toEqual({ status: 504, code: 'function_timeout' })

  // Said when it happens, not only at the exit: the thread and its memory stay.
  await waitForText(gateway.stderr, /"request_id":"held-function-call".*function reader: its timed-out worker is held in a system call/, 20_000)
  // And it counts against the function's concurrency (1 here): refused at once, rather than one
  // more thread held per timeout for as long as the file system hangs.
  const refused = await request(`${gateway.url}/reader`)
  const refusal = (await refused.body.json()) as { code: string; detail: string }
  expect({ status: refused.statusCode, code: refusal.code }).toEqual({ status: 503, code: 'upstream_saturated' })
  expect(refusal.detail).toContain('1 of its workers timed out inside a system call')
  // The file system answers (a writer at last): the held thread's read returns, it ends, and the
  // function takes calls again (this one reads the pipe again, and is held again, as before).
  try {
    writeFileSync(join(gateway.dir, 'hung.fifo'), 'at last')
  } catch (err) {
    // Our open let the held thread's open return, and the thread, told to end long ago, ended before
    // our write (seen in CI): the pipe has no reader left. That is the release this wanted.
    if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err
  }
  await waitFor(async () => {
    const res = await request(`${gateway.url}/reader`, { headers: { 'x-request-id': 'held-function-call-2' } })
    await res.body.dump()
    return res.statusCode === 504
  }, 'the function taking calls again', 20_000)

  const stopped = Date.now()
  gateway.child.kill('SIGTERM')
  await waitForText(gateway.stderr, '"msg":"draining"')
  // Before, it never ended.
  expect(await gateway.exited).toBeNull()
  expect(gateway.child.signalCode).toBe('SIGKILL')
  expect(Date.now() - stopped).toBeLessThan(20_000)
  expect(gateway.stderr()).toMatch(/"threads":\["function reader \(thread \d+\)"\].*a function's thread held in a system call .* did not end when stopped: the process ends without it \(SIGKILL\)/)
  const db = new DatabaseSync(join(gateway.dir, 'audit.db'), { readOnly: true })
  expect(db.prepare("SELECT status, code FROM audit_records WHERE request_id = 'held-function-call'").get()).toEqual({ status: 504, code: 'function_timeout' })
  db.close()
}, 60_000)
