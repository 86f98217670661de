// Tests wait on the event itself (a log line, a metric, a request reaching an upstream), never on a
// fixed sleep: the machine is shared, and a sleep is either too short there or wasted everywhere.
import { request } from 'undici'

/** Polls `probe` until it returns true (for hooks, where expect.poll is not available). */
export async function waitFor(probe: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  // The monotonic clock: a test that fakes Date (vi.useFakeTimers) still times out.
  const deadline = performance.now() + timeoutMs
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Waits until `text()` (a log, a process's stderr) matches; answers the text. */
export async function waitForText(text: () => string, pattern: string | RegExp, timeoutMs = 10_000): Promise<string> {
  const matches = () => (typeof pattern === 'string' ? text().includes(pattern) : pattern.test(text()))
  await waitFor(matches, `output matching ${String(pattern)}`, timeoutMs)
  return text()
}

/** The value of one series on an admin listener's /metrics (`name{label="v"}`), or undefined. */
export async function metricValue(adminUrl: string, series: string): Promise<number | undefined> {
  const res = await request(`${adminUrl}/metrics`)
  const body = await res.body.text()
  const line = body.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

/** Waits until a series on /metrics reaches at least `atLeast`; answers its value. */
export async function waitForMetric(adminUrl: string, series: string, atLeast = 1, timeoutMs = 10_000): Promise<number> {
  let value: number | undefined
  await waitFor(async () => (value = await metricValue(adminUrl, series)) !== undefined && value >= atLeast, `${series} >= ${atLeast}`, timeoutMs)
  return value as number
}

/** A promise with its resolve function outside: a test's hand on when something happens. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

/** Reads `stream` (set flowing) until at least `bytes` have come or it closes: the bytes read. */
export function readAtLeast(stream: NodeJS.ReadableStream & { once(event: 'close', listener: () => void): unknown }, bytes: number): Promise<number> {
  return new Promise((resolve) => {
    let read = 0
    stream.on('data', (chunk: Buffer) => {
      read += chunk.length
      if (read >= bytes) resolve(read)
    })
    stream.once('close', () => resolve(read))
    stream.resume()
  })
}
