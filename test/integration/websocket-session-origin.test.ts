// Found by an adversarial probe (helper "ws"): cross-site WebSocket hijacking. A WebSocket
// handshake is a GET, so the CSRF check of a session-cookie request (an Origin of the gateway's
// own) did not apply to it: a page of another origin that the browser sends the session cookie
// from (a sibling subdomain under SameSite=Lax, any site under SameSite=None) opened a tunnel as
// the signed-in person and could send anything through it. A handshake signed in by the session
// cookie now needs the gateway's Origin, as a POST does (browsers always send Origin with one).
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts'
import { signInConfig, startSignInGateway, startSignInProvider, UNUSED_ORIGIN } from '../helpers/sign-in.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: RawUpstream
let gateway: TestGateway

beforeAll(async () => {
  upstream = await startRawUpstream((_head, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n')
  })
  idp = await startSignInProvider(UNUSED_ORIGIN)
  gateway = await startSignInGateway({
    // idle 30s: a session's use is recorded, and an open tunnel's session checked again, every 3 s.
    ...signInConfig(idp, { session: { idle: '30s' } }),
    roles: [{ name: 'people', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'live', path: '/live/*', upstream: 'app', accept: ['session'], websocket: true }],
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

/** A signed-in person's session as the callback writes it; its cookie. */
async function session(subject: string): Promise<string> {
  const value = randomBytes(32).toString('base64url')
  const now = Date.now()
  await gateway.state.runtime.signIn!.store.put({
    id: sessionId(value), issuer: 'sso', subject, claims: { sub: subject, groups: ['staff'] },
    createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, refreshAt: null, sealed: null, audience: 'gateway',
  })
  return `bouncer_session=${value}`
}

/** A browser's WebSocket handshake (raw: the test chooses its Origin); the head of the answer, and its body when it has one. */
function handshake(headers: string): Promise<string> {
  const port = Number(new URL(gateway.url).port)
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      const length = /\r\ncontent-length: (\d+)/i.exec(text)
      if (end !== -1 && (text.startsWith('HTTP/1.1 101') || (length && text.length >= end + 4 + Number(length[1])))) {
        socket.destroy()
        resolve(text)
      }
    })
    socket.on('error', reject)
    socket.on('close', () => resolve(text))
    socket.write(`GET /live/feed HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${headers}\r\n`)
  })
}

describe('a WebSocket handshake signed in by the session cookie', () => {
  it('from another origin, or with no Origin, is refused 403 cors_origin_denied and never reaches the upstream', async () => {
    const cookie = await session('ann')
    for (const origin of ['Origin: https://evil.example\r\n', 'Origin: null\r\n', '']) {
      const answer = await handshake(`Cookie: ${cookie}\r\n${origin}`)
      expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden')
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'cors_origin_denied' })
    }
    expect(upstream.heads).toEqual([])
  })

  it("from the gateway's own origin opens the tunnel", async () => {
    const cookie = await session('ben')
    const answer = await handshake(`Cookie: ${cookie}\r\nOrigin: http://127.0.0.1:${new URL(gateway.url).port}\r\n`)
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols')
    expect(upstream.heads).toHaveLength(1)
  })
})

// Found by an adversarial probe (helper "browser"): a tunnel was closed at its session's absolute
// end only (ttl, 8 h by default), so signing out, or an operator revoking a stolen session, left
// every tunnel it had opened working as the person until then. An open tunnel's session is now
// checked again as often as a session's use is recorded, and the tunnel closed once it has ended.
describe('a WebSocket tunnel opened by a session', { timeout: 30_000 }, () => {
  /** A tunnel through the gateway, open; the bytes it has received so far, and its close. */
  async function tunnel(cookie: string): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<unknown> }> {
    const port = Number(new URL(gateway.url).port)
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    const closed = once(socket, 'close')
    socket.write(`GET /live/feed HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: ${cookie}\r\nOrigin: http://127.0.0.1:${port}\r\n\r\n`)
    await waitFor(() => Buffer.concat(chunks).includes('\r\n\r\n'), 'the handshake\'s answer')
    expect(Buffer.concat(chunks).toString('latin1')).toMatch(/^HTTP\/1\.1 101 /)
    return { socket, received: () => Buffer.concat(chunks), closed }
  }

  it('is closed (1008) once the session is revoked; a tunnel of a session still signed in stays open', async () => {
    const revoked = await session('cal')
    const kept = await session('dee')
    const [ended, open] = [await tunnel(revoked), await tunnel(kept)]
    expect(await gateway.state.runtime.signIn!.revoke(sessionId(revoked.slice('bouncer_session='.length)))).toBe(true)
    await ended.closed
    expect(ended.received().subarray(-4)).toEqual(Buffer.from([0x88, 0x02, 0x03, 0xf0])) // close frame, 1008 policy violation
    // The other's session is checked as often: its tunnel stays open.
    expect(open.socket.destroyed).toBe(false)
    open.socket.destroy()
  })
})
