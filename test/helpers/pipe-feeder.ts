// A file whose every read the test controls: what each reader gets, and when (a reader waits in
// its read until then). Used to hold a gateway's worker in its synchronous read of a master key.
//
// The path is a symlink to a named pipe, swapped for a fresh pipe as soon as a reader has opened the
// current one. With one pipe reopened for each reader, the feeder's next open could match the
// previous reader before it had seen end-of-file: that reader then got the next content too, or
// closed before it was written (EPIPE, seen in CI under load). Readers that open before the swap,
// which waits for this event loop, share a pipe: one gets the content, the others end-of-file (an
// empty file), and `readers` counts them once. That is common when they start together (a review
// measured 66 of 400 reads of `cat` pairs empty): a test whose readers start at once must allow for
// it. Each pipe is written on its own, so a held reader holds no other.
import { execFileSync } from 'node:child_process'
import { constants, renameSync, symlinkSync } from 'node:fs'
import { open, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'

export interface Serving {
  content: string
  /** The reader waits until this settles. */
  gate?: Promise<void>
}

export interface PipeFeeder {
  /** The path readers open. */
  readonly path: string
  /** Pipes opened by a reader so far. */
  readonly readers: number
  /** What the next readers get, in order; after them, the default content. */
  plan: Serving[]
  /** Stops feeding: a reader waiting on a gate gets its content at once. */
  stop(): Promise<void>
}

const PIPES_AHEAD = 32

export function startPipeFeeder(dir: string, name: string, content: string): PipeFeeder {
  const path = join(dir, name)
  let pipes: string[] = []
  let made = 0
  let current = ''
  let done = false
  let stopped!: () => void
  const stopping = new Promise<void>((resolve) => (stopped = resolve))

  /** Points `path` at a new, empty pipe: the next reader opens that one. */
  function offer(): void {
    if (pipes.length === 0) {
      // Made ahead, in one command: the swap itself must be quick.
      pipes = Array.from({ length: PIPES_AHEAD }, (_, i) => join(dir, `${name}-${made + i}.fifo`))
      made += PIPES_AHEAD
      execFileSync('mkfifo', pipes)
    }
    current = pipes.shift() as string
    symlinkSync(current, `${path}.next`)
    renameSync(`${path}.next`, path) // atomic: a reader opens the old pipe or the new one
  }

  const writes = new Set<Promise<void>>()

  const feeder = {
    path,
    readers: 0,
    plan: [] as Serving[],
    async stop() {
      done = true
      stopped()
      // A writer still waiting for a reader, or about to wait: a reader and writer of the current
      // pipe (O_RDWR never waits), kept open until the loop has ended, lets its open return.
      const holder = await open(current, constants.O_RDWR | constants.O_NONBLOCK).catch(() => null)
      // Bounded all the same: a test must not hang on its helper.
      await Promise.race([Promise.all([running, ...writes]), new Promise((resolve) => setTimeout(resolve, 5_000).unref())])
      await holder?.close()
    },
  }

  /** One reader's content, when its gate says. */
  async function serve(served: string, writer: FileHandle, next: Serving): Promise<void> {
    if (next.gate) await Promise.race([next.gate, stopping])
    try {
      await writer.writeFile(next.content)
    } catch (err) {
      // stop()'s holder reads nothing and closes: not a failure then.
      if (!done) throw err
    } finally {
      await writer.close()
      await rm(served, { force: true })
    }
  }

  async function run(): Promise<void> {
    while (!done) {
      const served = current
      const writer = await open(served, 'w') // returns once a reader has opened this pipe
      feeder.readers++
      if (!done) offer()
      const write = serve(served, writer, feeder.plan.shift() ?? { content })
      writes.add(write)
      // A failed write fails the test (an unhandled rejection), as an exception in the test would.
      void write.finally(() => writes.delete(write))
    }
  }

  offer()
  const running = run()
  return feeder
}

/** A pipe-fed gateway test's teardown: the gateway killed first (its readers gone), then the feeder, the upstream, the files. */
export async function endPipeFedTest(parts: { gateway?: { stop(signal: NodeJS.Signals): Promise<unknown> }; feeder?: PipeFeeder; upstream?: { close(): Promise<void> }; dir?: string }): Promise<void> {
  await parts.gateway?.stop('SIGKILL')
  await parts.feeder?.stop()
  await parts.upstream?.close()
  if (parts.dir) await rm(parts.dir, { recursive: true, force: true })
}
