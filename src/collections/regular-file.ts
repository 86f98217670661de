// Reading a small file the gateway is pointed at (a certificate, a key, the audit checkpoints) in a
// way that always ends: one shared guard, where each reader had its own copy or none.
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs'

export type RegularFileRead =
  | { ok: true; bytes: Buffer }
  | { ok: false; reason: 'directory' }
  | { ok: false; reason: 'not regular' }
  | { ok: false; reason: 'too large'; size: number }
  /** open, fstat or read failed: ENOENT, EACCES… */
  | { ok: false; reason: 'error'; error: NodeJS.ErrnoException }

/**
 * The file's bytes, read only if it is a regular file of at most `maxBytes`. Opened without
 * blocking: a named pipe nobody writes held a plain open (and the thread) for ever; /dev/zero or a
 * log given by mistake was read until the heap gave out. A directory, pipe, device or socket is
 * refused without a read — but for `pipes: 'read'`: a named pipe a program feeds (a secrets
 * agent's master key or certificate) is read as a file is, waiting for its writer, up to `maxBytes`.
 */
export function readRegularFile(path: string, maxBytes: number, options: { pipes?: 'read' } = {}): RegularFileRead {
  // Known before any open: opening a pipe, even without blocking, would let its writer write into a reader about to close.
  if (options.pipes === 'read' && isPipe(path)) return readPipe(path, maxBytes)
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    return { ok: false, reason: 'error', error: err as NodeJS.ErrnoException }
  }
  try {
    const stat = fstatSync(fd)
    if (stat.isDirectory()) return { ok: false, reason: 'directory' }
    if (!stat.isFile()) return { ok: false, reason: 'not regular' }
    if (stat.size > maxBytes) return { ok: false, reason: 'too large', size: stat.size }
    return { ok: true, bytes: readFileSync(fd) }
  } catch (err) {
    return { ok: false, reason: 'error', error: err as NodeJS.ErrnoException }
  } finally {
    closeSync(fd)
  }
}

function isPipe(path: string): boolean {
  try {
    return statSync(path).isFIFO()
  } catch {
    return false // the open below says why
  }
}

/** A named pipe's text, its writer waited for (as a plain read does), refused past `maxBytes`. */
function readPipe(path: string, maxBytes: number): RegularFileRead {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    return { ok: false, reason: 'error', error: err as NodeJS.ErrnoException }
  }
  try {
    const chunks: Buffer[] = []
    const chunk = Buffer.allocUnsafe(64 * 1024)
    let size = 0
    for (let read = readSync(fd, chunk); read > 0; read = readSync(fd, chunk)) {
      size += read
      if (size > maxBytes) return { ok: false, reason: 'too large', size }
      chunks.push(Buffer.from(chunk.subarray(0, read)))
    }
    return { ok: true, bytes: Buffer.concat(chunks, size) }
  } catch (err) {
    return { ok: false, reason: 'error', error: err as NodeJS.ErrnoException }
  } finally {
    closeSync(fd)
  }
}

/** Thrown by openRegularFileToWrite for a path that is not a regular file. */
export class NotRegularFile extends Error {
  readonly path: string
  constructor(path: string) {
    super(`cannot write ${path}: it is not a regular file (a device, a pipe or a socket)`)
    this.name = 'NotRegularFile'
    this.path = path
  }
}

/**
 * Throws NotRegularFile when `path` is there and is not a regular file (a named pipe, a device, a
 * socket); a path with nothing there passes (the open makes it). For a file opened by an async
 * handle, where openRegularFileToWrite's descriptor will not do: checked before the open.
 */
export function refuseSpecialFile(path: string): void {
  let regular: boolean
  try {
    regular = statSync(path).isFile()
  } catch {
    return // none yet
  }
  if (!regular) throw new NotRegularFile(path)
}

/**
 * A descriptor to write a regular file, made when missing: appended to, or emptied first. Opened
 * without blocking, as readRegularFile reads: a named pipe put where the file was held a plain open
 * (and the thread, the audit worker's) for ever. A pipe nobody reads (ENXIO), one somebody reads, a
 * device or a socket is refused with NotRegularFile; other failures (EACCES…) are thrown as they are.
 */
export function openRegularFileToWrite(path: string, mode: 'append' | 'truncate', perm = 0o666): number {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NONBLOCK | (mode === 'append' ? constants.O_APPEND : constants.O_TRUNC)
  let fd: number
  try {
    fd = openSync(path, flags, perm)
  } catch (err) {
    // ENXIO: a named pipe without a reader, or a socket; neither is a file.
    if ((err as NodeJS.ErrnoException).code === 'ENXIO') throw new NotRegularFile(path)
    throw err
  }
  let regular = false
  try {
    regular = fstatSync(fd).isFile()
  } finally {
    if (!regular) closeSync(fd)
  }
  if (!regular) throw new NotRegularFile(path)
  return fd
}

/** Why a file was not read, for a message: "it is not a regular file (a device, a pipe or a socket)". */
export function whyNotRead(read: Exclude<RegularFileRead, { ok: true }>, maxBytes: number): string {
  if (read.reason === 'directory') return 'it is a directory, not a file (EISDIR)'
  if (read.reason === 'not regular') return 'it is not a regular file (a device, a pipe or a socket)'
  if (read.reason === 'too large') return `it holds ${read.size.toLocaleString('en')} bytes, more than the ${maxBytes.toLocaleString('en')} it may`
  return read.error.message
}
