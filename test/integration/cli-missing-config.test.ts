// A command given a config file that is not there said so, then "X is not valid (see bouncer
// check)", which sent the user to check for a file that was never read (the config probe's left
// item). It now says why the file cannot be read, once.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-cli-missing-config-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

it.each(['audit', 'keys list', 'sessions list', 'approvals list'])('bouncer %s with a missing config says why, once', async (command) => {
  const file = join(dir, 'nope.yaml')
  expect(await runCliInProcess([...command.split(' '), '--config', file])).toEqual({ code: 1, stdout: '', stderr: `bouncer: ${file}: cannot read the config file: no such file\n` })
})
