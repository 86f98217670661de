// Audit lines wait as UTF-8 bytes until their batch goes to the worker: every line must come out
// exactly as it went in, whatever its characters and size, and a full buffer must say so first.
import { describe, expect, it } from 'vitest'
import { LineBuffer } from '../../../src/audit/line-buffer.ts'

const decode = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')

describe('audit line buffer', () => {
  it('returns the lines it was given, newline-separated, including multi-byte characters', () => {
    const buffer = new LineBuffer(1024)
    const lines = ['{"path":"/a"}', '{"subject":"zoë – 東京 🚀"}', '{"x":"\\u0000"}']
    for (const line of lines) buffer.append(line)
    expect(buffer.count).toBe(3)
    expect(decode(buffer.take()).split('\n')).toEqual(lines)
    expect(buffer.count).toBe(0)
    expect(decode(buffer.take())).toBe('')
  })

  it('asks for a flush before a line that may not fit, and takes a line larger than the buffer', () => {
    const buffer = new LineBuffer(64)
    buffer.append('x'.repeat(10))
    expect(buffer.fits('y'.repeat(10))).toBe(true)
    expect(buffer.fits('€'.repeat(20))).toBe(false) // 60 bytes after the first 11: may not fit
    expect(decode(buffer.take())).toBe('x'.repeat(10))
    const big = '€'.repeat(1_000)
    expect(buffer.fits(big)).toBe(true) // an empty buffer grows to fit
    buffer.append(big)
    expect(decode(buffer.take())).toBe(big)
  })

  it('writes later batches into the buffers the worker hands back, keeping only a few of the usual size', () => {
    const buffer = new LineBuffer(64)
    buffer.append('first')
    const first = buffer.take()
    buffer.recycle(first.buffer)
    buffer.recycle(new ArrayBuffer(32)) // not the usual size: dropped
    buffer.append('second') // into the buffer take() started afresh
    expect(buffer.take().buffer).not.toBe(first.buffer)
    buffer.append('third') // into the one handed back
    const third = buffer.take()
    expect(third.buffer).toBe(first.buffer)
    expect(decode(third)).toBe('third')
    const spares = Array.from({ length: 6 }, () => new ArrayBuffer(64))
    for (const spare of spares) buffer.recycle(spare)
    const reused = new Set(Array.from({ length: 6 }, () => buffer.take().buffer))
    expect(spares.filter((spare) => reused.has(spare))).toHaveLength(4)
  })

  it('hands over a batch that the next lines cannot overwrite', () => {
    const buffer = new LineBuffer(64)
    buffer.append('first')
    const batch = buffer.take()
    buffer.append('second')
    expect(decode(batch)).toBe('first')
  })
})
