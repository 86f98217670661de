// A sink's spill file: the records it could not take yet, in order, one JSON line each, appended
// and (in sync durability) fsynced, read back from an offset during replay, truncated once the
// sink has them all.
//
// A damaged file must not stop the replay (the sink would never come back): a line that is not a
// record (spill-line.ts) is copied to `<spill>.quarantine` with its position and reason, then
// blanked in place (spaces, same length), so a later replay — after a restart too — skips it
// without reporting it again. A last line without its newline (a write cut short by a crash) is
// quarantined and cut off before anything is appended after it. Lines are split as bytes, so a
// character across a read boundary stays whole and offsets stay exact.
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, statSync, truncateSync, writeSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { CHAIN_STATE_FILE, readChainState } from './chain-head.ts'
import { parseSpillLine } from './spill-line.ts'
import type { StoredRow } from './sinks/sink.ts'
import { SpillFull, type SpillBudget } from './spill-budget.ts'
import { makeDirectories, refuseSpecialFile } from '../collections/index.ts'

/** Where a replay is: a byte offset and the number of the line that starts there (from 1). */
export interface SpillCursor {
  offset: number
  line: number
}

export const SPILL_START: SpillCursor = { offset: 0, line: 1 }

/** A line moved to quarantine. */
export interface DamagedLine {
  line: number
  offset: number
  reason: string
}

export interface Spill {
  readonly path: string
  readonly quarantinePath: string
  /** Bytes waiting in the file. */
  size(): number
  /**
   * Appends whole lines; a failed append is cut back off, so no partial line stays behind. With a
   * budget, the lines it has no room for are not written (SpillFull, which says how many were).
   */
  append(rows: readonly StoredRow[], durable: boolean, budget?: SpillBudget): Promise<void>
  /** Complete lines from `cursor`, at most `max` rows; lines that are not records are quarantined. */
  read(cursor: SpillCursor, max: number): Promise<{ rows: StoredRow[]; next: SpillCursor; damaged: DamagedLine[] }>
  /** Ends the file with a newline: a cut-short last line is quarantined and cut off (null when there was none). */
  repairTail(): DamagedLine | null
  /** Empties the file (synchronously, so no append can slip in between). */
  clear(): void
  close(): Promise<void>
}

const READ_CHUNK = 1 << 20
const NEWLINE = 0x0a

/** The name of a sink's spill file in a spill directory. */
export function spillFileName(sinkName: string): string {
  return `${sinkName.replace(/[^A-Za-z0-9._-]+/g, '_')}.ndjson`
}

/**
 * `legacyChain`: the chain of lines 0.1.0 wrote without one. The audit worker's own directory
 * passes the chain it continues (null when it began another: its chain.json names the new one by
 * then, and those lines are quarantined, not replayed into it, a review found); an adopted
 * directory reads its own chain.json, which moved with it.
 */
export function spillFor(dir: string, sinkName: string, legacyChain?: string | null): Spill {
  makeDirectories(dir)
  const path = join(dir, spillFileName(sinkName))
  const quarantinePath = `${path}.quarantine`
  let handle: FileHandle | undefined
  /** The directory's chain, for lines 0.1.0 wrote without one (undefined: not read yet). */
  let dirChain: string | null | undefined = legacyChain
  const chainOfOldLines = () => {
    if (dirChain === undefined) {
      const state = readChainState(join(dir, CHAIN_STATE_FILE))
      dirChain = state.kind === 'read' ? state.state.chain : null
    }
    return dirChain
  }

  function size(): number {
    try {
      return statSync(path).size
    } catch {
      return 0
    }
  }

  /** Copies a damaged line out (fsynced), then blanks it in the spill file. */
  function quarantine(bytes: Uint8Array, at: SpillCursor, reason: string): DamagedLine {
    const raw = Buffer.from(bytes)
    const text = raw.toString('utf8')
    const content = Buffer.from(text).equals(raw) ? { text } : { base64: raw.toString('base64') }
    const entry = { quarantined_at: new Date().toISOString(), spill: path, line: at.line, offset: at.offset, reason, ...content }
    const out = openSync(quarantinePath, 'a', 0o600)
    try {
      writeSync(out, `${JSON.stringify(entry)}\n`)
      fsyncSync(out)
    } finally {
      closeSync(out)
    }
    const spill = openSync(path, 'r+')
    try {
      writeSync(spill, Buffer.alloc(raw.length, 0x20), 0, raw.length, at.offset)
    } finally {
      closeSync(spill)
    }
    return { line: at.line, offset: at.offset, reason }
  }

  return {
    path,
    quarantinePath,
    size,
    async append(rows, durable, budget) {
      let text = ''
      let fit = rows.length
      if (budget) {
        const lines = rows.map((row) => `${JSON.stringify(row)}\n`)
        fit = budget.claim(lines.map((l) => Buffer.byteLength(l)))
        for (let i = 0; i < fit; i++) text += lines[i] as string
      } else {
        for (const row of rows) text += `${JSON.stringify(row)}\n`
      }
      if (fit === 0 && rows.length > 0) throw new SpillFull(budget?.maxBytes ?? 0)
      if (handle === undefined) {
        // A named pipe put where the spill file belongs held a pool thread in its open for ever (and
        // the appends and the replay behind it): refused, its records counted lost and logged.
        refuseSpecialFile(path)
        handle = await open(path, 'a')
      }
      const before = size()
      try {
        await handle.appendFile(text)
        if (durable) await handle.datasync()
      } catch (err) {
        // A full disk may have taken part of the text: a partial line would swallow the next one.
        try {
          truncateSync(path, before)
        } catch {
          // the next repairTail() quarantines what is left
        }
        throw err
      }
      if (fit < rows.length) throw new SpillFull(budget?.maxBytes ?? 0, fit)
    },
    async read(cursor, max) {
      refuseSpecialFile(path)
      const file = await open(path, 'r').catch(() => undefined)
      if (!file) return { rows: [], next: cursor, damaged: [] }
      try {
        const rows: StoredRow[] = []
        const damaged: DamagedLine[] = []
        let { offset, line } = cursor
        let carry: Buffer = Buffer.alloc(0) // the start of a line the last read cut off
        const buffer = Buffer.allocUnsafe(READ_CHUNK)
        while (rows.length < max) {
          const { bytesRead } = await file.read(buffer, 0, buffer.length, offset + carry.length)
          if (bytesRead === 0) break
          const bytes = carry.length > 0 ? Buffer.concat([carry, buffer.subarray(0, bytesRead)]) : buffer.subarray(0, bytesRead)
          let start = 0
          for (let end = bytes.indexOf(NEWLINE); end !== -1 && rows.length < max; end = bytes.indexOf(NEWLINE, start)) {
            const parsed = parseSpillLine(bytes.subarray(start, end), chainOfOldLines)
            if (parsed !== null && 'problem' in parsed) damaged.push(quarantine(bytes.subarray(start, end), { offset, line }, parsed.problem))
            else if (parsed !== null) rows.push(parsed)
            offset += end - start + 1
            line++
            start = end + 1
          }
          carry = Buffer.from(bytes.subarray(start)) // a copy: `buffer` is reused
        }
        return { rows, next: { offset, line }, damaged }
      } finally {
        await file.close()
      }
    },
    repairTail() {
      let fd: number
      try {
        fd = openSync(path, 'r+')
      } catch {
        return null
      }
      try {
        const tail = tailAfterLastNewline(fd)
        if (tail === null) return null
        const parsed = parseSpillLine(tail.bytes, chainOfOldLines)
        if (parsed === null || !('problem' in parsed)) {
          // Complete but for its newline (or blank): keep it.
          writeSync(fd, '\n', fstatSync(fd).size)
          return null
        }
        const damaged = quarantine(tail.bytes, { offset: tail.offset, line: linesBefore(fd, tail.offset) + 1 }, `cut short (${parsed.problem})`)
        ftruncateSync(fd, tail.offset)
        return damaged
      } finally {
        closeSync(fd)
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

/** The bytes after the file's last newline (null when it ends with one, or is empty). */
function tailAfterLastNewline(fd: number): { offset: number; bytes: Buffer } | null {
  const size = fstatSync(fd).size
  const chunk = Buffer.allocUnsafe(64 * 1024)
  let end = size
  let from = 0
  while (end > 0) {
    const start = Math.max(0, end - chunk.length)
    const read = readSync(fd, chunk, 0, end - start, start)
    const at = chunk.subarray(0, read).lastIndexOf(NEWLINE)
    if (at !== -1) {
      from = start + at + 1
      break
    }
    end = start
  }
  if (from === size) return null
  const bytes = Buffer.alloc(size - from)
  readSync(fd, bytes, 0, bytes.length, from)
  return { offset: from, bytes }
}

/** Newlines before `offset` (only counted when a damaged tail needs its line number). */
function linesBefore(fd: number, offset: number): number {
  const chunk = Buffer.allocUnsafe(READ_CHUNK)
  let lines = 0
  for (let at = 0; at < offset; ) {
    const read = readSync(fd, chunk, 0, Math.min(chunk.length, offset - at), at)
    if (read === 0) break
    for (let i = chunk.indexOf(NEWLINE); i !== -1 && i < read; i = chunk.indexOf(NEWLINE, i + 1)) lines++
    at += read
  }
  return lines
}
