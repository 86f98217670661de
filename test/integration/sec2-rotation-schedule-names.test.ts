// Found by the secrets probe: bouncer check said ok to a secrets.rotation schedule that could never
// do what it says. A name no store can hold (`../x`) failed at every retry, in the log only. A
// schedule for a key the gateway makes itself (bouncer.assertion-key) put random text over the key
// at every period, the gateway replaced it with a new key, and the key before (the one what it
// signed verifies with) was gone from the store: the previous version was the random text. And
// `every: 0s` made a new version, and ran the hook, at every refresh (every 2s, for good).
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

const env = { SEC2_MASTER_KEY: randomBytes(32).toString('base64') }
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-sec2-schedule-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function check(rotation: Record<string, unknown>): Promise<{ code: number | null; out: string }> {
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:SEC2_MASTER_KEY' }, rotation },
    upstreams: [{ name: 'app', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
  }))
  const result = await runCliInProcess(['check', '--config', file], { env })
  return { code: result.code, out: result.stdout + result.stderr }
}

describe('secrets.rotation: what bouncer check refuses', () => {
  it('a name no store can hold', async () => {
    const { code, out } = await check({ '../x': { every: '1h' } })
    expect(code, out).toBe(1)
    expect(out).toMatch(/secrets\.rotation\.\.\.\/x.*"\.\.\/x" is not a valid secret name/)
  })

  it('a key the gateway makes itself', async () => {
    const names = ['bouncer.assertion-key', 'bouncer.exchange-key', 'bouncer.audit-checkpoint-key']
    const { code, out } = await check(Object.fromEntries(names.map((name) => [name, { every: '1h' }])))
    expect(code, out).toBe(1)
    for (const name of names) expect(out).toContain(`${name} is a key the gateway makes itself`)
  })

  it('every: 0s', async () => {
    const { code, out } = await check({ 'api-token': { every: '0s' } })
    expect(code, out).toBe(1)
    expect(out).toMatch(/secrets\.rotation\.api-token\.every.*more than 0/)
  })

  it('and takes a schedule that can run, making no store', async () => {
    const { code, out } = await check({ 'api-token': { every: '30d' }, 'db.password_2': { every: '1s' } })
    expect(code, out).toBe(0)
    expect(await readdir(dir)).toEqual(['bouncer.yaml'])
  })
})
