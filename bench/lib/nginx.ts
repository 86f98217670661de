// nginx as the reference reverse proxy (case b): found on PATH or in /usr/sbin, installed with
// apt-get when missing and possible, else skipped with the reason. One worker process, keep-alive
// to the upstream, access log off: nginx at its plainest and fastest.
import { mkdir, writeFile } from 'node:fs/promises'
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

/** nginx proxying 127.0.0.1:PORT/ to the upstream, in its own prefix directory. */
export async function startNginx(binary: string, dir: string, upstreamPort: number): Promise<Started & { url: string }> {
  const prefix = join(dir, `nginx-${upstreamPort}`)
  await mkdir(join(prefix, 'logs'), { recursive: true })
  const port = 20_000 + Math.floor(Math.random() * 20_000)
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
    listen 127.0.0.1:${port};
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
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`${url}/`)
      await res.arrayBuffer()
      if (res.ok) return Object.assign(started, { url })
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  await started.stop()
  throw new Error(`nginx did not answer on ${url}:\n${started.output()}`)
}
