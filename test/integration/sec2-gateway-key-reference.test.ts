// Found by the secrets probe: bouncer check said ok to ${secret:bouncer.assertion-key} in an
// upstream's headers, and the gateway sent its own identity assertion private key (its JWK, `d`
// and all) to that upstream with every request: the upstream could then sign assertions every
// other upstream takes as the gateway's. A key the gateway makes is refused wherever a reference
// would send it; token_exchange.signing.key, which takes a signing key, may still name one.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

const env = { SEC2_MASTER_KEY: randomBytes(32).toString('base64') }
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-sec2-key-reference-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('a ${secret:} naming a key the gateway makes', () => {
  it('is refused in an upstream header', async () => {
    const file = join(dir, 'bouncer.yaml')
    await writeFile(file, stringify({
      secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:SEC2_MASTER_KEY' } },
      upstreams: [{ name: 'app', url: 'http://127.0.0.1:9', identity_assertion: true, headers: { 'X-Key': '${secret:bouncer.assertion-key}' } }],
      routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
    }))
    const rotate = await runCliInProcess(['secrets', 'rotate', 'bouncer.assertion-key', '--config', file], { env })
    expect(rotate.code, rotate.stderr).toBe(0)
    const check = await runCliInProcess(['check', '--config', file], { env })
    expect(check.code, check.stdout).toBe(1)
    expect(check.stderr).toContain('upstreams[0].headers.X-Key: bouncer.assertion-key is a key the gateway makes itself: a reference would send it')
    expect(check.stdout + check.stderr).not.toContain('"d"')
  })
})
