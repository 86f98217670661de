// WebSocket upgrades on routes with `websocket: true`, after authentication and authorization.
// node:http is used rather than undici's `upgrade()` because undici hides a refused handshake's
// status; here a 401/403 from the upstream reaches the client as it was sent.
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Duplex } from 'node:stream'
import { asGatewayError, GatewayError, truncateClientValue } from '../errors/index.ts'
import { nothingServed, type Exchange, type OpenTunnel, type RequestContext, type Served } from '../request/index.ts'
import { pickTarget } from './balance.ts'
import { heldStreamOf } from './dispatch.ts'
import { failureOf, noHealthyTarget, translateUndiciError, upstreamSaturated } from './errors.ts'
import { upstreamHeaders, upstreamPath, type ForwardSettings } from './request.ts'
import { endAfterAnswer, nodeHttp } from '../http/index.ts'
import { gatewayCookiePaths, gatewayLocations, responseHeaders } from './response.ts'
import { targetFailed, targetSucceeded, tlsConnectOptions } from './targets.ts'
import { atIdle, closeTunnel, idleNote } from './tunnel-expiry.ts'

const { request: httpRequest } = nodeHttp // not imported: http/node-http.ts says why

/**
 * Resolves when the tunnel closes, the upstream's refusal has been relayed, or the handshake failed.
 * A handshake is tried once, on the target balancing picks: it is never retried.
 */
export function forwardUpgrade(ctx: Readonly<RequestContext>, settings: ForwardSettings, exchange: Exchange): Promise<Served> {
  const { upstream } = settings
  const client = ctx.upgrade
  if (!client) throw new Error('forwardUpgrade needs an upgrade request')
  if (upstream.inFlight.full(upstream.maxConcurrent)) throw upstreamSaturated(upstream, false)
  const target = pickTarget(upstream, ctx, null)
  if (target === null) throw noHealthyTarget(upstream)
  const served = nothingServed()
  served.attempts = 1
  const url = new URL(target.url)
  const headers: Record<string, string | string[]> = {}
  const flat = upstreamHeaders(ctx, settings, exchange.extraHeaders)
  for (let i = 0; i < flat.length; i += 2) appendHeader(headers, flat[i] as string, flat[i + 1] as string)
  headers.connection = 'upgrade'
  headers.upgrade = 'websocket'

  // Taken here, after the last refusal: between the check above and this line another worker may
  // have taken the last place.
  if (!upstream.inFlight.enter(upstream.maxConcurrent)) throw upstreamSaturated(upstream, false)
  target.inFlight++
  target.counts.requests++
  return new Promise<Served>((resolve) => {
    let done = false
    // node:http's `timeout` is the socket's idle time, which every byte restarts: an upstream that
    // sent 102 Processing every 150 ms, or its 101 one byte a second, held the handshake, its client
    // and a max_concurrent place for good (a probe). The head must come whole within `timeout`, as
    // undici's headersTimeout has it for every other request. One timer a handshake.
    const headDeadline = setTimeout(() => timedOut(), upstream.timeoutMs)
    const finish = () => {
      if (done) return
      done = true
      clearTimeout(headDeadline)
      upstream.inFlight.leave(upstream.maxConcurrent)
      target.inFlight--
      resolve(served)
    }
    if (client.socket.destroyed) return finish() // the client left while it was authenticated
    const https = url.protocol === 'https:'
    const sent = performance.now()
    const outgoing = (https ? httpsRequest : httpRequest)({
      ...(https ? tlsConnectOptions(upstream.tls) : {}),
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port,
      path: upstreamPath(ctx, settings),
      method: 'GET',
      headers,
      agent: false,
      timeout: upstream.timeoutMs,
    })
    const timedOut = () => outgoing.destroy(Object.assign(new Error('upgrade timed out'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))
    outgoing.on('timeout', timedOut)
    // node:http has no connect timeout: a target that answered no SYN held the handshake for the
    // whole `timeout`, then a 504 and a `timeout` to ejection, where any other request gets its
    // 502 at connect_timeout, a connect failure (a probe). The TLS handshake counts, as undici's.
    outgoing.once('socket', (socket) => {
      if (!socket.connecting) return
      const connectDeadline = setTimeout(() => outgoing.destroy(Object.assign(new Error('connect timed out'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), upstream.connectTimeoutMs)
      socket.once(https ? 'secureConnect' : 'connect', () => clearTimeout(connectDeadline))
      socket.once('close', () => clearTimeout(connectDeadline))
    })
    outgoing.on('error', (err) => {
      if (!done) {
        served.error = translateUndiciError(err, upstream)
        if (failureOf(err) !== null) targetFailed(upstream, target)
      }
      finish()
    })
    outgoing.on('response', (response) => {
      clearTimeout(headDeadline)
      waiting.stop() // the refusal is relayed, and ends with the response (what the client sent meanwhile is dropped)
      served.upstreamMs = performance.now() - sent
      const status = response.statusCode ?? 0
      if (status < 200 || status > 599) {
        // Not an HTTP status (RFC 9110 §15), as an answer's is refused (dispatch.ts): one under 100
        // made writeHead throw in this event, uncaught, and the gateway ended (the front-door probe).
        // A 101 comes here when it names no protocol (node:http upgrades only on an Upgrade header).
        served.error = status === 101
          ? notWebSocket(upstream.name, 'answered the WebSocket handshake 101 Switching Protocols without an Upgrade header (RFC 9110 §15.2.2)')
          : new GatewayError('upstream_error', { detail: `Upstream "${upstream.name}" answered the WebSocket handshake with status ${status}, which is not an HTTP status.` })
        finish()
        outgoing.destroy()
        return
      }
      if (status >= 500) targetFailed(upstream, target)
      else targetSucceeded(target)
      relayRefusal(ctx, response, served, settings, exchange, finish)
    })
    const waiting = watchClientLeaving(client.socket, () => {
      if (done) return
      finish()
      outgoing.destroy()
    }, () => {
      if (done) return
      // Refused, and so answered and recorded as such: the connection was cut without a word, and
      // its record said the client had closed it (499).
      waiting.stop()
      served.error = tooMuchEarly()
      finish()
      outgoing.destroy()
    })
    outgoing.on('upgrade', (response, socket, head) => {
      clearTimeout(headDeadline)
      const early = waiting.stop()
      if (done) return void socket.destroy()
      // RFC 9110 §7.8: a server switches only to a protocol the client listed. One that switched to
      // another (h2c) was tunnelled, its client told `upgrade: websocket` (a probe).
      const protocol = response.headers.upgrade ?? ''
      if (protocol.toLowerCase() !== 'websocket') {
        served.error = notWebSocket(upstream.name, `switched to ${JSON.stringify(truncateClientValue(protocol))}, not to WebSocket`)
        socket.destroy()
        return finish()
      }
      const fault = handshakeFault(headers, response.headers)
      if (fault !== null) {
        served.error = notWebSocket(upstream.name, `answered the WebSocket handshake ${fault} (RFC 6455 §4.1)`)
        socket.destroy()
        return finish()
      }
      targetSucceeded(target)
      outgoing.setTimeout(0)
      served.upstreamMs = performance.now() - sent
      served.status = 101
      served.upstreamStatus = 101
      // Latin-1, as node:http writes any other head: a header byte above 0x7F (read as one
      // character) went out as UTF-8's two.
      client.socket.write(handshake(response, ctx.id, ctx.answerHeaders, settings, upstream.credentials, exchange.extraHeaders), 'latin1')
      if (head.length > 0) client.socket.write(head)
      if (client.head.length > 0) socket.write(client.head)
      if (early.length > 0) socket.write(early)
      // What crossed the tunnel is the record's bytes, both ways (the handshake's bytes not counted).
      served.bytesOut += head.length
      served.bytesIn += client.head.length + early.length
      splice(client.socket, socket, served, finish)
      // Nothing authenticates a tunnel after its handshake: the open tunnels' registry closes it when
      // the caller's credential expires or is revoked, a reload refuses it, or the drain begins.
      let closing = false
      const tunnel: OpenTunnel = {
        ctx,
        close(code, note) {
          if (closing) return
          closing = true
          served.note = note
          closeTunnel(client.socket, socket, code)
        },
      }
      socket.once('close', exchange.lifecycle.openTunnels.add(tunnel))
      const idleMs = settings.websocketIdleMs ?? null
      if (idleMs !== null) atIdle(client.socket, idleMs, () => tunnel.close(1001, idleNote(idleMs)))
    })
    outgoing.end()
  })
}

/**
 * RFC 6455 §4.1: what in an upstream's 101 makes a client fail the connection, said for the
 * detail; null when nothing does. The gateway is the upstream's client: such a 101 was tunnelled
 * and recorded as served, and its own client failed it (a probe). An accept that is not the key's
 * digest (a server that never read the handshake), a subprotocol or an extension the client did not
 * offer. A request with no key has nothing to check the accept against.
 */
function handshakeFault(sent: Readonly<Record<string, string | string[]>>, answer: IncomingMessage['headers']): string | null {
  const key = sent['sec-websocket-key']
  if (typeof key === 'string') {
    const accept = answer['sec-websocket-accept']
    if (accept === undefined) return 'without a Sec-WebSocket-Accept'
    if (accept !== acceptFor(key)) return 'with a Sec-WebSocket-Accept that is not its key\'s digest'
  }
  const protocol = answer['sec-websocket-protocol']
  if (protocol !== undefined) {
    const offered = listed(sent['sec-websocket-protocol'], false)
    if (protocol.includes(',') || !offered.includes(protocol.trim())) return `with subprotocol ${JSON.stringify(truncateClientValue(protocol))}, which the client did not offer`
  }
  const extensions = answer['sec-websocket-extensions']
  if (extensions !== undefined) {
    const offered = listed(sent['sec-websocket-extensions'], true)
    const unasked = listed(extensions, true).find((name) => !offered.includes(name))
    if (unasked !== undefined) return `with extension ${JSON.stringify(truncateClientValue(unasked))}, which the client did not ask for`
  }
  return null
}

/** The tokens of a comma-separated field (its lines together), each without its parameters (`; …`); `fold`: lower case, as extension names compare. */
function listed(value: string | string[] | undefined, fold: boolean): string[] {
  if (value === undefined) return []
  const text = typeof value === 'string' ? value : value.join(',')
  return text.split(',').map((member) => {
    const token = (member.split(';')[0] as string).trim()
    return fold ? token.toLowerCase() : token
  }).filter((token) => token !== '')
}

/** RFC 6455 §4.2.2: the Sec-WebSocket-Accept a server that read the handshake's key answers with. */
function acceptFor(key: string): string {
  return createHash('sha1').update(`${key.trim()}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
}

/** An upstream's 101 that is no WebSocket's (`what` it did): 502 upstream_error. */
function notWebSocket(upstream: string, what: string): GatewayError {
  return new GatewayError('upstream_error', { detail: `Upstream "${upstream}" ${what}: the gateway opened no tunnel.` })
}

/** Bytes a client may send before its handshake is answered (it should send none: RFC 6455 4.1). */
const MAX_EARLY_BYTES = 65_536

function tooMuchEarly(): GatewayError {
  return new GatewayError('bad_request', { detail: `The client sent more than ${MAX_EARLY_BYTES} bytes before its WebSocket handshake was answered (RFC 6455 §4.1: it sends none until then).` })
}

/**
 * While the upstream answers the handshake, reads the client's socket: node:http leaves it paused
 * after the upgrade, so a client that hung up (FIN) went unseen, and an answer that came later
 * opened a tunnel to nobody, in flight and counted against the upstream's concurrency until the
 * upstream closed it. What the client sends meanwhile is kept for the tunnel, up to
 * MAX_EARLY_BYTES (`overflowed` past it); `stop` hands it over and leaves the socket paused again.
 */
function watchClientLeaving(socket: Duplex, left: () => void, overflowed: () => void): { stop(): Buffer } {
  const early: Buffer[] = []
  let bytes = 0
  const onData = (chunk: Buffer) => {
    bytes += chunk.length
    if (bytes > MAX_EARLY_BYTES) overflowed()
    else early.push(chunk)
  }
  // A client's FIN (the listener allows half-open sockets) ends it here: the request ends once its
  // socket has closed, which the record reads as the client gone (499); ended at the FIN, with the
  // socket still open, the record said status 0.
  const hangUp = () => socket.destroy()
  socket.on('data', onData)
  socket.once('end', hangUp)
  socket.once('close', left)
  return {
    stop() {
      socket.pause()
      socket.removeListener('data', onData)
      socket.removeListener('end', hangUp)
      socket.removeListener('close', left)
      return Buffer.concat(early)
    },
  }
}

function appendHeader(headers: Record<string, string | string[]>, name: string, value: string): void {
  const existing = headers[name]
  if (existing === undefined) headers[name] = value
  else headers[name] = Array.isArray(existing) ? [...existing, value] : [existing, value]
}

function handshake(response: IncomingMessage, requestId: string, answerHeaders: readonly string[] | null, settings: ForwardSettings, credentials: readonly string[], sent: readonly string[] | null): string {
  let text = 'HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n'
  const headers = responseHeaders(response.headers, requestId, settings, answerHeaders, credentials, sent)
  for (const [name, value] of Object.entries(headers)) {
    // RFC 9110 §8.6: no Content-Length on a 1xx; a client that read an upstream's took the tunnel's first bytes for a body.
    if (name === 'content-length') continue
    for (const v of Array.isArray(value) ? value : [value]) text += `${name}: ${v}\r\n`
  }
  return `${text}\r\n`
}

/**
 * The upstream answered the handshake without upgrading: pass its answer on as is. Under
 * durability: sync its last bytes (its head, when it has no body) wait for the record's commit, as
 * any other answer's do (it was piped through, and its record only queued once it had gone).
 */
function relayRefusal(ctx: Readonly<RequestContext>, response: IncomingMessage, served: Served, settings: ForwardSettings, exchange: Exchange, done: () => void): void {
  const { beforeEnd } = exchange
  const status = response.statusCode ?? 502
  let ending = false
  served.status = status
  served.upstreamStatus = status
  const writeHead = () => {
    if (ctx.res.headersSent) return
    const headers = responseHeaders(response.headers, ctx.id, settings, ctx.answerHeaders, settings.upstream.credentials, exchange.extraHeaders)
    if (settings.rewrite === null) {
      if (headers.location !== undefined) headers.location = gatewayLocations(headers.location, settings.upstream)
      const cookies = headers['set-cookie']
      if (cookies !== undefined) headers['set-cookie'] = gatewayCookiePaths(cookies, settings.upstream.basePath)
    }
    ctx.res.writeHead(status, { ...headers, connection: 'close' })
  }
  response.on('data', (chunk: Buffer) => {
    served.bytesOut += chunk.length
  })
  if (beforeEnd === null) {
    writeHead()
    response.pipe(ctx.res)
  } else {
    // A record lost on its way (the commit rejects, 503 audit_unavailable): an answer not begun
    // becomes that refusal (the pipeline answers served.error), one begun is cut short. The
    // rejection went unhandled, and the client's connection was held open with the answer half sent.
    pipeHoldingLast(response, ctx.res, writeHead, () => beforeEnd(served), (err) => {
      served.error = asGatewayError(err)
      if (ctx.res.headersSent) ctx.upgrade?.socket.destroy()
      done()
    })
  }
  ctx.res.once('finish', () => {
    // Closed after a linger: a client that never closes its side held the connection for ever.
    if (ctx.upgrade) endAfterAnswer(ctx.upgrade.socket)
    done()
  })
  // An upstream gone mid-refusal ends nothing by itself (pipe waits for an 'end' that never comes):
  // the client's connection is cut, as any answer broken off is, rather than held open for ever
  // with the request and its upstream slot (found by a probe). A client gone first lets it go too.
  response.once('close', () => {
    if (!response.complete && !ending) ctx.upgrade?.socket.destroy()
  })
  ctx.upgrade?.socket.once('close', () => {
    response.destroy()
    done()
  })
  ctx.res.once('close', done)
  // An upstream that ignores Upgrade answers the handshake as the GET it is: with its event stream,
  // say, which outlives the only request authenticated, as it does when asked for without Upgrade
  // (dispatch.ts). It joins the open tunnels' registry the same way: outside it, adding `Upgrade:
  // websocket` kept a stream past its credential's expiry or revocation, a reload, the drain (a probe).
  // Joined once its answer has begun: a drain already under way closes it at once.
  const held = heldStreamOf(response.headers['content-type'])
  if (held !== null) {
    const leave = exchange.lifecycle.openTunnels.add({
      ctx,
      what: held.what,
      close(code, note) {
        if (ending || (!held.events && code === 1001)) return
        ending = true
        served.note = note
        // An event stream ends as complete (its client reconnects); another, or one whose end waits
        // for its record's commit, is cut, as an upstream failing mid-answer cuts it.
        if (held.events && beforeEnd === null && ctx.res.headersSent) {
          response.unpipe(ctx.res)
          ctx.res.end()
          response.destroy()
        } else {
          response.destroy()
          ctx.upgrade?.socket.destroy()
        }
      },
    })
    ctx.res.once('close', leave)
    ctx.upgrade?.socket.once('close', leave)
  }
}

/**
 * `from` piped to `to` one chunk behind: the last chunk, and the end, wait for `beforeEnd`; the head
 * goes with the first chunk sent (`writeHead`), so an answer that fits one chunk is not begun
 * before its record is committed. `failed` hears a `beforeEnd` that rejects (nothing more is sent).
 */
function pipeHoldingLast(from: IncomingMessage, to: ServerResponse, writeHead: () => void, beforeEnd: () => Promise<void>, failed: (err: unknown) => void): void {
  let held: Buffer | undefined
  from.on('data', (chunk: Buffer) => {
    if (held !== undefined) {
      writeHead()
      if (!to.write(held)) {
        from.pause()
        to.once('drain', () => from.resume())
      }
    }
    held = chunk
  })
  from.once('end', () => {
    beforeEnd().then(() => {
      writeHead()
      to.end(held)
    }, failed)
  })
}

/** The client's socket and the upstream's joined until either side closes, counting what crosses (the audit record's bytes). */
function splice(a: Duplex, b: Duplex, served: Served, closed: () => void): void {
  let open = 2
  const onClose = () => {
    a.destroy()
    b.destroy()
    if (--open === 0) closed()
  }
  a.once('close', onClose)
  b.once('close', onClose)
  a.on('error', () => a.destroy())
  b.on('error', () => b.destroy())
  a.on('data', (chunk: Buffer) => {
    served.bytesIn += chunk.length
  })
  b.on('data', (chunk: Buffer) => {
    served.bytesOut += chunk.length
  })
  a.pipe(b)
  b.pipe(a)
}
