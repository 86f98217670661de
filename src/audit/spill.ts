// A sink's spill file: the records it could not take yet, in order, one JSON line each, appended
// and (in sync durability) fsynced, read back from an offset during replay, truncated once the
// sink has them all.
import { closeSync, ftruncateSync, mkdirSync, openSync, statSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { StoredRow } from './sinks/sink.ts'

export interface Spill {
  readonly path: string
  /** Bytes waiting in the file. */
  size(): number
  append(rows: readonly StoredRow[], durable: boolean): Promise<void>
  /** Complete lines from `offset`, at most `max` rows; `next` is where the following read starts. */
  read(offset: number, max: number): Promise<{ rows: StoredRow[]; next: number }>
  /** Empties the file (synchronously, so no append can slip in between). */
  clear(): void
  close(): Promise<void>
}

export function spillFor(dir: string, sinkName: string): Spill {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `${sinkName.replace(/[^A-Za-z0-9._-]+/g, '_')}.ndjson`)
  let handle: FileHandle | undefined

  return {
    path,
    size() {
      try {
        return statSync(path).size
      } catch {
        return 0
      }
    },
    async append(rows, durable) {
      handle ??= await open(path, 'a')
      let text = ''
      for (const row of rows) text += `${JSON.stringify(row)}\n`
      await handle.appendFile(text)
      if (durable) await handle.datasync()
    },
    async read(offset, max) {
      const file = await open(path, 'r').catch(() => undefined)
      if (!file) return { rows: [], next: offset }
      try {
        const rows: StoredRow[] = []
        let next = offset
        let carry = ''
        const buffer = Buffer.alloc(1 << 20)
        while (rows.length < max) {
          const { bytesRead } = await file.read(buffer, 0, buffer.length, next + Buffer.byteLength(carry))
          if (bytesRead === 0) break
          const text = carry + buffer.toString('utf8', 0, bytesRead)
          const lines = text.split('\n')
          carry = lines.pop() ?? '' // an incomplete last line waits for the next read
          for (const line of lines) {
            next += Buffer.byteLength(line) + 1
            if (line.length > 0) rows.push(JSON.parse(line) as StoredRow)
            if (rows.length >= max) break
          }
          if (rows.length >= max) break
        }
        return { rows, next }
      } finally {
        await file.close()
      }
    },
    clear() {
      const fd = openSync(path, 'a')
      try {
        ftruncateSync(fd, 0)
      } finally {
        closeSync(fd)
      }
    },
    async close() {
      await handle?.close()
      handle = undefined
    },
  }
}
