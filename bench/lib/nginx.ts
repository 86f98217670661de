// nginx as the reference reverse proxy (case b): found on PATH or in /usr/sbin, installed with
// apt-get when missing and possible, else skipped with the reason. One worker process, keep-alive
// to the upstream, access log off: nginx at its plainest and fastest.
import { mkdir, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { aptInstall, runs } from './apt.ts'
import { startProcess, type Started } from './processes.ts'

export type NginxAvailability = { path: string } | { skipped: string }

function find(): string | null {
  return ['nginx', '/usr/sbin/nginx', '/usr/local/sbin/nginx'].find((candidate) => runs(candidate, ['-v'])) ?? null
}

let availability: NginxAvailability | undefined

/** nginx's binary, installing it with apt-get when it is missing and this process may (root). */
export function nginxAvailability(): NginxAvailability {
  availability ??= aptInstall('nginx', ['nginx-light', 'nginx'], () => find() !== null)
    ? { path: find()! }
    : { skipped: 'nginx is not installed and could not be (apt-get install nginx needs root and a package mirror)' }
  return availability
}

/** What nginx terminates TLS with (bench/front-door.ts): the same certificate as Bouncer's. */
export interface NginxTls {
  cert: string
  key: string
}

/**
 * nginx proxying 127.0.0.1:PORT/ to the upstream, in its own prefix directory; with `tls`, over
 * TLS 1.2/1.3 with HTTP/2 by ALPN and session resumption (a shared cache and tickets), as one
 * would configure it in front of an API.
 */
export async function startNginx(binary: string, dir: string, upstreamPort: number, tls: NginxTls | null = null): Promise<Started & { url: string }> {
  // nginx cannot be told to pick a free port, so one is drawn below Linux's ephemeral range (32768
  // and up, where a busy machine's client sockets live) and drawn again if it is taken anyway.
  let lastError: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await startNginxOn(10_000 + Math.floor(Math.random() * 20_000), binary, dir, upstreamPort, tls)
    } catch (error) {
      lastError = error
    }
  }
  throw lastError
}

async function startNginxOn(port: number, binary: string, dir: string, upstreamPort: number, tls: NginxTls | null): Promise<Started & { url: string }> {
  const prefix = join(dir, `nginx-${upstreamPort}${tls ? '-tls' : ''}-${port}`)
  await mkdir(join(prefix, 'logs'), { recursive: true })
  const conf = join(prefix, 'nginx.conf')
  await writeFile(conf, `
daemon off;
master_process on;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 1000000;
  upstream api {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port}${tls ? ` ssl http2;
    ssl_certificate "${tls.cert}";
    ssl_certificate_key "${tls.key}";
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on` : ''};
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`)
  // nginx prints nothing when it is ready: wait for the port instead.
  const started = await startProcess(binary, ['-p', prefix, '-c', conf], null)
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    if (/Address already in use/.test(started.output())) break
    if (await accepts(port)) return Object.assign(started, { url })
    await new Promise((r) => setTimeout(r, 50))
  }
  await started.stop()
  throw new Error(`nginx did not answer on ${url}:\n${started.output()}`)
}

/** Whether something accepts connections on the port (nginx prints nothing when it is ready). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => (socket.destroy(), resolve(true)))
    socket.once('error', () => resolve(false))
  })
}
