// Audit lines wait here, as UTF-8 bytes outside the JS heap, until the batch goes to the worker.
// Kept as strings they would outlive a scavenge or two (a batch waits up to flush_interval), be
// promoted, and grow the old generation by megabytes a second; as bytes, each line's string dies
// young, and the batch is handed over without a copy (the ArrayBuffer is transferred).

/** Worst case: every UTF-16 unit becomes 3 bytes, plus the newline. */
const maxBytes = (line: string) => line.length * 3 + 1

export class LineBuffer {
  #bytes: Buffer<ArrayBuffer>
  #used = 0
  #count = 0
  readonly #capacity: number

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

  /** The batch so far (newline-separated lines), ready to transfer; the buffer starts afresh. */
  take(): Uint8Array<ArrayBuffer> {
    const batch = new Uint8Array(this.#bytes.buffer, this.#bytes.byteOffset, this.#used)
    this.#bytes = Buffer.allocUnsafeSlow(this.#capacity)
    this.#used = 0
    this.#count = 0
    return batch
  }
}
