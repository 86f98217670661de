// A kept-alive connection's next request that arrives within keep_alive_timeout while the gateway
// is held up (a long GC, a host that gives it no CPU: the soak's 2-core VM at load 8-16) past the
// connection's idle deadline. After the stall Node runs its expired timers before it reads the
// sockets, so the idle timeout closed the connection with the request unread in it: the kernel
// answered with a reset, the client saw ECONNRESET and the gateway never saw the request (no
// audit record). bench/README.md "Soak": 74 such resets in 352,572 requests.
import { once } from 'node:events'
import { stat } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

/** This thread (the gateway's and the client's) held up for `ms`, as a stall holds the gateway. */
function stall(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

const get = (id: string) => `GET /orders/${id} HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ${id}\r\n\r\n`

describe('keep-alive and a stalled gateway', () => {
  it('a request sent within keep_alive_timeout, read after a stall past the idle deadline, is answered, not reset', async () => {
    const up = await startUpstream()
    closeLater(() => up.close())
    const gw = await startTestGateway((dir) => ({
      server: { keep_alive_timeout: '1s' },
      audit: { sinks: [{ type: 'sqlite', path: `${dir}/audit.db` }], spill_dir: `${dir}/spill` },
      upstreams: [{ name: 'api', url: up.url }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    }))
    closeLater(() => gw.close())

    const socket: Socket = connect({ port: Number(new URL(gw.url).port), host: '127.0.0.1' })
    await once(socket, 'connect')
    let received = ''
    let error: NodeJS.ErrnoException | null = null
    let closed = false
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')))
    socket.on('error', (err) => (error = err))
    socket.on('close', () => (closed = true))
    const answers = () => received.split('HTTP/1.1 ').slice(1)

    socket.write(get('first'))
    await waitFor(() => answers().length === 1 && /"url":"\/orders\/first"[^]*\}$/.test(received), 'the first answer')
    expect(received).toMatch(/\r\nkeep-alive: timeout=1\r\n/i)

    // Half a second idle, well within the advertised second, the next request goes; then the
    // gateway is held up for 2.5 s, past the connection's idle deadline (1 s and Node's 1 s margin),
    // in an I/O callback as its request handling is (a timer's callback would not do: the loop's
    // clock is not read again before the next poll).
    await new Promise((resolve) => setTimeout(resolve, 500))
    await new Promise<void>((resolve) =>
      stat('.', () => {
        socket.write(get('second'))
        stall(2_500)
        resolve()
      }),
    )
    await waitFor(() => closed || answers().length === 2, 'the second answer or the connection\'s end')

    expect(error).toBeNull()
    expect(answers()).toHaveLength(2)
    expect(answers()[1]).toMatch(/^200 /)
    expect(answers()[1]).toContain('"url":"/orders/second"')
    expect(await waitForAuditRecord(`${gw.dir}/audit.db`, 'second')).toMatchObject({ status: 200 })

    // Idle afterwards, the connection is still closed at its timeout.
    await waitFor(() => closed, 'the idle connection to be closed', 5_000)
    expect(error).toBeNull()
  })
})
