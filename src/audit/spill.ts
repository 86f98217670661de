// A sink's spill file: the records it could not take yet, in order, one JSON line each, appended
// and (in sync durability) fsynced, read back from an offset during replay, truncated once the
// sink has them all.
//
// The file is cut in segments (`<name>.ndjson`, then `<name>.seg-1.ndjson`, `.seg-2`…, each up to
// `segmentBytes`): a replay deletes each segment once the sink has its records (release), so the
// spill's room comes back as the replay goes. Under audit.on_spill_full: refuse the gateway refused
// until the whole file was replayed and emptied — a minute or more for a full 1 GiB spill into
// PostgreSQL (bench/spill-replay.ts) after the sink was back.
//
// A damaged file must not stop the replay (the sink would never come back): a line that is not a
// record (spill-line.ts) is copied to `<spill>.quarantine` with its position and reason, then
// blanked in place (spaces, same length), so a later replay — after a restart too — skips it
// without reporting it again. A last line without its newline (a write cut short by a crash) is
// quarantined and cut off before anything is appended after it. Lines are split as bytes, so a
// character across a read boundary stays whole and offsets stay exact.
import { createHash } from 'node:crypto'
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readSync, statSync, truncateSync, unlinkSync, writeSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { CHAIN_STATE_FILE, readChainState } from './chain-head.ts'
import { parseSpillLine } from './spill-line.ts'
import type { StoredRow } from './sinks/sink.ts'
import { SpillFull, type SpillBudget } from './spill-budget.ts'
import { makeDirectories, refuseSpecialFile } from '../collections/index.ts'

/** Where a replay is: the segment, a byte offset in it and the number of the line that starts there (from 1). */
export interface SpillCursor {
  segment: number
  offset: number
  line: number
}

export const SPILL_START: SpillCursor = { segment: 0, offset: 0, line: 1 }

/** A line moved to quarantine: where it was (the segment's file, its line and offset there). */
export interface DamagedLine {
  file: string
  line: number
  offset: number
  reason: string
}

/** A segment's most, unless spillFor is told otherwise (the audit worker: a sixteenth of the cap). */
export const SEGMENT_BYTES = 16 * 1_048_576

export interface Spill {
  /** The first segment's file (the whole spill while it is smaller than a segment). */
  readonly path: string
  readonly quarantinePath: string
  /** Bytes waiting in the files. */
  size(): number
  /** Bytes from `cursor` to the end. */
  after(cursor: SpillCursor): number
  /** Deletes the segments wholly before `cursor`, whose records the sink has: their room is free again. */
  release(cursor: SpillCursor): void
  /**
   * Appends whole lines; a failed append is cut back off, so no partial line stays behind. With a
   * budget, the lines it has no room for are not written (SpillFull, which says how many were).
   */
  append(rows: readonly StoredRow[], durable: boolean, budget?: SpillBudget): Promise<void>
  /** Complete lines from `cursor` on, across segments, at most `max` rows; lines that are not records are quarantined. */
  read(cursor: SpillCursor, max: number): Promise<{ rows: StoredRow[]; next: SpillCursor; damaged: DamagedLine[] }>
  /** Ends the last segment with a newline: a cut-short last line is quarantined and cut off (null when there was none). */
  repairTail(): DamagedLine | null
  /** Empties the spill (synchronously, so no append can slip in between): the later segments go, the first is emptied. */
  clear(): void
  close(): Promise<void>
}

const READ_CHUNK = 1 << 20
const NEWLINE = 0x0a

/**
 * A spill file's name before its ending, at most: with `.seg-N.ndjson` or `.ndjson.quarantine` after
 * it, under the 255 bytes a file name may have (NAME_MAX).
 */
const MAX_STEM = 200

/** The name of a sink's spill file in a spill directory (its first segment's). */
export function spillFileName(sinkName: string): string {
  const stem = sinkName.replace(/[^A-Za-z0-9._-]+/g, '_')
  if (stem.length <= MAX_STEM) return `${stem}.ndjson`
  // A SQLite log's path made a longer one: every append failed (ENAMETOOLONG), and the records of a
  // sink away for a moment were lost, gaps in the chain verify then named as deleted (the audit
  // probe). Cut, its start and end kept to be read, and a digest of the whole to stay the sink's own.
  const digest = createHash('sha256').update(sinkName).digest('hex').slice(0, 16)
  return `${stem.slice(0, 80)}_${digest}_${stem.slice(-80)}.ndjson`
}

/** The file name of segment `n` of the spill whose first segment is `first`. */
function segmentName(first: string, n: number): string {
  return n === 0 ? first : `${first.slice(0, -'.ndjson'.length)}.seg-${n}.ndjson`
}

/** Which segment of the spill `first` a file name is, or null when it is none of its. */
export function segmentOf(first: string, file: string): number | null {
  if (file === first) return 0
  const stem = first.slice(0, -'.ndjson'.length)
  if (!file.startsWith(`${stem}.seg-`) || !file.endsWith('.ndjson')) return null
  const number = file.slice(stem.length + '.seg-'.length, -'.ndjson'.length)
  return /^[1-9][0-9]{0,8}$/.test(number) ? Number(number) : null
}

/** The segment files of the spill `first` in `dir`, in order. */
export function spillSegmentFiles(dir: string, first: string): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  return names.flatMap((name) => {
    const n = segmentOf(first, name)
    return n === null ? [] : [{ name, n }]
  }).sort((a, b) => a.n - b.n).map((entry) => entry.name)
}

/** Bytes in the segment files of the spill `first` in `dir` (0 when there is none). */
function bytesOfSegments(dir: string, first: string): number {
  let sum = 0
  for (const file of spillSegmentFiles(dir, first)) {
    try {
      sum += statSync(join(dir, file)).size
    } catch {
      // released meanwhile
    }
  }
  return sum
}

/** Bytes waiting in sink `sinkName`'s spill in `dir`, read without making the directory (the request thread reads it at start). */
export function spillBytes(dir: string, sinkName: string): number {
  return bytesOfSegments(dir, spillFileName(sinkName))
}

/**
 * `legacyChain`: the chain of lines 0.1.0 wrote without one. The audit worker's own directory
 * passes the chain it continues (null when it began another: its chain.json names the new one by
 * then, and those lines are quarantined, not replayed into it, a review found); an adopted
 * directory reads its own chain.json, which moved with it.
 */
export function spillFor(dir: string, sinkName: string, legacyChain?: string | null, segmentBytes = SEGMENT_BYTES): Spill {
  makeDirectories(dir)
  const first = spillFileName(sinkName)
  const path = join(dir, first)
  const quarantinePath = `${path}.quarantine`
  const segmentPath = (n: number) => join(dir, segmentName(first, n))
  /** The open append handle and the segment it appends to. */
  let handle: FileHandle | undefined
  let handleSegment = -1
  /** The directory's chain, for lines 0.1.0 wrote without one (undefined: not read yet). */
  let dirChain: string | null | undefined = legacyChain
  const chainOfOldLines = () => {
    if (dirChain === undefined) {
      const state = readChainState(join(dir, CHAIN_STATE_FILE))
      dirChain = state.kind === 'read' ? state.state.chain : null
    }
    return dirChain
  }

  /** The segments there are, in order (read from the directory: a replay releases, an append adds). */
  function segments(): number[] {
    return spillSegmentFiles(dir, first).map((name) => segmentOf(first, name) as number)
  }

  function sizeOf(n: number): number {
    try {
      return statSync(segmentPath(n)).size
    } catch {
      return 0
    }
  }


  /** Copies a damaged line out (fsynced), then blanks it in its segment. */
  function quarantine(bytes: Uint8Array, at: SpillCursor, reason: string): DamagedLine {
    const file = segmentPath(at.segment)
    const raw = Buffer.from(bytes)
    const text = raw.toString('utf8')
    const content = Buffer.from(text).equals(raw) ? { text } : { base64: raw.toString('base64') }
    const entry = { quarantined_at: new Date().toISOString(), spill: file, line: at.line, offset: at.offset, reason, ...content }
    const out = openSync(quarantinePath, 'a', 0o600)
    try {
      writeSync(out, `${JSON.stringify(entry)}\n`)
      fsyncSync(out)
    } finally {
      closeSync(out)
    }
    const spill = openSync(file, 'r+')
    try {
      writeSync(spill, Buffer.alloc(raw.length, 0x20), 0, raw.length, at.offset)
    } finally {
      closeSync(spill)
    }
    return { file, line: at.line, offset: at.offset, reason }
  }

  /**
   * Complete lines of one segment from `cursor`, at most `max`; `end`: the segment was read to its
   * end, `tail` what follows its last newline there.
   */
  async function readSegment(cursor: SpillCursor, max: number): Promise<{ rows: StoredRow[]; next: SpillCursor; damaged: DamagedLine[]; end: boolean; tail: Buffer }> {
    const file = segmentPath(cursor.segment)
    refuseSpecialFile(file)
    const opened = await open(file, 'r').catch(() => undefined)
    if (!opened) return { rows: [], next: cursor, damaged: [], end: true, tail: Buffer.alloc(0) }
    try {
      const rows: StoredRow[] = []
      const damaged: DamagedLine[] = []
      let { offset, line } = cursor
      let carry: Buffer = Buffer.alloc(0) // the start of a line the last read cut off
      const buffer = Buffer.allocUnsafe(READ_CHUNK)
      let end = false
      while (rows.length < max) {
        const { bytesRead } = await opened.read(buffer, 0, buffer.length, offset + carry.length)
        if (bytesRead === 0) {
          end = true
          break
        }
        const bytes = carry.length > 0 ? Buffer.concat([carry, buffer.subarray(0, bytesRead)]) : buffer.subarray(0, bytesRead)
        let start = 0
        for (let newline = bytes.indexOf(NEWLINE); newline !== -1 && rows.length < max; newline = bytes.indexOf(NEWLINE, start)) {
          const parsed = parseSpillLine(bytes.subarray(start, newline), chainOfOldLines)
          if (parsed !== null && 'problem' in parsed) damaged.push(quarantine(bytes.subarray(start, newline), { segment: cursor.segment, offset, line }, parsed.problem))
          else if (parsed !== null) rows.push(parsed)
          offset += newline - start + 1
          line++
          start = newline + 1
        }
        carry = Buffer.from(bytes.subarray(start)) // a copy: `buffer` is reused
      }
      return { rows, next: { segment: cursor.segment, offset, line }, damaged, end, tail: carry }
    } finally {
      await opened.close()
    }
  }

  return {
    path,
    quarantinePath,
    size: () => bytesOfSegments(dir, first),
    after(cursor) {
      let sum = 0
      for (const n of segments()) {
        if (n > cursor.segment) sum += sizeOf(n)
        else if (n === cursor.segment) sum += Math.max(0, sizeOf(n) - cursor.offset)
      }
      return sum
    },
    release(cursor) {
      for (const n of segments()) {
        if (n >= cursor.segment || n === handleSegment) break
        try {
          // The first segment's file stays, empty: the spill's path is where the others look for it.
          if (n === 0) truncateSync(segmentPath(0), 0)
          else unlinkSync(segmentPath(n))
        } catch {
          // gone already
        }
      }
    },
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
      // The last segment, or the next once this one holds a segment's bytes.
      let target = segments().at(-1) ?? 0
      const held = sizeOf(target)
      if (held > 0 && held + Buffer.byteLength(text) > segmentBytes) target++
      const file = segmentPath(target)
      if (handle === undefined || handleSegment !== target) {
        const previous = handle
        handle = undefined
        await previous?.close()
        // A named pipe put where the spill file belongs held a pool thread in its open for ever (and
        // the appends and the replay behind it): refused, its records counted lost and logged.
        refuseSpecialFile(file)
        handle = await open(file, 'a')
        handleSegment = target
      }
      const before = sizeOf(target)
      try {
        await handle.appendFile(text)
        if (durable) await handle.datasync()
      } catch (err) {
        // A full disk may have taken part of the text: a partial line would swallow the next one.
        try {
          truncateSync(file, before)
        } catch {
          // the next repairTail() quarantines what is left
        }
        throw err
      }
      if (fit < rows.length) throw new SpillFull(budget?.maxBytes ?? 0, fit)
    },
    async read(cursor, max) {
      const rows: StoredRow[] = []
      const damaged: DamagedLine[] = []
      let at = cursor
      const existing = segments()
      for (;;) {
        // A segment released (or never made): on from the next there is.
        if (!existing.includes(at.segment)) {
          const later = existing.find((n) => n > at.segment)
          if (later === undefined) break
          at = { segment: later, offset: 0, line: 1 }
        }
        const read = await readSegment(at, max - rows.length)
        rows.push(...read.rows)
        damaged.push(...read.damaged)
        at = read.next
        const later = existing.find((n) => n > at.segment)
        if (rows.length >= max || !read.end || later === undefined) break
        // Read to its end, and a later segment began after it: a cut-short line there can only be damage.
        if (read.tail.length > 0) damaged.push(quarantine(read.tail, at, 'cut short (a segment ends without its newline)'))
        at = { segment: later, offset: 0, line: 1 }
      }
      return { rows, next: at, damaged }
    },
    repairTail() {
      const last = segments().at(-1)
      if (last === undefined) return null
      const file = segmentPath(last)
      let fd: number
      try {
        fd = openSync(file, 'r+')
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
        const damaged = quarantine(tail.bytes, { segment: last, offset: tail.offset, line: linesBefore(fd, tail.offset) + 1 }, `cut short (${parsed.problem})`)
        ftruncateSync(fd, tail.offset)
        return damaged
      } finally {
        closeSync(fd)
      }
    },
    clear() {
      // The append handle may be a later segment's, which goes: the next append opens the first again.
      const previous = handle
      handle = undefined
      handleSegment = -1
      void previous?.close().catch(() => {})
      for (const n of segments()) {
        if (n > 0) {
          unlinkSync(segmentPath(n))
          continue
        }
        const fd = openSync(segmentPath(0), 'a')
        try {
          ftruncateSync(fd, 0)
        } finally {
          closeSync(fd)
        }
      }
    },
    async close() {
      await handle?.close()
      handle = undefined
      handleSegment = -1
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
