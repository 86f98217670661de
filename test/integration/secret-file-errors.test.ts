// The file secrets store tells "no such secret" apart from "the secret is there but cannot be
// read", and names the file and the reason, as `bouncer check`, `bouncer serve` and
// `bouncer secrets` show it to an operator.
//
// Permission denied needs a reader that permissions apply to: tests run as root, and root reads a
// mode 000 file. So that check runs `bouncer check` as a child process with the uid and gid of
// `nobody` (Node's spawn sets them; only root may), against a real mode 000 file. Run as another
// user, the test is that user and needs no switch.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/instance/index.ts'
import { runCli, type CliResult } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway } from '../helpers/gateway.ts'

const NOBODY = 65_534
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-secret-files-'))
  await chmod(dir, 0o755) // mkdtemp makes it 0700: nobody could not even reach the config
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A secrets directory (made by `prepare`) and a config whose upstream header references sales-token. */
async function configWith(name: string, prepare: (secretsDir: string) => Promise<void>): Promise<{ file: string; secretsDir: string }> {
  const secretsDir = join(dir, `${name}-secrets`)
  await prepare(secretsDir)
  const file = join(dir, `${name}.yaml`)
  await writeFile(file, stringify({
    audit: { sinks: [] },
    secrets: { store: { type: 'file', dir: secretsDir } },
    upstreams: [{ name: 'sales', url: 'http://127.0.0.1:9', headers: { Authorization: 'Bearer ${secret:sales-token}' } }],
    routes: [{ id: 'sales', path: '/*', upstream: 'sales', public: true }],
  }))
  return { file, secretsDir }
}

const withSecretsDir = (make: (secretsDir: string) => Promise<void>) => async (secretsDir: string) => {
  await mkdir(secretsDir, { mode: 0o755 })
  await make(secretsDir)
}

/** `bouncer check` as another user: the only way a root test run meets a permission. */
function checkAs(uid: number, gid: number, file: string): Promise<CliResult> {
  return runCli(['check', '--config', file], { as: { uid, gid } })
}

describe('a secret file that cannot be read', () => {
  it('is a permission error naming the file (EACCES), not a missing secret', async () => {
    const { file, secretsDir } = await configWith('eacces', withSecretsDir(async (secrets) => {
      await writeFile(join(secrets, 'sales-token'), 'unreadable-value\n', { mode: 0o000 })
    }))
    const asRoot = process.getuid?.() === 0
    const result = asRoot ? await checkAs(NOBODY, NOBODY, file) : await runCliInProcess(['check', '--config', file])
    expect(result.stdout).toBe('')
    expect(result.code).toBe(1)
    expect(result.stderr).toBe(
      `${file}:11:22: upstreams[0].headers.Authorization: cannot read secret file ${join(secretsDir, 'sales-token')}: permission denied: the gateway user may not read it (EACCES)\n`,
    )
    expect(result.stderr).not.toContain('does not exist')
  })

  it('is a directory where the file should be (EISDIR): check, serve and the CLI say so', async () => {
    const { file, secretsDir } = await configWith('eisdir', withSecretsDir(async (secrets) => {
      await mkdir(join(secrets, 'sales-token'))
    }))
    const reason = `cannot read secret file ${join(secretsDir, 'sales-token')}: it is a directory, not a file (EISDIR)`
    expect(await runCliInProcess(['check', '--config', file])).toMatchObject({ code: 1, stdout: '', stderr: `${file}:11:22: upstreams[0].headers.Authorization: ${reason}\n` })

    const serve = await runCli(['serve', '--config', file])
    expect(serve.code).toBe(1)
    expect(serve.stderr).toContain(reason)
    expect(serve.stderr).toContain('refusing to start')

    const reveal = await runCliInProcess(['secrets', 'get', 'sales-token', '--reveal', '--config', file])
    expect(reveal).toMatchObject({ code: 1, stdout: '', stderr: `bouncer: ${reason}\n` })
  })

  it('is missing (ENOENT): a secret that does not exist, with the file the store looked for', async () => {
    const { file, secretsDir } = await configWith('enoent', withSecretsDir(async () => {}))
    const result = await runCliInProcess(['check', '--config', file])
    expect(result).toMatchObject({ code: 1, stdout: '', stderr: `${file}:11:22: upstreams[0].headers.Authorization: secret "sales-token" does not exist in the file store: no file ${join(secretsDir, 'sales-token')}\n` })
    await expect(startTestGateway({
      secrets: { store: { type: 'file', dir: secretsDir } },
      upstreams: [{ name: 'sales', url: 'http://127.0.0.1:9', headers: { Authorization: 'Bearer ${secret:sales-token}' } }],
      routes: [{ id: 'sales', path: '/*', upstream: 'sales', public: true }],
    })).rejects.toThrow(ConfigError)
  })

  it('lies under a secrets "directory" that is a file (ENOTDIR): the store does not open, and says why', async () => {
    const { file, secretsDir } = await configWith('enotdir', async (secrets) => {
      await writeFile(secrets, 'a file, not a directory\n')
    })
    const result = await runCliInProcess(['check', '--config', file])
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(new RegExp(`: secrets\\.store: cannot open the secrets store: cannot use ${secretsDir} as the secrets directory: it is not a directory\\n$`))
    expect(await runCliInProcess(['secrets', 'list', '--config', file])).toMatchObject({ code: 1, stderr: `bouncer: cannot use ${secretsDir} as the secrets directory: it is not a directory\n` })
  })
})
