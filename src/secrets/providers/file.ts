// Secrets kept as files, one per secret (Kubernetes secret volumes, Docker secrets, Vault Agent
// templates): `${secret:NAME}` reads DIR/NAME, trailing newline removed. A changed file (its mtime)
// is picked up like a rotation. Read-only.
//
// Only a file that does not exist is "no such secret". Anything else that keeps a file from being
// read (a permission, a directory where the file should be, a path through a file) is a
// SecretsError that names the file and the reason: an operator who mounted the volume with the
// wrong owner must not be told the secret is missing.
import { readdirSync, statSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import { readRegularFile, whyNotRead } from '../../collections/index.ts'
import { SecretsError } from '../crypto.ts'
import { ReadOnlyStore, SECRET_NAME, type SecretStore } from '../store.ts'

const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied: the gateway user may not read it',
  EPERM: 'permission denied: the gateway user may not read it',
  EISDIR: 'it is a directory, not a file',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many symbolic links',
}

function reasonFor(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  return code === undefined ? (err as Error).message : `${REASONS[code] ?? (err as Error).message} (${code})`
}

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT'

/**
 * The most a secret file may hold: a Kubernetes Secret's whole data is at most 1 MiB, a Docker
 * secret 500 KB. A file was read whole whatever its size (a log or a disk image mounted by mistake
 * filled the heap, and every refresh read it again).
 */
export const MAX_SECRET_FILE_BYTES = 1_048_576

export function openFileStore(dir: string): SecretStore {
  let dirStats: Stats
  try {
    dirStats = statSync(dir)
  } catch (err) {
    throw new SecretsError(`cannot use ${dir} as the secrets directory: ${reasonFor(err)}`)
  }
  if (!dirStats.isDirectory()) throw new SecretsError(`cannot use ${dir} as the secrets directory: it is not a directory`)

  const path = (name: string) => (SECRET_NAME.test(name) ? join(dir, name) : undefined)
  /** The file's stats; undefined when it does not exist; a SecretsError for any other failure. */
  const stat = (file: string): Stats | undefined => {
    try {
      return statSync(file)
    } catch (err) {
      if (isMissing(err)) return undefined
      throw new SecretsError(`cannot read secret file ${file}: ${reasonFor(err)}`)
    }
  }
  const regularFile = (name: string) => {
    const file = path(name)
    const s = file ? stat(file) : undefined
    return s?.isFile() ? s : undefined
  }

  return {
    kind: 'file',
    writable: false,
    get(name, which = 'current') {
      const file = path(name)
      if (which !== 'current' || !file) return undefined
      const s = stat(file)
      if (!s) return undefined
      if (s.isDirectory()) throw new SecretsError(`cannot read secret file ${file}: ${REASONS.EISDIR} (EISDIR)`)
      // A FIFO or a device would block the event loop: refused before reading (and again by the read).
      if (!s.isFile()) throw new SecretsError(`cannot read secret file ${file}: it is not a regular file`)
      const read = readRegularFile(file, MAX_SECRET_FILE_BYTES)
      if (!read.ok) {
        if (read.reason === 'error' && isMissing(read.error)) return undefined // removed between the stat and the read
        throw new SecretsError(`cannot read secret file ${file}: ${read.reason === 'error' ? reasonFor(read.error) : whyNotRead(read, MAX_SECRET_FILE_BYTES)}`)
      }
      const value = read.bytes.toString('utf8').replace(/\r?\n$/, '')
      // Truncated to be rewritten in place, a file was read empty and `Bearer` went out with no
      // credential. A half-written one cannot be told from a short value: README asks for a rename.
      if (value === '') throw new SecretsError(`secret file ${file} is empty: an empty value is refused (replace the file whole: write a temporary file, then mv it over)`)
      return value
    },
    // ctime too: a chmod or a chown changes whether the file can be read, not its mtime. A path
    // that cannot be looked at gets a marker of its own, so the refresh reads it and says why.
    marker(name) {
      const file = path(name)
      if (!file) return undefined
      try {
        const s = stat(file)
        return s ? `${s.isFile() ? 'file' : 'other'}:${s.mtimeMs}:${s.ctimeMs}:${s.size}` : undefined
      } catch (err) {
        return `unreadable:${(err as Error).message}`
      }
    },
    notFound: (name) => `no file ${path(name) ?? join(dir, name)}`,
    list() {
      let names: string[]
      try {
        names = readdirSync(dir)
      } catch (err) {
        throw new SecretsError(`cannot list the secrets directory ${dir}: ${reasonFor(err)}`)
      }
      return names.filter((name) => SECRET_NAME.test(name) && regularFile(name)).sort()
    },
    versions: (name) => {
      const s = regularFile(name)
      return s ? [{ version: 1, createdAt: s.mtime.toISOString(), label: 'current' }] : []
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
