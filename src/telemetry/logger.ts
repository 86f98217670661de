// Structured JSON logs on stderr (stdout carries the listener lines and the stdout audit sink).
// Anything that may hold a credential is redacted by path, and values that look like bearer
// tokens or JWTs are scrubbed from free text, so a careless message cannot leak one.
import { isMainThread } from 'node:worker_threads'
import { createRequire } from 'node:module'
import type { Logger, LoggerOptions as LoggerOptions_, pino as PinoModule } from 'pino'
import { API_KEY_PREFIX } from '../http/index.ts'

export type { Logger }

type Pino = typeof PinoModule
let pinoLoaded: Pino | undefined
/**
 * pino, loaded by the first logger made: `bouncer keys`, `audit`, `check`, `secrets` and `sessions`
 * make none, and its ~20 modules were ~45 ms of CPU at each of their starts (2026-12-07).
 */
const thePino = (): Pino => (pinoLoaded ??= (createRequire(import.meta.url)('pino') as { pino: Pino }).pino)

const REDACT_PATHS = [
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
  'token', '*.token', 'secret', '*.secret', 'value', '*.value', 'password', '*.password',
  'master_key', '*.master_key', 'cookie', '*.cookie', 'headers.cookie', '*.headers.cookie',
]

const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi
/**
 * An API key's secret (`bk_<id>_<secret>`): the id before it stays, as it names the key. Wherever
 * it starts, not at a word boundary only: percent-encoding (`%20bk_…`) puts a letter or digit before it.
 */
const API_KEY_SECRET = new RegExp(`(${API_KEY_PREFIX}[0-9a-f]{16})_[0-9a-f]{8,}`, 'gi')

/** Secret values the gateway holds: never to appear in a log line, wherever they hide. */
const known = new Set<string>()

/**
 * The shortest secret value taken out of log lines: a shorter one would blank ordinary words
 * wherever they appear (a secret store's values are warned of at load when under it).
 */
export const MIN_REDACTED_LENGTH = 6

export function redactValues(values: Iterable<string>): void {
  for (const value of values) if (value.length >= MIN_REDACTED_LENGTH) known.add(value)
}

/**
 * A configured URL as a log line may show it: scheme, host and path, never a `user:password@` or a
 * query (`?api_key=…`), which may carry a credential and would be written at every failed try.
 */
export function urlForLogs(url: string): string {
  try {
    const { protocol, host, pathname } = new URL(url)
    return `${protocol}//${host}${pathname}`
  } catch {
    return '(a URL that cannot be parsed)'
  }
}

/** Removes anything shaped like a credential, and every known secret value, from a string. */
export function scrub(text: string): string {
  let out = redactJwts(text).replace(BEARER, '$1 [redacted]').replace(API_KEY_SECRET, '$1_[redacted]')
  for (const value of known) if (out.includes(value)) out = out.replaceAll(value, '[redacted]')
  return out
}

const DOT = 0x2e

function isBase64Url(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2d
}

/** The end of the run of base64url characters that starts at `from`. */
function runEnd(text: string, from: number): number {
  let i = from
  while (i < text.length && isBase64Url(text.charCodeAt(i))) i++
  return i
}

/**
 * Replaces what `/\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*\/g` would match, in linear time: the regex
 * rescans the rest of a long run from every `eyJ` in it, which made a 64 KB log message of
 * "-eyJ" repeated take seconds. A start that fails at a dot fails for every later start before
 * that dot too, so the scan jumps past it.
 */
export function redactJwts(text: string): string {
  let out = ''
  let copied = 0
  let at = text.indexOf('eyJ')
  while (at !== -1) {
    const before = at === 0 ? 0x20 : text.charCodeAt(at - 1)
    if (isBase64Url(before) && before !== 0x2d) {
      at = text.indexOf('eyJ', at + 1) // not at a word boundary
      continue
    }
    const headerEnd = runEnd(text, at + 3)
    if (headerEnd - at - 3 < 5 || text.charCodeAt(headerEnd) !== DOT) {
      at = text.indexOf('eyJ', headerEnd)
      continue
    }
    const payloadEnd = runEnd(text, headerEnd + 1)
    if (payloadEnd - headerEnd - 1 < 5 || text.charCodeAt(payloadEnd) !== DOT) {
      at = text.indexOf('eyJ', headerEnd + 1)
      continue
    }
    const end = runEnd(text, payloadEnd + 1)
    out += text.slice(copied, at) + '[redacted]'
    copied = end
    at = text.indexOf('eyJ', end)
  }
  return copied === 0 ? text : out + text.slice(copied)
}

/** An API key's secret anywhere in a text, for a test (a global regex's test() moves its lastIndex). */
const HOLDS_API_KEY_SECRET = new RegExp(API_KEY_SECRET.source, 'i')
const HOLDS_BEARER = new RegExp(BEARER.source, 'i')

/** Whether scrub would change a text: a credential's shape (bearer, JWT, API key) or a known secret in it. */
function holdsSecret(text: string): boolean {
  if (HOLDS_API_KEY_SECRET.test(text) || HOLDS_BEARER.test(text) || redactJwts(text) !== text) return true
  for (const secret of known) if (text.includes(secret)) return true
  return false
}

/**
 * What a field's JSON copy must change: a string in it that holds a secret (each string read as
 * itself, not as its JSON escape: `\neyJ…` is a token after a line break), or an Error in it, which
 * pino writes as `{}` anywhere but under `err`; undefined when JSON cannot carry the value.
 */
function needsCopy(value: object): boolean | undefined {
  let found = false
  try {
    JSON.stringify(value, (_key, item: unknown) => {
      if (!found && (item instanceof Error || (typeof item === 'string' && holdsSecret(item)))) found = true
      return found ? undefined : item // no further: an Error's own fields may loop (`e.cause = e`)
    })
  } catch {
    return undefined
  }
  return found
}

/**
 * A JSON value's scrubbed copy, each Error in it serialized as the err serializer writes it, or the
 * value itself when it holds neither a secret nor an Error (what JSON cannot carry is left as it is).
 * One JSON text, scrubbed as it is written: looking for a secret first wrote the field a second time.
 */
function scrubJson(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'string' ? scrub(value) : value
  let found = false
  let text: string | undefined
  try {
    text = JSON.stringify(value, (_key, item: unknown) => {
      if (item instanceof Error) {
        found = true
        return serializeError(item)
      }
      if (typeof item !== 'string' || !holdsSecret(item)) return item
      found = true
      return scrub(item)
    })
  } catch {
    return value
  }
  return !found || text === undefined ? value : (JSON.parse(text) as unknown)
}

/**
 * A log call's fields, scrubbed as its message is: fields are free text too (a datasource's error
 * quoting a value, a URL with an access_token, a header under `Authorization`), and only known
 * secret values and API keys were taken out of them, so a bearer token or a JWT in one reached the
 * line (the admin probe). Each field is scrubbed apart. An Error under `err`, or passed alone, is left
 * to the err serializer (which scrubs its message and stack); one anywhere else is serialized as it
 * would (`{ error: e }`, `{ cause: e }`, a list of them were written as {}, message and stack lost).
 */
function scrubObject(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || value instanceof Error || Array.isArray(value)) return value instanceof Error ? value : scrubJson(value)
  if (needsCopy(value) !== true) return value
  // fromEntries defines each field: a "__proto__" one would otherwise set the copy's prototype.
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, key === 'err' && item instanceof Error ? item : scrubJson(item)]))
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** BOUNCER_LOG_LEVEL names no level: the operator's to fix (the CLI says so as a user's error). */
export class LogLevelError extends Error {
  override name = 'LogLevelError'
}

/**
 * BOUNCER_LOG_LEVEL's level, in any letter case (`DEBUG`, as most programs' LOG_LEVEL is written); info
 * when unset. pino's own refusal of `DEBUG` or `verbose` stopped `serve` as an internal error (the admin probe).
 */
export function logLevelFromEnv(value = process.env.BOUNCER_LOG_LEVEL): string {
  if (value === undefined || value.trim() === '') return 'info'
  const level = value.trim().toLowerCase()
  if ((LEVELS as readonly string[]).includes(level)) return level
  throw new LogLevelError(`BOUNCER_LOG_LEVEL "${value}" is not a log level: ${LEVELS.slice(0, -1).join(', ')} or silent`)
}

export interface LoggerOptions {
  level?: string
  /**
   * Where to write: a file descriptor (default 2) or a stream, e.g. for tests, or a worker thread's
   * relay of its lines to the main thread (writeRelayedLine).
   */
  destination?: number | PinoModule.DestinationStream
}

/**
 * Log lines waiting for a reader of stderr that has stopped reading, at most: past it, lines are
 * dropped rather than waited for.
 */
const LOG_BUFFER_BYTES = 16 * 1024 * 1024

/**
 * Where lines go: written synchronously, a reader of stderr that stopped reading (a stalled log
 * shipper, a paused pager, a blocking log driver) filled the pipe, and the next line held the event
 * loop until it read: every request stopped, /healthz included (the admin probe). On the main thread
 * they queue (bounded) and pino writes what is left when the process exits. A worker thread of
 * server.workers does not write at all: it hands each line to the primary (writeRelayedLine), whose
 * queue writes it; another thread's logger writes as it logs, as it can end without an exit to flush at.
 */
function fileDestination(fd: number) {
  if (!isMainThread) return keepsLogging(thePino().destination({ fd, sync: true }))
  // pino writes what is queued at exit synchronously, retrying while the pipe is full: a reader of
  // stderr that had stopped reading held the process there for ever (SIGTERM drained the gateway,
  // then it never ended). Once the reader has taken nothing for READER_STALLED_MS, the exit goes on
  // without the rest; a slow reader that still reads gets it all.
  let giveUpAt = Infinity
  let unwritten = -1
  const stillWaiting = (_err: unknown, writing: number, rest: number): boolean => {
    if (giveUpAt === Infinity) return true // not exiting: retried in the background
    if (writing + rest !== unwritten) giveUpAt = Date.now() + READER_STALLED_MS
    unwritten = writing + rest
    return Date.now() < giveUpAt
  }
  const stream = thePino().destination({ fd, sync: false, maxLength: LOG_BUFFER_BYTES, retryEAGAIN: stillWaiting })
  // Listened to, a failed write is no uncaught exception (keepsLogging says why). And sonic-boom's
  // flushSync retries a write that fails other than EAGAIN every 100 ms for ever: after a write
  // refused by a full disk (ENOSPC) or a terminal gone (EIO), the process never ended. While the
  // last write failed so, the exit gives the queued lines up; a write that works again clears it.
  let failing = false
  stream.on('error', () => (failing = true))
  stream.on('write', () => (failing = false))
  const writeQueued = stream.flushSync.bind(stream)
  stream.flushSync = () => {
    if (failing) return
    giveUpAt = Date.now() + READER_STALLED_MS
    try {
      writeQueued()
    } catch {
      // At exit: a reader that stopped reading, a full disk, a terminal gone. The rest is lost, and
      // the process ends as it would.
    } finally {
      giveUpAt = Infinity
      unwritten = -1
    }
  }
  return stream
}

/**
 * A worker thread's destination (the main thread's listens in fileDestination). A write that
 * failed (stderr a file on a full disk, ENOSPC; a terminal hung up, EIO) is an 'error'
 * the destination emits, and pino listens only for EPIPE: the next line after the disk filled ended
 * the gateway as an uncaught exception (found by a review). The lines stay queued and are written
 * once the write works again; past LOG_BUFFER_BYTES they are dropped and counted, as for a stalled reader.
 */
function keepsLogging<T extends NodeJS.EventEmitter>(stream: T): T {
  stream.on('error', () => {})
  return stream
}

/** How long a write that must be done now (at exit, warnNow) waits for a reader of stderr that takes nothing. */
const READER_STALLED_MS = 2_000

/** Lines dropped at LOG_BUFFER_BYTES since the process started: bouncer_log_lines_dropped_total. */
let droppedLines = 0

export function droppedLogLines(): number {
  return droppedLines
}

/**
 * Counts the lines the queue drops (they were counted nowhere: a quiet log could not be told from
 * a lossy one), and once it has been written out (the reader reads again), says how many in one line.
 */
function countDrops(stream: ReturnType<Pino['destination']>, logger: Logger): void {
  let lost = 0
  stream.on('drop', () => {
    droppedLines++
    lost++
  })
  stream.on('drain', () => {
    if (lost === 0) return
    const dropped = lost
    lost = 0
    logger.warn({ dropped }, `${dropped} log lines were dropped: stderr was not read while ${LOG_BUFFER_BYTES / 1024 / 1024} MiB of lines waited`)
  })
}

/**
 * Writes a line another thread's logger made (a server.workers worker's, posted to the primary) to
 * this logger's destination, through its queue: written by the worker, it held the worker's event
 * loop, and every request the kernel gave it, while a reader of stderr did not read. It is dropped and
 * counted as the primary's own lines are when the queue is full.
 */
export function writeRelayedLine(logger: Logger, line: string): void {
  ;((logger as unknown as Record<symbol, unknown>)[thePino().symbols.streamSym] as PinoModule.DestinationStream).write(line)
}

/**
 * Writes one warning at once, before the process ends by a signal (which no exit hook sees): queued
 * behind lines in the background (fileDestination), or behind a write held in a libuv thread pool
 * that a hung file system fills, the line saying why the process ends was lost with it. The same
 * line as `logger.warn` gives, its fields and bindings included.
 */
export function warnNow(logger: Logger, fields: object, msg: string): void {
  const stream = (logger as unknown as Record<symbol, unknown>)[thePino().symbols.streamSym] as { fd?: unknown; sync?: unknown } | undefined
  if (stream?.sync !== false || typeof stream.fd !== 'number') return void logger.warn(fields, msg)
  // Not for ever either: a full pipe, retried every 100 ms, held the process this warning precedes the end of.
  const giveUpAt = Date.now() + READER_STALLED_MS
  const now = thePino().destination({ fd: stream.fd, sync: true, retryEAGAIN: () => Date.now() < giveUpAt })
  now.on('error', () => {}) // the pipe stayed full: the line is lost, the process ends as it would
  thePino()(pinoOptions(logger.level), now).child(logger.bindings()).warn(fields, msg)
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const { level = logLevelFromEnv(), destination = 2 } = options
  const stream = typeof destination === 'number' ? fileDestination(destination) : destination
  const logger = thePino()(pinoOptions(level), stream)
  if (typeof destination === 'number' && isMainThread) countDrops(stream as ReturnType<Pino['destination']>, logger)
  return logger
}

function pinoOptions(level: string): LoggerOptions_ {
  return {
    level,
    base: { service: 'bouncer' },
    timestamp: thePino().stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((arg) => (typeof arg === 'string' ? scrub(arg) : scrubObject(arg))) as Parameters<typeof method>)
      },
    },
    serializers: { err: serializeError },
  }
}
/**
 * An error as a log line writes it. `seen`: the errors above it in its chain of causes and
 * AggregateError members, where a cycle ends (`e.cause = e` overflowed the stack and the log call threw).
 */
function serializeError(err: unknown, seen = new Set<unknown>()): Record<string, unknown> {
  if (!(err instanceof Error)) {
    // An error that crossed from a worker thread as a plain object (audit/worker.ts cloneable):
    // String() of it logged "[object Object]" for every audit worker failure (a probe).
    if (typeof err !== 'object' || err === null || typeof (err as { message?: unknown }).message !== 'string') return { message: scrub(String(err)) }
    const plain = err as { type?: unknown; message: string; code?: unknown; stack?: unknown }
    return {
      type: typeof plain.type === 'string' ? plain.type : 'Error',
      message: scrub(plain.message),
      ...(plain.code === undefined ? {} : { code: plain.code }),
      ...(typeof plain.stack === 'string' ? { stack: scrub(plain.stack) } : {}),
    }
  }
  const out: Record<string, unknown> = { type: err.name, message: scrub(err.message), stack: scrub(err.stack ?? '') }
  const code = (err as { code?: unknown }).code
  if (code !== undefined) out.code = code
  seen.add(err)
  if (err.cause !== undefined) out.cause = seen.has(err.cause) ? '[Circular]' : serializeError(err.cause, seen)
  // Each error an AggregateError (Promise.any, a connect's tries of every address) holds: its own message is "".
  if (err instanceof AggregateError && Array.isArray(err.errors)) out.errors = err.errors.map((each: unknown) => (seen.has(each) ? '[Circular]' : serializeError(each, seen)))
  return out
}
