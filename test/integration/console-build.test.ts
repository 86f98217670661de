// The console's built files are committed (console/build/), so a fresh clone serves the console
// with no build step (`npm ci --ignore-scripts`, the container image, a production install without
// Vite). This test keeps them honest: it builds the sources again and fails unless the result is
// byte for byte what is committed — run `npm run console:build` and commit when it fails. It also
// holds the console to its weight: under 60 KB gzipped, all files together.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

const CONSOLE = fileURLToPath(new URL('../../console/', import.meta.url))
const COMMITTED = join(CONSOLE, 'build')
let out: string | undefined

async function files(dir: string): Promise<Map<string, Buffer>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  const found = new Map<string, Buffer>()
  for (const entry of entries) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    found.set(relative(dir, path), await readFile(path))
  }
  return found
}

afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true })
})

describe('the console build', () => {
  it('is what the sources build to (else: npm run console:build, and commit console/build/)', async () => {
    out = await mkdtemp(join(tmpdir(), 'bouncer-console-build-'))
    // The same command as `npm run console:build`, in a process of its own: a test runner's
    // NODE_ENV=test would build other bytes than a shell does (production, or unset, build the same).
    const env = { ...process.env, NODE_ENV: 'production' }
    const vite = fileURLToPath(new URL('../../node_modules/vite/bin/vite.js', import.meta.url))
    await promisify(execFile)(process.execPath, [vite, 'build', CONSOLE, '--outDir', out, '--emptyOutDir'], { env, cwd: fileURLToPath(new URL('../..', import.meta.url)) })
    const built = await files(out)
    const committed = await files(COMMITTED)
    expect([...committed.keys()].sort()).toEqual([...built.keys()].sort())
    for (const [name, bytes] of built) expect(committed.get(name)?.equals(bytes), `console/build/${name} is stale`).toBe(true)
  }, 120_000)

  it('weighs under 60 KB gzipped, every file together', async () => {
    const committed = await files(COMMITTED)
    const gzipped = [...committed.values()].reduce((sum, bytes) => sum + gzipSync(bytes, { level: 9 }).length, 0)
    expect(gzipped).toBeLessThan(60 * 1024)
  })
})
