// Audit lines wait here, as UTF-8 bytes outside the JS heap, until the batch goes to the worker.
// Kept as strings they would outlive a scavenge or two (a batch waits up to flush_interval), be
// promoted, and grow the old generation by megabytes a second; as bytes, each line's string dies
// young, and the batch is handed over without a copy (the ArrayBuffer is transferred).

/** Worst case: every UTF-16 unit becomes 3 bytes, plus the newline. */
const maxBytes = (line: string) => line.length * 3 + 1

/**
 * Buffers the worker has read and handed back, for the next batches (at most this many kept). A
 * fresh 1 MB buffer per batch measured ~30 MB more resident memory under load: each one lived in
 * the worker until its isolate next collected garbage (issue 15; bench/README.md, "Profiling").
 */
const MAX_SPARES = 4

export class LineBuffer {
  #bytes: Buffer<ArrayBuffer>
  #used = 0
  #count = 0
  readonly #capacity: number
  readonly #spares: ArrayBuffer[] = []

  /**
   * 1 MB: room for ~1,600 lines at the worst-case 3 bytes per character (a typical line is ~650
   * bytes), so at up to ~10,000 requests/s the flush interval, not the buffer, ends a batch. Fewer,
   * larger batches wake the worker less often and commit to SQLite less often: the worker's path
   * measured 11.5-12.0 µs per record in batches of 400 (the old 256 KB) against 10.6-10.8 in
   * batches of 1,600 (issue 15; bench/README.md, "Profiling").
   */
  constructor(capacity = 1024 * 1024) {
    this.#capacity = capacity
    this.#bytes = Buffer.allocUnsafeSlow(capacity)
  }

  get count(): number {
    return this.#count
  }

  /** False when the line may not fit: take() the batch first (an empty buffer grows to fit). */
  fits(line: string): boolean {
    return this.#used + maxBytes(line) <= this.#bytes.length || this.#count === 0
  }

  append(line: string): void {
    if (this.#count === 0 && maxBytes(line) > this.#bytes.length) this.#bytes = Buffer.allocUnsafeSlow(maxBytes(line))
    if (this.#count > 0) this.#bytes[this.#used++] = 0x0a
    this.#used += this.#bytes.write(line, this.#used, 'utf8')
    this.#count++
  }

  /** The batch so far (newline-separated lines), ready to transfer; the buffer starts afresh (a spare if there is one). */
  take(): Uint8Array<ArrayBuffer> {
    const batch = new Uint8Array(this.#bytes.buffer, this.#bytes.byteOffset, this.#used)
    const spare = this.#spares.pop()
    this.#bytes = spare === undefined ? Buffer.allocUnsafeSlow(this.#capacity) : Buffer.from(spare)
    this.#used = 0
    this.#count = 0
    return batch
  }

  /** A batch's buffer back from the worker, once read: kept for a later batch if it is of the usual size. */
  recycle(buffer: ArrayBuffer): void {
    if (buffer.byteLength === this.#capacity && this.#spares.length < MAX_SPARES) this.#spares.push(buffer)
  }
}
