// Real network faults on loopback: a port nothing listens on, and a listener whose accept queue
// is full so that a new connection's SYN is dropped and connect() hangs (a connect timeout).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, connect, type Socket, type AddressInfo } from 'node:net'

/** A port that was free a moment ago: connecting to it is refused. */
export async function closedPort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

export interface Blackhole {
  port: number
  close(): void
}

/**
 * Node accepts every connection, so the listener is a tiny python3 process that calls listen(0)
 * and never accept(); two connections fill its queue and later SYNs go unanswered.
 */
export async function startBlackhole(): Promise<Blackhole> {
  const child = spawn('python3', ['-c', [
    'import socket, sys, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'time.sleep(120)',
  ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const [data] = (await once(child.stdout, 'data')) as [Buffer]
  const port = Number(data.toString().trim())
  const fillers: Socket[] = []
  for (let i = 0; i < 3; i++) {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    fillers.push(socket)
  }
  await new Promise((r) => setTimeout(r, 200))
  return {
    port,
    close() {
      for (const socket of fillers) socket.destroy()
      child.kill('SIGKILL')
    },
  }
}
