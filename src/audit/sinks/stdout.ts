// JSON lines on stdout, for a log shipper (CloudWatch, Loki, Vector, …): one record per line, the
// fields in SPEC order. Written with fs.writeSync on fd 1, which works from the audit worker.
import { writeSync } from 'node:fs'
import { ordered } from '../record.ts'
import { sinkName, type AuditSink } from './sink.ts'

export function createStdoutSink(fd = 1): AuditSink {
  return {
    name: sinkName({ type: 'stdout' }),
    async open() {},
    async head() {
      return null
    },
    async write(rows) {
      let text = ''
      for (const { record } of rows) text += `${JSON.stringify(ordered(record))}\n`
      let written = 0
      const bytes = Buffer.from(text)
      while (written < bytes.length) written += writeSync(fd, bytes, written)
    },
    async checkpoint() {}, // stdout carries records only: a shipper expects the record's fields
    async ping() {},
    async deleteBefore() {
      return 0
    },
    async close() {},
  }
}
