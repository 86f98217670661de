// Secrets kept as files, one per secret (Kubernetes secret volumes, Docker secrets, Vault Agent
// templates): `${secret:NAME}` reads DIR/NAME, trailing newline removed. A changed file (its mtime)
// is picked up like a rotation. Read-only.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ReadOnlyStore, SECRET_NAME, type SecretStore } from '../store.ts'

export function openFileStore(dir: string): SecretStore {
  const path = (name: string) => (SECRET_NAME.test(name) ? join(dir, name) : undefined)
  const stat = (name: string) => {
    const file = path(name)
    try {
      return file ? statSync(file) : undefined
    } catch {
      return undefined
    }
  }
  return {
    kind: 'file',
    writable: false,
    get(name, which = 'current') {
      const file = path(name)
      if (which !== 'current') return undefined
      if (!file || !stat(name)?.isFile()) return undefined
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '')
    },
    marker: (name) => {
      const s = stat(name)
      return s?.isFile() ? `${s.mtimeMs}:${s.size}` : undefined
    },
    list: () => readdirSync(dir).filter((name) => SECRET_NAME.test(name) && stat(name)?.isFile()).sort(),
    versions: (name) => {
      const s = stat(name)
      return s?.isFile() ? [{ version: 1, createdAt: s.mtime.toISOString(), label: 'current' }] : []
    },
    put() {
      throw new ReadOnlyStore('file')
    },
    delete() {
      throw new ReadOnlyStore('file')
    },
    close() {},
  }
}
