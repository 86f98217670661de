// runCliInProcess (test/helpers/cli-in-process.ts) stands in for a child `bouncer` process in most
// files: here each kind of run gives the same exit code, stdout and stderr both ways — a usage
// error, a user error, help, a command that writes through process.stdout, one that reads stdin,
// one that takes its key from the environment — and leaves the test process as it found it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, type CliResult } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let config: string
const env = { BOUNCER_MASTER_KEY: Buffer.alloc(32, 3).toString('base64') }

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-cli-here-'))
  config = join(dir, 'bouncer.yaml')
  await writeFile(config, stringify({
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:BOUNCER_MASTER_KEY' } },
    audit: { sinks: [], spill_dir: join(dir, 'spill') },
  }))
})
afterAll(() => rm(dir, { recursive: true, force: true }))

/** Both ways, one after the other; `same` compares the results once any store state is taken out. */
async function bothWays(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<[CliResult, CliResult]> {
  return [await runCli(args, options), await runCliInProcess(args, options)]
}

describe('a command run in the test process', () => {
  it.each([
    [['frobnicate'], 2],
    [['check', '--bogus'], 2],
    [['check', '--config', '/nonexistent/bouncer.yaml'], 1],
    [['audit', '--help'], 0],
    [['secrets', 'get', 'missing', '--config', '/nonexistent/bouncer.yaml'], 1],
  ])('bouncer %j: the exit code, stdout and stderr of the process', async (args, code) => {
    const [child, here] = await bothWays(args)
    expect(child.code).toBe(code)
    expect(child.stdout + child.stderr).not.toBe('')
    expect(here).toEqual(child)
  })

  it('reads stdin, takes the environment given, writes through process.stdout: the same as the process', async () => {
    const put = await bothWays(['secrets', 'put', 'token-a', '--config', config], { env, input: 'first-value-0123456789' })
    expect(put[0]).toMatchObject({ code: 0 })
    expect(put[1].code).toBe(0)
    const [child, here] = await bothWays(['secrets', 'get', 'token-a', '--reveal', '--config', config], { env })
    expect(child).toEqual({ code: 0, stdout: 'first-value-0123456789\n', stderr: expect.any(String) as string })
    expect(here).toEqual(child)
    // Without the key in the environment both refuse it the same way.
    const [childBlind, hereBlind] = await bothWays(['secrets', 'get', 'token-a', '--reveal', '--config', config], { env: { BOUNCER_MASTER_KEY: '' } })
    expect(childBlind.code).toBe(1)
    expect(hereBlind).toEqual(childBlind)
  })

  it('leaves the process as it was: env, exit code, console, stdout and its listeners, cwd', async () => {
    const before = { key: process.env.BOUNCER_MASTER_KEY, exitCode: process.exitCode, console: globalThis.console, stdout: process.stdout, errorListeners: process.stdout.listenerCount('error'), cwd: process.cwd() }
    expect((await runCliInProcess(['secrets', 'list', '--config', config], { env, cwd: dir })).code).toBe(0)
    expect((await runCliInProcess(['frobnicate'])).code).toBe(2)
    expect({ key: process.env.BOUNCER_MASTER_KEY, exitCode: process.exitCode, console: globalThis.console, stdout: process.stdout, errorListeners: process.stdout.listenerCount('error'), cwd: process.cwd() }).toEqual(before)
  })

  it('a run that does not finish in its time, or cannot start in its cwd, is refused with the process put back; the next run is served', async () => {
    const held: Socket[] = []
    const silent = createServer((socket) => void held.push(socket)) // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const { port } = silent.address() as { port: number }
    const hanging = join(dir, 'hanging.yaml')
    await writeFile(hanging, stringify({ admin: { listen: `127.0.0.1:${port}` }, audit: { sinks: [] } }))
    const before = { console: globalThis.console, stdout: process.stdout, exitCode: process.exitCode, cwd: process.cwd(), key: process.env.BOUNCER_MASTER_KEY }
    try {
      await expect(runCliInProcess(['healthcheck', '--config', hanging, '--timeout', '2s'], { env, timeout: 300 })).rejects.toThrow(/did not finish in 300 ms/)
      await expect(runCliInProcess(['--version'], { cwd: join(dir, 'no-such-folder') })).rejects.toThrow(/ENOENT/)
      expect({ console: globalThis.console, stdout: process.stdout, exitCode: process.exitCode, cwd: process.cwd(), key: process.env.BOUNCER_MASTER_KEY }).toEqual(before)
      // The timed-out command is still running: let it fail (its answer cut) and end, as it sets the
      // exit code of the process it runs in, before the next test's runs.
      for (const socket of held) socket.destroy()
      await waitFor(() => process.exitCode === 1, 'the timed-out healthcheck to end')
      process.exitCode = before.exitCode
      expect(await runCliInProcess(['--version'])).toMatchObject({ code: 0, stderr: '' })
    } finally {
      for (const socket of held) socket.destroy()
      await new Promise((resolve) => silent.close(resolve))
    }
  })

  it('runs overlapping calls one after the other, each with its own output', async () => {
    const [a, b] = await Promise.all([runCliInProcess(['--version']), runCliInProcess(['frobnicate'])])
    expect(a).toMatchObject({ code: 0, stderr: '' })
    expect(a.stdout).toMatch(/^bouncer \S+ \(node v/)
    expect(b).toMatchObject({ code: 2, stdout: '' })
    expect(b.stderr).toContain('frobnicate')
  })
})
