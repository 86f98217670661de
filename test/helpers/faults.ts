// Real network faults on loopback: a port nothing listens on, and a listener whose accept queue
// is full so that a new connection's SYN is dropped and connect() hangs (a connect timeout), and a
// relay that freezes (bytes dropped, nothing closed).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, connect, type Socket, type AddressInfo } from 'node:net'

/** Where this machine's ephemeral ports begin (Linux); another system's usual value elsewhere. */
function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32_768
  } catch {
    return 32_768
  }
}

/** Whether a listener can take `port` now (it is let go at once). */
async function free(port: number): Promise<boolean> {
  const server = createServer()
  server.listen(port, '127.0.0.1')
  const taken = await Promise.race([once(server, 'listening').then(() => false), once(server, 'error').then(() => true)])
  if (!taken) {
    server.close()
    await once(server, 'close')
  }
  return !taken
}

/**
 * A port that was free a moment ago: connecting to it is refused, and a test may listen on it later
 * (a gateway whose callback URL an identity provider must know first). Taken below the kernel's
 * ephemeral range: one from listen(0) could be handed to any outgoing connection or other listener
 * of the parallel tests before the test used it (CI saw EADDRINUSE so).
 */
export async function closedPort(): Promise<number> {
  const low = Math.min(ephemeralLow(), 65_536)
  for (let attempt = 0; low > 12_000 && attempt < 100; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000))
    if (await free(port)) return port
  }
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/**
 * A port held by a placeholder listener until the test lets it go to listen there itself: for a
 * port that must be known long before it is used (an identity provider's registered callback),
 * where even closedPort's could be taken meanwhile by another test's listener.
 */
export async function heldPort(): Promise<{ port: number; release(): Promise<void> }> {
  const server = createServer()
  server.listen(await closedPort(), '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    port,
    async release() {
      if (!server.listening) return
      server.close()
      await once(server, 'close')
    },
  }
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

export interface FreezingRelay {
  port: number
  /** Bytes are dropped both ways from now on, and nothing is closed (a network stall, a relay that freezes). */
  freeze(): void
  /** Bytes pass again (the connections frozen meanwhile have lost theirs). */
  thaw(): void
  /** Bytes pass `ms` late from now on, in order (a slow server or link); 0: at once again. */
  delay(ms: number): void
  /** New connections go to `target` from now on; open ones stay where they are (a DNS name moved by a failover). */
  retarget(target: number): void
  close(): void
}

/** A relay to a real server on `target` (loopback) that a test can freeze or slow down. */
export async function startFreezingRelay(target: number): Promise<FreezingRelay> {
  let frozen = false
  let delayMs = 0
  let current = target
  const sockets = new Set<Socket>()
  /** Each direction's bytes in order, each with when it may pass: a shorter delay set later does not overtake them. */
  function pipe(from: Socket, to: Socket): void {
    const queue: Array<{ at: number; chunk: Buffer }> = []
    let timer: NodeJS.Timeout | null = null
    const pump = () => {
      timer = null
      while (queue.length > 0 && (queue[0] as { at: number }).at <= Date.now()) to.write((queue.shift() as { chunk: Buffer }).chunk)
      if (queue.length > 0) timer = setTimeout(pump, (queue[0] as { at: number }).at - Date.now())
    }
    from.on('data', (chunk: Buffer) => {
      if (frozen) return
      if (delayMs === 0 && queue.length === 0) return void to.write(chunk)
      queue.push({ at: Math.max(Date.now() + delayMs, queue.at(-1)?.at ?? 0), chunk })
      timer ??= setTimeout(pump, (queue[0] as { at: number }).at - Date.now())
    })
    from.on('close', () => {
      if (timer) clearTimeout(timer)
    })
  }
  const relay = createServer((client) => {
    const server = connect(current, '127.0.0.1')
    for (const [from, to] of [[client, server], [server, client]] as const) {
      sockets.add(from)
      pipe(from, to)
      from.on('error', () => {})
      from.on('close', () => to.destroy())
    }
  })
  relay.listen(0, '127.0.0.1')
  await once(relay, 'listening')
  return {
    port: (relay.address() as AddressInfo).port,
    freeze: () => void (frozen = true),
    thaw: () => void (frozen = false),
    delay: (ms) => void (delayMs = ms),
    retarget: (port) => void (current = port),
    close() {
      for (const socket of sockets) socket.destroy()
      relay.close()
    },
  }
}
