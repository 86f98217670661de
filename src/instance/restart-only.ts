// Settings a process takes once, at its start: the listen addresses, TLS on or off, HTTP/2 and the
// audit section. A reload that changes them says they take effect at the next restart; a worker
// started in a running gateway (a crashed one's replacement) keeps the process's, as the workers
// it joins do, so one port never serves two protocols or two audit setups.
import type { Config } from '../config/index.ts'

/** What a reload from `previous` to `next` leaves until the next restart, as warnings. */
export function restartOnlyChanges(previous: Config, next: Config): string[] {
  const changes: string[] = []
  if (next.server.listen.text !== previous.server.listen.text || next.admin.listen.text !== previous.admin.listen.text) {
    changes.push('a changed listen address takes effect at the next restart')
  }
  if ((next.server.tls === undefined) !== (previous.server.tls === undefined) || next.server.http2 !== previous.server.http2) {
    changes.push('turning server.tls or server.http2 on or off takes effect at the next restart')
  }
  if (JSON.stringify(next.audit) !== JSON.stringify(previous.audit)) {
    changes.push('a changed audit section takes effect at the next restart')
  }
  return changes
}

/** `running` with what `started` fixed at the process's start: the config a worker joining the others serves. */
export function withStartSettings(started: Config, running: Config): Config {
  return {
    ...running,
    server: {
      ...running.server,
      listen: started.server.listen,
      http2: started.server.http2,
      // The running listeners keep TLS on or off; with TLS on they read a reload's certificate files.
      tls: started.server.tls && running.server.tls ? running.server.tls : started.server.tls,
    },
    admin: { ...running.admin, listen: started.admin.listen },
    audit: started.audit,
  }
}
