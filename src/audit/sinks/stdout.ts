// JSON lines on stdout, for a log shipper (CloudWatch, Loki, Vector, …): one record per line, the
// fields in SPEC order. Written with fs.writeSync on fd 1, which works from the audit worker.
//
// A pipe is non-blocking (the main thread's libuv makes it so): a reader behind (a log shipper)
// fills it and writeSync throws EAGAIN, often after part of a batch went out. The batch then
// failed whole, was spilled and replayed from the spill's start at every retry: the shipper got
// half lines and each record many times over (a probe: 947 lines for 322 records). So the sink
// remembers what went out: the rest of a line the pipe cut goes first at the next write, and rows
// already out (chain and seq) are skipped when their batch comes again from the spill. A full pipe
// is still a failed write, so a `durability: sync` answer does not wait on the reader.
import { writeSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { ordered } from '../record.ts'
import { sinkName, type AuditSink, type StoredRow } from './sink.ts'

/** Bytes of `bytes` from `from` that fd takes before its pipe is full. */
function writeUntilFull(fd: number, bytes: Buffer, from: number): number {
  let written = from
  while (written < bytes.length) {
    try {
      written += writeSync(fd, bytes, written)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
      break
    }
  }
  return written - from
}

function pipeFull(): Error {
  return Object.assign(new Error('stdout is full: its reader is behind (EAGAIN)'), { code: 'EAGAIN' })
}

export function createStdoutSink(fd = 1): AuditSink {
  /** The rest of a line the pipe cut short: it goes before anything else. */
  let rest: Buffer | null = null
  /** The newest row whose line went out (or is in `rest`). */
  let last: Pick<StoredRow, 'chain' | 'seq'> | null = null
  const out = (row: StoredRow) => last !== null && row.chain === last.chain && row.seq <= last.seq

  return {
    name: sinkName({ type: 'stdout' }),
    async open() {},
    async head() {
      return null
    },
    async write(rows) {
      if (rest !== null) {
        const n = writeUntilFull(fd, rest, 0)
        rest = n === rest.length ? null : rest.subarray(n)
        if (rest !== null) throw pipeFull()
      }
      let text = ''
      const ends: number[] = [] // each line's end in bytes
      const written: StoredRow[] = []
      for (const row of rows) {
        if (out(row)) continue
        text += `${JSON.stringify(ordered(row.record))}\n`
        ends.push(Buffer.byteLength(text))
        written.push(row)
      }
      if (written.length === 0) return
      const bytes = Buffer.from(text)
      const n = writeUntilFull(fd, bytes, 0)
      if (n === bytes.length) {
        last = written.at(-1) as StoredRow
        return
      }
      // The lines wholly out, and the one cut: its rest goes first next time.
      const cut = ends.findIndex((end) => end > n)
      if (n > (cut === 0 ? 0 : (ends[cut - 1] as number))) {
        last = written[cut] as StoredRow
        rest = bytes.subarray(n, ends[cut])
      } else if (cut > 0) {
        last = written[cut - 1] as StoredRow
      }
      throw pipeFull()
    },
    async checkpoint() {}, // stdout carries records only: a shipper expects the record's fields
    async ping() {
      if (rest === null) return
      const n = writeUntilFull(fd, rest, 0)
      rest = n === rest.length ? null : rest.subarray(n)
      if (rest !== null) throw pipeFull()
    },
    async deleteBefore() {
      return 0
    },
    async close() {
      // A line the pipe cut, not finished by a replay: its reader is given until the drain's end to take it.
      for (let wait = 1; rest !== null && wait <= 256; wait *= 2) {
        rest = rest.subarray(writeUntilFull(fd, rest, 0))
        if (rest.length === 0) rest = null
        else await sleep(wait)
      }
    },
  }
}
