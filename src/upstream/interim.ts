// RFC 9110 §15.2: a client MUST be able to parse one or more 1xx answers before the final one, even
// one it did not expect. undici 7 drops the connection on any `100 Continue` (client-h1.js
// onHeadersComplete, with no option), and the gateway never forwards Expect, so every 100 is one it
// did not ask for: an upstream that sends one to every upload (IIS, old Java containers, a node:http
// app calling writeContinue) got each of them 502 upstream_error, its answer lost (a probe).
//
// So the 100s are taken out of what undici reads of a target's connection: from the moment a
// request is sent (pipelining 1: the next bytes begin its answer) up to the answer's final status
// line. A 1xx head ends at its first empty line (RFC 9112 §6.3) and has no body, so nothing of a
// body is ever looked at; 1xx heads other than 100 pass on, as undici reads them. Only a 100 head
// HTTP/1.1 allows is taken out (CRLF line ends, no folding, field names that are tokens): any other
// reaches undici as it came, which refuses it as before.
//
// The final status line passes here too, so this is where an HTTP/1.0 answer with Transfer-Encoding
// is seen: RFC 9112 §6.1 says its framing is faulty and its connection closed after it, and undici
// read it as chunked and, told `Connection: keep-alive`, sent the next request on it (a probe).
import type { Socket } from 'node:net'

const atAnswerStart = Symbol('bytes held at the start of an answer')
type Filtered = Socket & { [atAnswerStart]?: Buffer | null }

const EMPTY = Buffer.alloc(0)
/** What undici reads of a head at most (its maxHeaderSize): a 1xx head not ended by then is left to it. */
const MAX_HEAD = 16_384
/** `HTTP/1.x 1dd` and a space or the line's end (llhttp takes no reason phrase): what a 1xx status line begins with, and the bytes needed to tell. */
const INTERIM_START = /^HTTP\/1\.[01] 1\d\d[ \r]/
const START_LENGTH = 13
/** An interim head HTTP/1.1 allows (RFC 9112 §2.2, §4, §5: CRLF, no obs-fold, token names). */
const INTERIM_HEAD = /^HTTP\/1\.[01] 1\d\d(?: [\t\x20-\x7e\x80-\xff]*)?\r\n(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*\r\n)*\r\n$/

/**
 * Takes unasked 100s out of what is read of this connection (undici reads it with `socket.read()`
 * on 'readable'). One property read a read, but at an answer's start.
 */
export function readPastContinues(socket: Socket): void {
  const filtered = socket as Filtered
  filtered[atAnswerStart] = null
  const read = socket.read
  socket.read = function readWithoutContinues(this: Socket, size?: number) {
    const chunk = read.call(this, size) as Buffer | null
    const held = filtered[atAnswerStart]
    if (held === null || held === undefined || chunk === null) return chunk
    return withoutContinues(filtered, held.length === 0 ? chunk : Buffer.concat([held, chunk]))
  }
}

/** A request went out on the socket (undici's sendHeaders): what it reads next begins the answer. */
export function answerBegins(socket: Socket): void {
  const filtered = socket as Filtered
  if (filtered[atAnswerStart] !== undefined) filtered[atAnswerStart] = EMPTY
}

/** The bytes for undici from those read at an answer's start (null: none yet); what cannot be told yet is held. */
function withoutContinues(socket: Filtered, bytes: Buffer): Buffer | null {
  const out: Buffer[] = []
  let rest = bytes
  for (;;) {
    const head = interimHead(rest)
    if (head === 'hold') {
      socket[atAnswerStart] = rest
      break
    }
    if (head === 'final') {
      socket[atAnswerStart] = null
      // `HTTP/1.0`: one byte for nearly every answer, which says `HTTP/1.1`.
      if (rest[7] === 0x30 && rest[5] === 0x31) closeIfFramingFaulty(socket, rest)
      out.push(rest)
      break
    }
    if (!head.skip) out.push(rest.subarray(0, head.length))
    rest = rest.subarray(head.length)
  }
  return out.length === 0 ? null : out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out)
}

const HEAD_END = /\r?\n\r?\n/
const TRANSFER_ENCODING = /\ntransfer-encoding[ \t]*:/i

/**
 * An HTTP/1.0 answer's first bytes: with Transfer-Encoding in its head, its connection is closed
 * once undici has read the answer (relayed as it framed it, as nginx does: it closes every HTTP/1.0
 * upstream's connection). A head not whole in these bytes is closed after too: that costs a new
 * connection, never an answer.
 */
function closeIfFramingFaulty(socket: Socket, bytes: Buffer): void {
  const text = bytes.toString('latin1', 0, Math.min(bytes.length, MAX_HEAD))
  const end = HEAD_END.exec(text)
  if (end === null || TRANSFER_ENCODING.test(text.slice(0, end.index))) closeAfterAnswer(socket)
}

/**
 * undici's own mark for a connection to close after the answer it reads (kReset: it sets it for a
 * HEAD, an answer without keep-alive), found by name: undici exports none of its symbols.
 * test/integration/ups5-http10-chunked.test.ts fails if a new undici renames it.
 */
function closeAfterAnswer(socket: Socket): void {
  const reset = Object.getOwnPropertySymbols(socket).find((key) => key.description === 'reset')
  if (reset !== undefined) (socket as unknown as Record<symbol, boolean>)[reset] = true
}

/**
 * At an answer's start: a whole 1xx head (its length, and whether it is a 100 to skip), `hold` when
 * more bytes must come to tell, `final` for anything else (a final status line, a 101, something
 * that is no well-formed 1xx head): from there on undici reads what comes as it came.
 */
function interimHead(bytes: Buffer): { length: number; skip: boolean } | 'hold' | 'final' {
  // Nearly every answer: `HTTP/1.1 2…`, told by one byte, nothing copied.
  if (bytes.length > 9 && bytes[9] !== 0x31) return 'final'
  const start = bytes.toString('latin1', 0, Math.min(bytes.length, START_LENGTH))
  if (start.length < START_LENGTH) return couldBeInterim(start) ? 'hold' : 'final'
  if (!INTERIM_START.test(start) || start.startsWith('101', 9)) return 'final'
  const text = bytes.toString('latin1', 0, Math.min(bytes.length, MAX_HEAD))
  const end = text.indexOf('\r\n\r\n')
  if (end === -1) return text.length >= MAX_HEAD || /(?:^|[^\r])\n/.test(text) ? 'final' : 'hold'
  const head = text.slice(0, end + 4)
  if (!INTERIM_HEAD.test(head)) return 'final'
  return { length: end + 4, skip: head.startsWith('100', 9) }
}

/** Whether these first bytes (fewer than START_LENGTH) may still begin a 1xx status line. */
function couldBeInterim(start: string): boolean {
  return INTERIM_START.test(`${start}${'HTTP/1.1 100 '.slice(start.length)}`)
}
