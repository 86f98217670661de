// An upstream credential about to be rotated: an embedded secrets store holding it as api-token,
// and an upstream still holding the value it was first sent (it has not taken the rotation yet),
// which names that value in its answers — the echo the gateway must withhold (ups2, ups3, fx4).
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openEmbeddedStore } from '../../src/secrets/embedded.ts'
import type { SecretStore } from '../../src/secrets/index.ts'
import { startUpstream, type TestUpstream } from './upstream.ts'

export interface RotatedCredential {
  /** The embedded store's file and master key (base64), for the gateway's secrets.store. */
  path: string
  masterKey: string
  /** The store itself: put('api-token', …) rotates the credential. */
  store: SecretStore
  /**
   * 200 to the first Authorization it is sent and to that one only (401 to any other), each answer
   * with x-expected-authorization naming the one it holds, and x-ok: fine (a header that passes).
   */
  upstream: TestUpstream
}

/**
 * Made in a new directory named after `prefix`; every part is handed to `closeLater` (closeAfterEach).
 * `headers`: more headers of each answer, from the Authorization it was sent.
 */
export async function rotatedCredential(prefix: string, first: string, closeLater: (...close: Array<() => unknown>) => void, headers: (sent: string) => Record<string, string> = () => ({})): Promise<RotatedCredential> {
  const dir = await mkdtemp(join(tmpdir(), `bouncer-${prefix}-`))
  closeLater(() => rm(dir, { recursive: true, force: true }))
  const masterKey = randomBytes(32).toString('base64')
  const path = join(dir, 'secrets.db')
  const store = openEmbeddedStore(path, Buffer.from(masterKey, 'base64'))
  closeLater(() => void store.close())
  store.put('api-token', first)
  let held: string | null = null
  const upstream = await startUpstream((req, res) => {
    const sent = String(req.headers.authorization)
    held ??= sent
    res.writeHead(sent === held ? 200 : 401, { 'x-expected-authorization': held, ...headers(sent), 'x-ok': 'fine' })
    res.end()
  })
  closeLater(() => upstream.close())
  return { path, masterKey, store, upstream }
}
