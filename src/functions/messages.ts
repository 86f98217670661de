// What the gateway and a function's worker say to each other (worker.ts ⇄ pool.ts). One invocation
// at a time per worker, as in a Lambda execution environment: a handler may keep per-invocation state
// in module variables, and a timeout terminates the worker without touching anyone else's request.

/** Fixed for a worker's life: which module, which export, and the Lambda context's constants. */
export interface WorkerSetup {
  module: string
  handler: string
  functionName: string
  /** As Lambda's context.memoryLimitInMB: a string. */
  memoryLimitInMB: string
  /** Where the worker keeps the line it has not finished on each stream (unfinishedLine): one pair per worker. */
  unfinished: UnfinishedLines
}

/**
 * The line a handler left unfinished on its stdout or stderr, as UTF-8 behind its byte count (an
 * Int32): shared memory, so the gateway reads it from a worker it terminated (a timeout) or that
 * died. A message could not carry it: the worker would have to run to send one.
 */
export interface UnfinishedLines {
  stdout: SharedArrayBuffer
  stderr: SharedArrayBuffer
}

/** The gateway asks a worker to run the handler once. */
export interface Invoke {
  id: number
  /**
   * The API Gateway HTTP API payload format 2.0 event (event.ts), as JSON text: a string crosses to
   * the worker as one copy, where structured cloning the object cost ≈ 10 µs more per invocation
   * (measured, 20,000 round trips on one core).
   */
  event: string
  /**
   * The function's timeout: the worker's context.getRemainingTimeInMillis() counts it from when the
   * handler is called, as the pool's clock starts once the module is loaded (a cold start's load is
   * not the invocation's time).
   */
  timeoutMs: number
  requestId: string
  /** The request's trace id: in the log lines about the invocation, beside its request id. */
  traceId: string | null
}

/** The request an invocation serves, as the log lines about it name it. */
export type InvokedFor = Pick<Invoke, 'requestId' | 'traceId'>

/** What the handler answered, made an HTTP response by AWS's format 2.0 rules (response.ts). */
export interface FunctionResponse {
  status: number
  /** Flat [name, value, …], names in lower case, hop-by-hop headers and Content-Length left out. */
  headers: string[]
  /** The body as text (sent as UTF-8), or bytes decoded from base64. */
  body: string | Uint8Array
}

/**
 * A console line longer than this is cut, in the worker before it is posted (a handler logging a
 * whole body must not flood the log, nor copy megabytes to the gateway's thread: probe finding).
 */
export const MAX_LOG_LINE = 8_192

/**
 * Longer than this a text is not cut but left out: slice() flattens a rope ('y'.repeat(n), a + b)
 * into one allocation of its whole length, and in a worker one far past its heap limit aborts the
 * whole process (probe finding: a 200 MB thrown message). 1 Mi characters stay within the 16 MB
 * Node gives a worker past its limit.
 */
export const MAX_CUTTABLE = 1_048_576

/** The text cut at MAX_LOG_LINE characters, saying how long it was. */
export function cutLine(text: string): string {
  if (text.length <= MAX_LOG_LINE) return text
  if (text.length > MAX_CUTTABLE) return `(${text.length} chars, too long to log)`
  return `${text.slice(0, MAX_LOG_LINE)}…(truncated, ${text.length} chars)`
}

/** An unfinished line's bytes at most: MAX_LOG_LINE characters of three UTF-8 bytes, what is logged of one. */
export const UNFINISHED_BYTES = MAX_LOG_LINE * 3

/** A new worker's pair, empty. */
export function unfinishedLines(): UnfinishedLines {
  return { stdout: new SharedArrayBuffer(4 + UNFINISHED_BYTES), stderr: new SharedArrayBuffer(4 + UNFINISHED_BYTES) }
}

/** The unfinished line kept in `shared`; '' when there is none. */
export function unfinishedLine(shared: SharedArrayBuffer): string {
  const length = Math.min(Atomics.load(new Int32Array(shared, 0, 1), 0), UNFINISHED_BYTES)
  return length <= 0 ? '' : Buffer.from(shared, 4, length).toString('utf8')
}

export type FailurePhase = 'init' | 'handler' | 'response' | 'oversized'

/** An error's name, message and stack, each cut at MAX_LOG_LINE in the worker (a thrown 200 MB message aborted the process as it was posted: probe finding). */
export interface FailureDetails {
  name: string
  message: string
  stack: string | undefined
}

export type FromWorker =
  /** `usedBytes`: the worker's JS heap in use and its memory outside it (Buffers, ArrayBuffers) after the invocation. */
  | { type: 'result'; id: number; response: FunctionResponse; usedBytes: number }
  /**
   * The invocation failed: the module did not load (`init`), the handler threw or rejected
   * (`handler`), what it returned is not a response AWS would accept (`response`), or is larger
   * than a function may answer (`oversized`, answer-size.ts).
   */
  | { type: 'failed'; id: number; phase: FailurePhase; error: FailureDetails; usedBytes: number }
  /** The module loaded (or not), once per worker: a module that cannot load is reported before any request. */
  | { type: 'loaded'; error: FailureDetails | null }
  /**
   * A console line of the handler (or a line it wrote to process.stdout/stderr: `stream`), with the
   * request (and trace) of the invocation it came from (null outside any), at most MAX_LOG_LINE characters.
   */
  | { type: 'log'; requestId: string | null; traceId?: string | null; level: LogLevel; text: string; stream?: 'stdout' | 'stderr' }

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
