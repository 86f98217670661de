// A raw upstream on node:net: answers each request head with the bytes a test chooses.
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

export interface RawUpstream {
  url: string
  heads: string[]
  close(): Promise<void>
}

/** `answer(head, socket)` is called once per request head (body not parsed: tests send bodiless requests, or Content-Length bodies read here). */
export async function startRawUpstream(answer: (head: string, socket: Socket, index: number) => void): Promise<RawUpstream> {
  const heads: string[] = []
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buffered = ''
    let skip = 0
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1')
      for (;;) {
        if (skip > 0) {
          const n = Math.min(skip, buffered.length)
          buffered = buffered.slice(n)
          skip -= n
          if (skip > 0) return
        }
        const end = buffered.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = buffered.slice(0, end)
        buffered = buffered.slice(end + 4)
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head)
        skip = cl ? Number(cl[1]) : 0
        heads.push(head)
        answer(head, socket, heads.length - 1)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    heads,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    }),
  }
}
